package cache

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"testing"

	"github.com/datagate/datagate/backends"
)

// A cache whose disk fills up before MaxSize (a cap larger than the free
// space, or other files on the disk) evicts unused entries to make room,
// as it does above the cap: every cold read used to fail with "no space"
// for good while nothing was over the cap. Entries in use are kept; a
// read that cannot be made room for still fails with ErrNoSpace.
func TestDiskFullEvictsUnusedEntries(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	c := newCache(t, Options{Dir: dir, ChunkSize: 64 << 10, ReadAhead: 8, MaxSize: 1 << 30})

	read := func(s *source) ([]byte, *File, error) {
		f, err := c.Open(testCtx(t), s.Source())
		if err != nil {
			return nil, nil, err
		}
		// Sequential reads: read-ahead keeps several fetches, and their
		// preallocations, in flight.
		got, err := io.ReadAll(f)
		return got, f, err
	}
	a, b, d := newSource("a", 1200<<10, 1), newSource("b", 1200<<10, 2), newSource("d", 1200<<10, 3)
	got, fa, err := read(a)
	if err != nil || !bytes.Equal(got, a.data) {
		t.Fatalf("a: %v", err)
	}
	fa.Close()
	// a is unused: it makes way for b.
	got, fb, err := read(b)
	if err != nil || !bytes.Equal(got, b.data) {
		t.Fatalf("b on a disk full of an unused entry: %v", err)
	}
	if _, ok := c.Lookup("a"); ok {
		t.Error("a still cached")
	}
	// b is open: d cannot have its place, and says why.
	_, fd, err := read(d)
	if fd != nil {
		fd.Close()
	}
	if !errors.Is(err, backends.ErrNoSpace) {
		t.Fatalf("d while b is open: %v, want ErrNoSpace", err)
	}
	if got := readAll(t, fb); !bytes.Equal(got, b.data) {
		t.Fatal("b changed")
	}
	fb.Close()
}
