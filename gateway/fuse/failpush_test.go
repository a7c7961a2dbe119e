package fuse

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/datagate/datagate/views"
)

// breakStore makes every push fail: the primary store's root becomes a
// file.
func breakStore(t *testing.T, e *env) {
	t.Helper()
	obj := filepath.Join(e.dir, "objects")
	if err := os.Rename(obj, obj+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(obj, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// within fails the test when fn has not returned after d, and then
// aborts the mount's FUSE connection (named by the mount's device minor,
// dev) so that fn and the test end.
func within(t *testing.T, dev uint64, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { fn(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(d):
	}
	t.Errorf("%s: still waiting after %v", what, d)
	minor := dev&0xff | (dev>>12)&0xfff00
	os.WriteFile(fmt.Sprintf("/sys/fs/fuse/connections/%d/abort", minor), []byte("1"), 0)
	<-done
}

// TestFailedPushOfNewFile fails the push of a new file at fsync, at a
// truncate(2) by path, and at a close racing its rename or unlink: each
// returns an error and the file goes. The deletion notice went out from
// under locks the kernel holds for those requests, and they hung.
func TestFailedPushOfNewFile(t *testing.T) {
	e := newEnv(t, map[string]views.Rights{"by-type": views.All}, Options{})
	if err := os.Mkdir(e.path("fc"), 0o755); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(e.mnt, &st); err != nil {
		t.Fatal(err)
	}
	breakStore(t, e)
	create := func(name string) (string, *os.File) {
		p := e.path("fc/" + name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("hello"); err != nil {
			t.Fatal(err)
		}
		return p, f
	}
	_, f := create("fsynced")
	within(t, st.Dev, 5*time.Second, "fsync", func() {
		if err := f.Sync(); err == nil {
			t.Error("fsync of a push that fails: no error")
		}
	})
	f.Close()
	p, f := create("truncated")
	within(t, st.Dev, 5*time.Second, "truncate", func() { os.Truncate(p, 2) })
	f.Close()
	for i := range 20 {
		p, f := create(fmt.Sprintf("moved%d", i))
		var wg sync.WaitGroup
		within(t, st.Dev, 5*time.Second, "close beside rename and unlink", func() {
			wg.Go(func() { f.Close() })
			wg.Go(func() {
				if os.Rename(p, p+".1") == nil {
					os.Remove(p + ".1")
				}
			})
			wg.Wait()
		})
	}
}
