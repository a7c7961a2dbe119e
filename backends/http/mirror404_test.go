package http

import (
	"errors"
	"io"
	iofs "io/fs"
	"testing"

	"github.com/datagate/datagate/backends"
)

// A mirror whose sync lags behind answers 404 for the newest files; the
// next mirror has them. The read used to fail with "404 Not Found"; it
// goes on to the next mirror now, without setting the first aside (it
// answered), and a file no mirror has is still "no such file".
func TestMirrorLackingAFileAsksTheNext(t *testing.T) {
	lagging := &site{files: map[string][]byte{"old.bin": []byte("old"), "reissued.bin": []byte("v1")}, style: "nginx", mount: "/data"}
	synced := &site{files: map[string][]byte{"old.bin": []byte("old"), "new.bin": []byte("newest"), "reissued.bin": []byte("v2, longer")}, style: "nginx", mount: "/data"}
	p := newTest(t, Config{URLs: []string{serve(t, lagging), serve(t, synced)}})

	rc, err := p.Open(ctxT(t), "new.bin", 0, -1)
	if err != nil {
		t.Fatalf("a file only the second mirror has: %v", err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(b) != "newest" {
		t.Fatalf("read %q, %v", b, err)
	}
	if e, err := p.Stat(ctxT(t), "new.bin"); err != nil || e.Size != 6 {
		t.Fatalf("Stat of a file only the second mirror has: %+v, %v", e, err)
	}
	// Registered at the size of its new version, which the lagging
	// mirror does not have yet.
	rc, err = p.OpenSized(ctxT(t), "reissued.bin", 0, -1, 10)
	if err != nil {
		t.Fatalf("a file whose registered version only the second mirror has: %v", err)
	}
	b, err = io.ReadAll(rc)
	rc.Close()
	if err != nil || string(b) != "v2, longer" {
		t.Fatalf("read %q, %v", b, err)
	}
	if _, err := p.OpenSized(ctxT(t), "reissued.bin", 0, -1, 5); !errors.Is(err, backends.ErrChanged) {
		t.Fatalf("a size no mirror has: %v, want ErrChanged", err)
	}
	if _, err := p.Open(ctxT(t), "none.bin", 0, -1); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("a file no mirror has: %v, want ErrNotExist", err)
	}
	// The lagging mirror is still the first asked.
	before := lagging.gets.Load()
	if rc, err := p.Open(ctxT(t), "old.bin", 0, -1); err != nil {
		t.Fatal(err)
	} else {
		rc.Close()
	}
	if lagging.gets.Load() == before {
		t.Error("the mirror that answered 404 was set aside")
	}
}
