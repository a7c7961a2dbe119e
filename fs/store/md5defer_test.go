package store

import (
	"bytes"
	"context"
	"crypto/md5"
	"testing"
	"time"
)

// recordedMD5 is o's MD5 as recorded now, not waiting.
func recordedMD5(t *testing.T, e *env, id [16]byte) []byte {
	t.Helper()
	o, err := e.st.idx.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return o.MD5
}

// The background MD5 of an object with an ETag of its own waits while
// uploads are in flight and for a pause after them, at most md5MaxDefer;
// an object without one (its readers wait for the MD5) is not deferred.
func TestMD5DeferredWhileUploading(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.st.md5s.idle, e.st.md5s.maxDefer = 100*time.Millisecond, time.Minute
	data := pattern(3*pipeBufSize + 5)
	want := md5.Sum(data)
	uploading := e.st.Uploading()
	tagged, err := e.st.Put(ctx, PutRequest{Name: "tagged", Size: -1, ETag: "e-2"}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := e.st.Put(ctx, PutRequest{Name: "plain", Size: -1}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Second)
	o, err := e.st.Get(short, plain.ID) // waits for its job
	cancel()
	if err != nil || !bytes.Equal(o.MD5, want[:]) {
		t.Fatalf("the MD5 of an object without an ETag of its own, during an upload: %v, %x", err, o.MD5)
	}
	time.Sleep(300 * time.Millisecond) // thrice the pause wanted
	if m := recordedMD5(t, e, tagged.ID); m != nil {
		t.Fatalf("a tagged object's MD5 was computed during an upload: %x", m)
	}
	t0 := time.Now()
	uploading()
	e.st.md5s.wait(ctx, tagged.ID)
	if m := recordedMD5(t, e, tagged.ID); !bytes.Equal(m, want[:]) {
		t.Fatalf("after the upload: md5 %x, want %x", m, want)
	}
	if d := time.Since(t0); d < e.st.md5s.idle {
		t.Fatalf("computed %v after the upload ended, before the pause", d)
	}
}

// Sustained uploads do not starve a deferred MD5: it runs after
// maxDefer all the same.
func TestMD5DeferralBounded(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.st.md5s.idle, e.st.md5s.maxDefer = time.Hour, 500*time.Millisecond
	data := pattern(3*pipeBufSize + 5)
	want := md5.Sum(data)
	defer e.st.Uploading()() // never pauses during the test
	t0 := time.Now()
	o, err := e.st.Put(ctx, PutRequest{Name: "tagged", Size: -1, ETag: "e-2"}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	e.st.md5s.wait(ctx, o.ID)
	if m := recordedMD5(t, e, o.ID); !bytes.Equal(m, want[:]) || time.Since(t0) < e.st.md5s.maxDefer {
		t.Fatalf("md5 %x after %v, want %x after at least %v", m, time.Since(t0), want, e.st.md5s.maxDefer)
	}
}

// Close ends the deferral: it runs the deferred jobs and waits for them,
// so the reopened store has the MD5.
func TestCloseRunsDeferredMD5(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.st.md5s.idle, e.st.md5s.maxDefer = time.Hour, time.Hour
	data := pattern(3*pipeBufSize + 5)
	want := md5.Sum(data)
	defer e.st.Uploading()()
	o, err := e.st.Put(ctx, PutRequest{Name: "tagged", Size: -1, ETag: "e-2"}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	e.st.Close()
	if d := time.Since(t0); d > 20*time.Second {
		t.Fatalf("Close took %v", d)
	}
	e.open(t)
	if m := recordedMD5(t, e, o.ID); !bytes.Equal(m, want[:]) {
		t.Fatalf("after reopening: md5 %x, want %x", m, want)
	}
}
