package s3

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"
)

// Conditional writes (minio-go's SetMatchETagExcept("*") and
// SetMatchETag): If-None-Match: * stores only a new key, If-Match only
// over the given ETag; both were ignored (the object was overwritten).
func TestConditionalWrites(t *testing.T) {
	e := newTestEnv(t)
	ctx := ctxT(t)
	ifNone := func() minio.PutObjectOptions {
		var o minio.PutObjectOptions
		o.SetMatchETagExcept("*")
		return o
	}
	ifMatch := func(etag string) minio.PutObjectOptions {
		var o minio.PutObjectOptions
		o.SetMatchETag(etag)
		return o
	}
	putErr := func(key, body string, o minio.PutObjectOptions) error {
		_, err := e.alice.PutObject(ctx, "data", key, bytes.NewReader([]byte(body)), int64(len(body)), o)
		return err
	}
	if err := putErr("lock", "first", ifNone()); err != nil {
		t.Fatalf("If-None-Match on a new key: %v", err)
	}
	if err := putErr("lock", "second", ifNone()); s3Code(err) != "PreconditionFailed" {
		t.Errorf("If-None-Match on an existing key: %v", err)
	}
	if got := get(t, e.alice, "data", "lock", minio.GetObjectOptions{}); string(got) != "first" {
		t.Errorf("after the refused write: %q", got)
	}
	if err := putErr("lock", "third", ifMatch("0123456789abcdef0123456789abcdef")); s3Code(err) != "PreconditionFailed" {
		t.Errorf("If-Match of another ETag: %v", err)
	}
	sum := md5.Sum([]byte("first"))
	if err := putErr("lock", "fourth", ifMatch(hex.EncodeToString(sum[:]))); err != nil {
		t.Errorf("If-Match of the ETag: %v", err)
	}
	if got := get(t, e.alice, "data", "lock", minio.GetObjectOptions{}); string(got) != "fourth" {
		t.Errorf("after If-Match: %q", got)
	}
	if err := putErr("missing", "x", ifMatch(hex.EncodeToString(sum[:]))); s3Code(err) != "NoSuchKey" {
		t.Errorf("If-Match on a missing key: %v", err)
	}
	// Multipart: checked at completion.
	big := bytes.Repeat([]byte("m"), 6<<20)
	o := ifNone()
	o.PartSize = 5 << 20
	if _, err := e.alice.PutObject(ctx, "data", "lock", bytes.NewReader(big), int64(len(big)), o); s3Code(err) != "PreconditionFailed" {
		t.Errorf("multipart If-None-Match on an existing key: %v", err)
	}
	if _, err := e.alice.PutObject(ctx, "data", "mp-new", bytes.NewReader(big), int64(len(big)), o); err != nil {
		t.Errorf("multipart If-None-Match on a new key: %v", err)
	}
	// Conditions given at creation (minio-go) are checked again at
	// completion: the key was taken meanwhile.
	core := minio.Core{Client: e.alice}
	id, err := core.NewMultipartUpload(ctx, "data", "taken-later", ifNone())
	if err != nil {
		t.Fatal(err)
	}
	part, err := core.PutObjectPart(ctx, "data", "taken-later", id, 1, bytes.NewReader([]byte("late")), 4, minio.PutObjectPartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	put(t, e.alice, "data", "taken-later", []byte("meanwhile"), minio.PutObjectOptions{})
	if _, err := core.CompleteMultipartUpload(ctx, "data", "taken-later", id, []minio.CompletePart{{PartNumber: 1, ETag: part.ETag}}, minio.PutObjectOptions{}); s3Code(err) != "PreconditionFailed" {
		t.Errorf("completion after the key was taken: %v", err)
	}
	if got := get(t, e.alice, "data", "taken-later", minio.GetObjectOptions{}); string(got) != "meanwhile" {
		t.Errorf("after the refused completion: %q", got)
	}
	// Racing lock takers: exactly one wins.
	var wg sync.WaitGroup
	wins := make(chan int, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := putErr("race", "taker", ifNone())
			switch s3Code(err) {
			case "":
				wins <- i
			case "PreconditionFailed":
			default:
				t.Errorf("taker %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	close(wins)
	if n := len(wins); n != 1 {
		t.Errorf("%d takers got the lock, want 1", n)
	}
}
