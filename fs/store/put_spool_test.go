package store

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"io"
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func newSpoolFile(t *testing.T, f *os.File, data []byte, sum []byte) io.Reader {
	t.Helper()
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	return HashedSpool(f, int64(len(data)), sum)
}

// A spool with its SHA-256 on the primary store's file system is linked
// in place, nameless (O_TMPFILE) or not: the stored file is the spool's
// inode, stamped verified, with the caller's sum and the MD5 computed
// in the background. One that cannot be linked (an unlinked file that was
// not made nameless) is copied and hashed as before.
func TestPutLinksSpool(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	data := pattern(3*pipeBufSize + 5)
	ss, ms := sha256.Sum256(data), md5.Sum(data)
	stored := func(name string, sf io.Reader) string {
		t.Helper()
		o, err := e.st.Put(ctx, PutRequest{Name: name, Size: int64(len(data))}, sf)
		if err != nil || !bytes.Equal(o.SHA256, ss[:]) {
			t.Fatalf("%s: put: %v, sha %x", name, err, o.SHA256)
		}
		p, err := e.st.primaryFS.LocalPath(primaryPath(o.ID))
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(p); err != nil || !fi.ModTime().Equal(sentinel(o)) || fi.Mode().Perm() != 0o644 {
			t.Fatalf("%s: stored file %v, %v", name, fi, err)
		}
		e.st.md5s.wait(ctx, o.ID)
		if g, err := e.st.Get(ctx, o.ID); err != nil || !bytes.Equal(g.MD5, ms[:]) {
			t.Fatalf("%s: background MD5: %v, %x", name, err, g.MD5)
		}
		if got, err := readObject(t, e.st, o.ID); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: read back %d bytes, %v", name, len(got), err)
		}
		return p
	}
	same := func(p string, f *os.File) bool {
		a, err1 := os.Stat(p)
		b, err2 := f.Stat()
		return err1 == nil && err2 == nil && os.SameFile(a, b)
	}

	tmpfile, err := os.OpenFile(e.dir, unix.O_TMPFILE|os.O_RDWR, 0o600)
	if err != nil {
		t.Skipf("no O_TMPFILE here: %v", err)
	}
	defer tmpfile.Close()
	if p := stored("nameless", newSpoolFile(t, tmpfile, data, ss[:])); !same(p, tmpfile) {
		t.Fatal("the nameless spool was not linked")
	}

	named, err := os.CreateTemp(e.dir, "spool-")
	if err != nil {
		t.Fatal(err)
	}
	defer named.Close()
	if p := stored("named", newSpoolFile(t, named, data, ss[:])); !same(p, named) {
		t.Fatal("the named spool was not linked")
	}

	gone, err := os.CreateTemp(e.dir, "spool-")
	if err != nil {
		t.Fatal(err)
	}
	defer gone.Close()
	os.Remove(gone.Name())
	if p := stored("unlinked", newSpoolFile(t, gone, data, ss[:])); same(p, gone) {
		t.Fatal("an unlinked spool cannot be linked, yet the stored file is it")
	}
	// Without a sum of the writer's, the spool is copied and hashed.
	named2, err := os.CreateTemp(e.dir, "spool-")
	if err != nil {
		t.Fatal(err)
	}
	defer named2.Close()
	if p := stored("no sum", newSpoolFile(t, named2, data, nil)); same(p, named2) {
		t.Fatal("a spool without its writer's sum was linked")
	}
}

// A spool whose size is not the one announced is neither linked nor
// stored.
func TestPutSpoolWrongSize(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	data := pattern(2*pipeBufSize + 1)
	ss := sha256.Sum256(data)
	f, err := os.CreateTemp(e.dir, "spool-")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := e.st.Put(ctx, PutRequest{Name: "short", Size: int64(len(data)) + 1}, newSpoolFile(t, f, data, ss[:])); err == nil {
		t.Fatal("a spool shorter than announced was stored")
	}
	if fi, err := f.Stat(); err != nil || fi.Sys().(*syscall.Stat_t).Nlink != 1 {
		t.Fatalf("the spool was linked: %v %v", fi.Sys(), err)
	}
}
