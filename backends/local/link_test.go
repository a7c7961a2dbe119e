//go:build linux

package local

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// LinkFile puts a nameless file in place as it is: the stored file is its
// inode, durable, with no temporary file left. A file on another file
// system is not linked, and nothing is left either.
func TestLinkFile(t *testing.T) {
	p := newFixture(t, nil)
	ctx := ctxT(t)
	src, err := os.OpenFile(p.root, unix.O_TMPFILE|os.O_RDWR, 0o600)
	if err != nil {
		t.Skipf("no O_TMPFILE here: %v", err)
	}
	defer src.Close()
	src.Write([]byte("linked content"))
	linked, err := p.LinkFile(ctx, "d/linked", src)
	if err != nil || !linked {
		t.Fatalf("linked %v, %v", linked, err)
	}
	a, err1 := os.Stat(filepath.Join(p.root, "d", "linked"))
	b, err2 := src.Stat()
	if err1 != nil || err2 != nil || !os.SameFile(a, b) || a.Mode().Perm() != 0o644 {
		t.Fatalf("stored file %v (%v), source %v (%v)", a, err1, b, err2)
	}
	rc, err := p.Open(ctx, "d/linked", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, []byte("linked content")) {
		t.Fatalf("read %q", got)
	}
	if ents, _ := os.ReadDir(filepath.Join(p.root, tmpDir)); len(ents) != 0 {
		t.Fatalf("temporary files left: %v", ents)
	}

	// /dev/shm is tmpfs: another file system than the test's directory.
	other, err := os.OpenFile("/dev/shm", unix.O_TMPFILE|os.O_RDWR, 0o600)
	if err != nil {
		t.Skipf("no tmpfs with O_TMPFILE at /dev/shm: %v", err)
	}
	defer other.Close()
	if st, st2 := statFS(t, "/dev/shm"), statFS(t, p.root); st == st2 {
		t.Skip("/dev/shm is on the test directory's file system")
	}
	if linked, err := p.LinkFile(ctx, "d/other", other); err != nil || linked {
		t.Fatalf("across file systems: linked %v, %v", linked, err)
	}
	if _, err := os.Stat(filepath.Join(p.root, "d", "other")); !os.IsNotExist(err) {
		t.Fatalf("a file that was not linked is there: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(p.root, tmpDir)); len(ents) != 0 {
		t.Fatalf("temporary files left: %v", ents)
	}
}

func statFS(t *testing.T, dir string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Dev
}
