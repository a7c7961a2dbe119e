package fuse

import (
	"bytes"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/datagate/datagate/views"
)

// opCounter counts the OPEN, FLUSH and RELEASE requests of a mount.
type opCounter struct {
	gofuse.RawFileSystem
	open, flush, release atomic.Int64
}

func (c *opCounter) Open(cancel <-chan struct{}, in *gofuse.OpenIn, out *gofuse.OpenOut) gofuse.Status {
	c.open.Add(1)
	return c.RawFileSystem.Open(cancel, in, out)
}

func (c *opCounter) Flush(cancel <-chan struct{}, in *gofuse.FlushIn) gofuse.Status {
	c.flush.Add(1)
	return c.RawFileSystem.Flush(cancel, in)
}

func (c *opCounter) Release(cancel <-chan struct{}, in *gofuse.ReleaseIn) {
	c.release.Add(1)
	c.RawFileSystem.Release(cancel, in)
}

// A read-only mount opens files without asking (no_open): after the
// first OPEN is answered ENOSYS and the first FLUSH too, reading files —
// small and large, cold (fetched by the READs) and cached — sends no
// OPEN, FLUSH or RELEASE at all, and a replaced object is read anew.
func TestReadOnlyNoOpen(t *testing.T) {
	counter := &opCounter{}
	e := newEnv(t, map[string]views.Rights{"by-type": views.All}, Options{ReadOnly: true,
		WrapRaw: func(r gofuse.RawFileSystem) gofuse.RawFileSystem { counter.RawFileSystem = r; return counter }})
	small := []byte("small file")
	big := bytes.Repeat([]byte("0123456789abcdef"), 300_000) // 4.8 MB: several READs
	e.register(t, "a", small, map[string]string{"type": "fc"})
	e.register(t, "b", big, map[string]string{"type": "fc"})
	read := func(name string, want []byte) {
		t.Helper()
		if b, err := os.ReadFile(e.path("fc/" + name)); err != nil || !bytes.Equal(b, want) {
			t.Fatalf("read %s: %d bytes, %v", name, len(b), err)
		}
	}
	read("a", small) // the OPEN answered ENOSYS
	opens, flushes := counter.open.Load(), counter.flush.Load()
	if opens != 1 || flushes > 1 {
		t.Fatalf("first read: %d OPENs and %d FLUSHes", opens, flushes)
	}
	for range 3 {
		read("a", small)
		read("b", big)
	}
	if o, f := counter.open.Load(), counter.flush.Load(); o != opens || f != flushes {
		t.Fatalf("later reads sent %d OPENs and %d FLUSHes", o-opens, f-flushes)
	}
	if r := counter.release.Load(); r > 1 {
		t.Fatalf("%d RELEASEs", r)
	}
	// A partial read at an offset, through pread on a held descriptor.
	f, err := os.Open(e.path("fc/b"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if n, err := f.ReadAt(buf, 3_000_001); err != nil || !bytes.Equal(buf[:n], big[3_000_001:3_000_101]) {
		t.Fatalf("pread: %d %v", n, err)
	}
	f.Close()

	// Replaced: the path's new object is read, not the old pages.
	newer := []byte("a newer version, longer")
	e.register(t, "a", newer, map[string]string{"type": "fc"})
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(e.path("fc/a"))
		if err == nil && bytes.Equal(b, newer) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replaced object still read as %q, %v", b, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Writes are refused by the kernel (ro), whatever the open.
	wantErrno(t, os.WriteFile(e.path("fc/a"), []byte("x"), 0o644), syscall.EROFS)
	_, err = os.OpenFile(e.path("fc/a"), os.O_RDWR, 0)
	wantErrno(t, err, syscall.EROFS)
}
