package s3

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/datagate/datagate/views"
)

// The store computes a push's MD5 after answering unless the answer
// needs it: a single PUT's and a copy's ETag are the content's MD5 at
// once and in the record; a multipart object's ETag is md5-of-md5s-N and
// its whole MD5 comes later; an object pushed through another front-end
// a moment ago is served with its MD5 as ETag all the same.
func TestPutETagsAndMD5(t *testing.T) {
	e := newTestEnv(t)
	ctx := ctxT(t)
	data := make([]byte, 6<<20+123)
	for i := range data {
		data[i] = byte(i*7 + i>>13)
	}
	sum := md5.Sum(data)
	want := hex.EncodeToString(sum[:])
	recordMD5 := func(key string) []byte {
		t.Helper()
		info, err := e.srv.tree("alice").Stat(ctx, treePath("data", key))
		if err != nil {
			t.Fatal(err)
		}
		o, err := e.st.Index().Get(ctx, info.ID()) // the record as it is, not waiting
		if err != nil {
			t.Fatal(err)
		}
		return o.MD5
	}

	up, err := e.alice.PutObject(ctx, "data", "single", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{DisableMultipart: true})
	if err != nil || up.ETag != want {
		t.Fatalf("PUT: ETag %q, want %q: %v", up.ETag, want, err)
	}
	if got := recordMD5("single"); !bytes.Equal(got, sum[:]) {
		t.Fatalf("PUT: recorded MD5 %x", got)
	}
	cp, err := e.alice.CopyObject(ctx, minio.CopyDestOptions{Bucket: "data", Object: "copy"}, minio.CopySrcOptions{Bucket: "data", Object: "single"})
	if err != nil || cp.ETag != want {
		t.Fatalf("copy: ETag %q, want %q: %v", cp.ETag, want, err)
	}
	if got := recordMD5("copy"); !bytes.Equal(got, sum[:]) {
		t.Fatalf("copy: recorded MD5 %x", got)
	}

	mp, err := e.alice.PutObject(ctx, "data", "multi", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := md5.Sum(data[:5<<20]), md5.Sum(data[5<<20:])
	mm := md5.Sum(append(p1[:], p2[:]...))
	if wantMP := fmt.Sprintf("%x-2", mm); mp.ETag != wantMP {
		t.Fatalf("multipart: ETag %q, want %q", mp.ETag, wantMP)
	}
	info, err := e.srv.tree("alice").Stat(ctx, treePath("data", "multi"))
	if err != nil {
		t.Fatal(err)
	}
	// The whole MD5 comes in the background; HEAD does not wait for it.
	o, err := e.st.Get(ctx, info.ID())
	for err == nil && o.MD5 == nil && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
		o, err = e.st.Get(ctx, info.ID())
	}
	if err != nil || !bytes.Equal(o.MD5, sum[:]) || o.ETag != mp.ETag {
		t.Fatalf("multipart: record md5 %x etag %q: %v", o.MD5, o.ETag, err)
	}
	got := getAll(t, e, "multi")
	if !bytes.Equal(got, data) {
		t.Fatalf("multipart: read back %d bytes, differ", len(got))
	}

	// Through the tree, as WebDAV, SFTP and FUSE push: MD5 deferred.
	// The store computes one MD5 at a time: a big push first keeps the
	// next one's pending while it is read.
	big := bytes.Repeat(data, 16)
	if _, err := e.srv.tree("alice").Create(ctx, treePath("data", "big"), bytes.NewReader(big), views.CreateOptions{Size: int64(len(big))}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.tree("alice").Create(ctx, treePath("data", "other-fe"), bytes.NewReader(data), views.CreateOptions{Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	r, err := e.alice.GetObject(ctx, "data", "other-fe", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var one [1]byte
	r.Read(one[:]) // the GET's own answer, not a HEAD
	st, err := r.Stat()
	r.Close()
	if err != nil || st.ETag != want {
		t.Fatalf("GET of a fresh push through the tree: ETag %q, want %q: %v", st.ETag, want, err)
	}
	if h, err := e.alice.StatObject(ctx, "data", "other-fe", minio.StatObjectOptions{}); err != nil || h.ETag != want {
		t.Fatalf("HEAD: ETag %q, want %q: %v", h.ETag, want, err)
	}
}

func getAll(t *testing.T, e *testEnv, key string) []byte {
	t.Helper()
	r, err := e.alice.GetObject(ctxT(t), "data", key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
