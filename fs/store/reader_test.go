package store

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/datagate/datagate/fs"
)

// readByFile reads r whole through FileAt in steps of n bytes, reading
// each range from the file it returns, as a splicing front-end does.
func readByFile(t *testing.T, r *Reader, n int) ([]byte, error) {
	t.Helper()
	var out []byte
	for off := int64(0); ; {
		f, m, err := r.FileAt(ctxT(t), off, n)
		if m > 0 {
			p := make([]byte, m)
			if _, rerr := f.ReadAt(p, off); rerr != nil {
				t.Fatalf("reading the file FileAt(%d) gave: %v", off, rerr)
			}
			out = append(out, p...)
			off += int64(m)
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func TestFileAt(t *testing.T) {
	e := newEnv(t)
	data := pattern(300<<10 + 17) // 5 cache chunks and a bit
	e.write(t, "x.bin", data)
	good := sha256.Sum256(data)
	bad := sha256.Sum256([]byte("other"))
	reg := &fs.Object{Size: int64(len(data)), SHA256: good[:], Source: fs.Location{Provider: "disk", Path: "x.bin"}}
	wrong := &fs.Object{Size: int64(len(data)), SHA256: bad[:], Source: fs.Location{Provider: "disk", Path: "x.bin", Offset: 0, Length: int64(len(data))}}
	register(t, e.st, reg, wrong)
	stored, err := e.st.Put(ctxT(t), PutRequest{Name: "s.bin", Size: int64(len(data))}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name string
		id   fs.ID
	}{{"registered", reg.ID}, {"stored", stored.ID}} {
		r, err := e.st.Open(ctxT(t), c.id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readByFile(t, r, 100<<10)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: %d bytes, %v", c.name, len(got), err)
		}
		if _, m, err := r.FileAt(ctxT(t), int64(len(data)), 10); m != 0 || err != io.EOF {
			t.Errorf("%s: FileAt at the end = %d, %v; want 0, EOF", c.name, m, err)
		}
		r.Close()
	}
	waitFor(t, func() bool { o, _ := e.st.Get(ctxT(t), reg.ID); return o.State == fs.StateCached })

	// Reaching the end of content that fails its checksum is an error.
	r, err := e.st.Open(ctxT(t), wrong.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := readByFile(t, r, 100<<10); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("wrong content read to the end: %v", err)
	}
}

func TestBothChecksumsVerified(t *testing.T) {
	e := newEnv(t)
	data := pattern(200 << 10) // 4 cache chunks
	e.write(t, "x.bin", data)
	sha, sum := sha256.Sum256(data), md5.Sum(data)
	badMD5 := md5.Sum([]byte("other"))
	good := &fs.Object{Size: int64(len(data)), SHA256: sha[:], MD5: sum[:], Source: fs.Location{Provider: "disk", Path: "x.bin"}}
	wrong := &fs.Object{Size: int64(len(data)), SHA256: sha[:], MD5: badMD5[:], Source: fs.Location{Provider: "disk", Path: "x.bin", Length: int64(len(data))}}
	register(t, e.st, good, wrong)
	if got, err := readObject(t, e.st, good.ID); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("good: %d bytes, %v", len(got), err)
	}
	waitFor(t, func() bool { o, _ := e.st.Get(ctxT(t), good.ID); return o.State == fs.StateCached })
	if _, err := readObject(t, e.st, wrong.ID); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("a wrong MD5 beside a right SHA-256: %v", err)
	}
}
