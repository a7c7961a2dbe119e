package store

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// hashedFiles is a HashedFiles: local files with the SHA-256 its caller
// computed.
type hashedFiles struct {
	filesReader
	sum []byte
}

func (h *hashedFiles) SHA256() []byte { return h.sum }

// Local files whose SHA-256 the caller computed are copied without
// reading the copy back: the record carries that sum (so a caller must
// only give one it computed over those bytes), the copy is stamped
// verified and the background MD5 is of it. When the MD5 is wanted at
// once the copy is hashed all the same and the sum is the store's own.
func TestPutHashedFiles(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	dir := t.TempDir()
	data := pattern(4*pipeBufSize + 9)
	var names []string
	for i, cut := range [][2]int{{0, pipeBufSize}, {pipeBufSize, len(data)}} {
		name := filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(name, data[cut[0]:cut[1]], 0o600); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	ss, ms := sha256.Sum256(data), md5.Sum(data)
	o, err := e.st.Put(ctx, PutRequest{Name: "h", Size: int64(len(data)), ETag: "x-2"}, &hashedFiles{filesReader{names}, ss[:]})
	if err != nil || !bytes.Equal(o.SHA256, ss[:]) || o.MD5 != nil {
		t.Fatalf("put: %v, sha %x md5 %x", err, o.SHA256, o.MD5)
	}
	p, err := e.st.primaryFS.LocalPath(primaryPath(o.ID))
	if fi, serr := os.Stat(p); err != nil || serr != nil || !fi.ModTime().Equal(sentinel(o)) {
		t.Fatalf("the copy is not stamped verified: %v %v", err, serr)
	}
	e.st.md5s.wait(ctx, o.ID)
	if g, err := e.st.Get(ctx, o.ID); err != nil || !bytes.Equal(g.MD5, ms[:]) {
		t.Fatalf("background MD5: %v, %x", err, g.MD5)
	}
	if got, err := readObject(t, e.st, o.ID); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	// Not read back: the caller's sum is what is recorded.
	other := sha256.Sum256([]byte("not the content"))
	o, err = e.st.Put(ctx, PutRequest{Name: "h2", Size: int64(len(data)), ETag: "x-2"}, &hashedFiles{filesReader{names}, other[:]})
	if err != nil || !bytes.Equal(o.SHA256, other[:]) {
		t.Fatalf("put with the caller's sum: %v, sha %x", err, o.SHA256)
	}
	// The MD5 wanted at once: the copy is hashed, the store's sums win.
	o, err = e.st.Put(ctx, PutRequest{Name: "h3", Size: int64(len(data))}, MD5Now(&hashedFiles{filesReader{names}, other[:]}))
	if err != nil || !bytes.Equal(o.SHA256, ss[:]) || !bytes.Equal(o.MD5, ms[:]) {
		t.Fatalf("put with the MD5 at once: %v, sha %x md5 %x", err, o.SHA256, o.MD5)
	}
}
