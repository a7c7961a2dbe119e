package sftp

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"
	gossh "golang.org/x/crypto/ssh"

	"github.com/datagate/datagate/views"
)

func randBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func put(t *testing.T, c *pkgsftp.Client, p string, data []byte) {
	t.Helper()
	f, err := c.Create(p)
	if err != nil {
		t.Fatalf("create %s: %v", p, err)
	}
	if _, err := f.ReadFrom(bytes.NewReader(data)); err != nil {
		t.Fatalf("write %s: %v", p, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close %s: %v", p, err)
	}
}

func get(t *testing.T, c *pkgsftp.Client, p string) []byte {
	t.Helper()
	f, err := c.Open(p)
	if err != nil {
		t.Fatalf("open %s: %v", p, err)
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := f.WriteTo(&b); err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return b.Bytes()
}

func wantStatus(t *testing.T, what string, err error, code uint32) {
	t.Helper()
	// The client turns some codes into os errors.
	switch {
	case code == fxPermission && errors.Is(err, os.ErrPermission):
		return
	case code == fxNoSuchFile && errors.Is(err, os.ErrNotExist):
		return
	}
	var se *pkgsftp.StatusError
	if !errors.As(err, &se) || se.Code != code {
		t.Fatalf("%s: got %v, want status %d", what, err, code)
	}
}

const (
	fxEOF         = 1
	fxNoSuchFile  = 2
	fxPermission  = 3
	fxFailure     = 4
	fxBadMessage  = 5
	fxUnsupported = 8
)

func TestPutGetAcrossViews(t *testing.T) {
	e := newTestEnv(t, nil)
	c, _ := e.client(t)
	data := randBytes(t, 3<<20+12345) // many writes in flight, out of order
	put(t, c, "/by-date/2026-01-02/obs/a.bin", data)
	if got := get(t, c, "/by-type/obs/2026-01-02/a.bin"); !bytes.Equal(got, data) {
		t.Fatalf("read back through the other view: %d bytes, want %d", len(got), len(data))
	}
	fi, err := c.Stat("/by-type/obs/2026-01-02/a.bin")
	if err != nil || fi.Size() != int64(len(data)) || fi.IsDir() {
		t.Fatalf("stat: %v %v", fi, err)
	}
	// Reads at any offset, concurrently.
	f, err := c.Open("/by-date/2026-01-02/obs/a.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			off := int64(i) * 200003
			buf := make([]byte, 70000)
			n, err := f.ReadAt(buf, off)
			if err != nil && err != io.EOF {
				t.Errorf("ReadAt %d: %v", off, err)
				return
			}
			if !bytes.Equal(buf[:n], data[off:off+int64(n)]) {
				t.Errorf("ReadAt %d: wrong bytes", off)
			}
		}()
	}
	wg.Wait()
	// Enormous offsets are end of file, not an error or a crash.
	for _, off := range []int64{int64(len(data)), 1 << 40, 1<<63 - 1, -1, -1 << 63} {
		if n, err := f.ReadAt(make([]byte, 10), off); n != 0 || err != io.EOF {
			t.Errorf("ReadAt %d: %d, %v", off, n, err)
		}
	}
}

func TestDirectoryOperations(t *testing.T) {
	e := newTestEnv(t, nil)
	c, _ := e.client(t)
	if err := c.Mkdir("/by-date/2026-03-04"); err != nil {
		t.Fatal(err)
	}
	if fi, err := c.Stat("/by-date/2026-03-04"); err != nil || !fi.IsDir() {
		t.Fatalf("stat new dir: %v %v", fi, err)
	}
	wantStatus(t, "mkdir again", c.Mkdir("/by-date/2026-03-04"), fxFailure)
	put(t, c, "/by-date/2026-03-04/fc/x.grb", []byte("one"))
	put(t, c, "/by-date/2026-03-04/fc/y.grb", []byte("two"))
	wantStatus(t, "rmdir non-empty", c.RemoveDirectory("/by-date/2026-03-04/fc"), fxFailure)

	// SFTP v3 rename refuses to replace; posix-rename replaces.
	wantStatus(t, "rename onto a file", c.Rename("/by-date/2026-03-04/fc/x.grb", "/by-date/2026-03-04/fc/y.grb"), fxFailure)
	if err := c.Rename("/by-date/2026-03-04/fc/x.grb", "/by-date/2026-03-04/fc/z.grb"); err != nil {
		t.Fatal(err)
	}
	if err := c.PosixRename("/by-date/2026-03-04/fc/z.grb", "/by-date/2026-03-04/fc/y.grb"); err != nil {
		t.Fatal(err)
	}
	if got := string(get(t, c, "/by-type/fc/2026-03-04/y.grb")); got != "one" {
		t.Fatalf("after posix-rename: %q", got)
	}
	// A rename is a metadata change: the object moved in the other view.
	if _, err := c.Stat("/by-type/fc/2026-03-04/z.grb"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("old name still there: %v", err)
	}

	// setstat: mtime honoured, chmod and chown accepted and ignored.
	mt := time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := c.Chtimes("/by-date/2026-03-04/fc/y.grb", mt, mt); err != nil {
		t.Fatal(err)
	}
	if fi, err := c.Stat("/by-type/fc/2026-03-04/y.grb"); err != nil || !fi.ModTime().Equal(mt) {
		t.Fatalf("mtime: %v %v", fi, err)
	}
	if err := c.Chmod("/by-date/2026-03-04/fc/y.grb", 0o600); err != nil {
		t.Fatalf("chmod: %v", err)
	}
	if err := c.Chown("/by-date/2026-03-04/fc/y.grb", 1, 1); err != nil {
		t.Fatalf("chown: %v", err)
	}
	// Truncate through setstat: a new version.
	if err := c.Truncate("/by-date/2026-03-04/fc/y.grb", 5); err != nil {
		t.Fatal(err)
	}
	if got := get(t, c, "/by-date/2026-03-04/fc/y.grb"); !bytes.Equal(got, []byte("one\x00\x00")) {
		t.Fatalf("after truncate: %q", got)
	}

	if err := c.Remove("/by-date/2026-03-04/fc/y.grb"); err != nil {
		t.Fatal(err)
	}
	put(t, c, "/by-date/2026-03-04/fc/w.grb", []byte("w"))
	wantStatus(t, "remove a directory", c.Remove("/by-date/2026-03-04/fc"), fxFailure)
	if err := c.Mkdir("/by-date/2026-03-05"); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveDirectory("/by-date/2026-03-05"); err != nil {
		t.Fatal(err)
	}

	// No links.
	wantStatus(t, "symlink", c.Symlink("/by-date/2026-03-04/fc/x", "/by-date/l"), fxUnsupported)
	if _, err := c.ReadLink("/by-date"); err == nil {
		t.Fatal("readlink worked")
	}
	if _, err := c.Lstat("/by-date"); err != nil {
		t.Fatalf("lstat: %v", err)
	}
	// statvfs and realpath.
	if vfs, err := c.StatVFS("/by-date"); err != nil || vfs.Bsize == 0 || vfs.Blocks == 0 {
		t.Fatalf("statvfs: %+v %v", vfs, err)
	}
	if p, err := c.RealPath("by-date/../by-type/./x"); err != nil || p != "/by-type/x" {
		t.Fatalf("realpath: %q %v", p, err)
	}
	if wd, err := c.Getwd(); err != nil || wd != "/" {
		t.Fatalf("getwd: %q %v", wd, err)
	}
}

func TestLargeDirectoryIsPaged(t *testing.T) {
	e := newTestEnv(t, nil)
	tree := e.tree("alice")
	ctx := ctxT(t)
	const n = 2345 // crosses the Tree's pages (1000) and pkg/sftp's (100)
	for i := range n {
		if _, err := tree.Create(ctx, fmt.Sprintf("/by-date/2026-01-01/obs/f%05d", i), strings.NewReader("x"), views.CreateOptions{Size: 1}); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := e.client(t)
	fis, err := c.ReadDir("/by-type/obs/2026-01-01")
	if err != nil {
		t.Fatal(err)
	}
	if len(fis) != n {
		t.Fatalf("%d entries, want %d", len(fis), n)
	}
	for i, fi := range fis {
		if fi.Name() != fmt.Sprintf("f%05d", i) || fi.Size() != 1 {
			t.Fatalf("entry %d: %s %d", i, fi.Name(), fi.Size())
		}
	}
	root, err := c.ReadDir("/")
	if err != nil || len(root) != 2 || root[0].Name() != "by-date" || !root[0].IsDir() {
		t.Fatalf("root: %v %v", root, err)
	}

	// Files the session is writing there are merged in, in name order,
	// across the pages; one over a stored file replaces its entry.
	want := map[string]int64{}
	for _, name := range []string{"f00000a", "f01500", "f02344z", "zzz"} {
		f, err := c.Create("/by-type/obs/2026-01-01/" + name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		f.Write([]byte("abc"))
		want[name] = 3
	}
	fis, err = c.ReadDir("/by-type/obs/2026-01-01")
	if err != nil {
		t.Fatal(err)
	}
	if len(fis) != n+3 {
		t.Fatalf("%d entries while writing, want %d", len(fis), n+3)
	}
	for i, fi := range fis {
		if i > 0 && fis[i-1].Name() >= fi.Name() {
			t.Fatalf("entry %d: %s after %s", i, fi.Name(), fis[i-1].Name())
		}
		if size, ok := want[fi.Name()]; ok && fi.Size() != size {
			t.Fatalf("%s: size %d, want the spool's %d", fi.Name(), fi.Size(), size)
		}
	}
}

func TestOutsideViewsAndRights(t *testing.T) {
	e := newTestEnv(t, nil)
	c, _ := e.client(t)
	put(t, c, "/by-type/obs/2026-01-01/a", []byte("a"))
	for _, p := range []string{"/secret", "/secret/a", "/../secret/a", "/by-date/../../secret", "/nope"} {
		if _, err := c.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stat %s: %v", p, err)
		}
		if _, err := c.Open(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("open %s: %v", p, err)
		}
	}
	// bob reads by-type only, and sees it as his root (his one view).
	b, err := e.dial("bob", gossh.Password(testPassword))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	bc, err := pkgsftp.NewClient(b)
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	if got := string(get(t, bc, "/obs/2026-01-01/a")); got != "a" {
		t.Fatalf("bob reads %q", got)
	}
	_, err = bc.Create("/obs/2026-01-01/b")
	wantStatus(t, "bob creates", err, fxPermission)
	wantStatus(t, "bob removes", bc.Remove("/obs/2026-01-01/a"), fxPermission)
	if _, err := bc.Stat("/by-date"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("bob sees by-date: %v", err)
	}
}

func TestReputAppendsByCopyOnWrite(t *testing.T) {
	e := newTestEnv(t, nil)
	c, _ := e.client(t)
	p := "/by-date/2026-01-01/obs/r.bin"
	put(t, c, p, []byte("hello "))
	f, err := c.OpenFile(p, os.O_WRONLY) // no truncation: reput
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("world"), 6); err != nil {
		t.Fatal(err)
	}
	// Until the handle closes, other sessions see the old version; the
	// writing session (an sshfs mount) reads the file as written so far.
	other, _ := e.client(t)
	if got := string(get(t, other, p)); got != "hello " {
		t.Fatalf("before close: %q", got)
	}
	if got := string(get(t, c, p)); got != "hello world" {
		t.Fatalf("before close, the writing session reads %q", got)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := string(get(t, c, p)); got != "hello world" {
		t.Fatalf("after reput: %q", got)
	}
	// Read-write handle (sshfs): reads see the handle's own writes.
	f, err = c.OpenFile(p, os.O_RDWR)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("J"), 0)
	buf := make([]byte, 5)
	if _, err := f.ReadAt(buf, 0); err != nil || string(buf) != "Jello" {
		t.Fatalf("read own write: %q %v", buf, err)
	}
	f.Close()
	if got := string(get(t, c, p)); got != "Jello world" {
		t.Fatalf("after rdwr: %q", got)
	}
	// Opening without writing leaves the file as it was; "put -p" sets
	// the mtime through the open handle.
	mt := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	f, _ = c.OpenFile(p, os.O_WRONLY)
	if err := c.Chtimes(p, mt, mt); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if fi, _ := c.Stat(p); fi.Size() != 11 {
		t.Fatalf("size %d", fi.Size())
	}
	f, _ = c.OpenFile(p, os.O_WRONLY|os.O_TRUNC)
	f.Write([]byte("new"))
	c.Chtimes(p, mt, mt)
	f.Close()
	if fi, _ := c.Stat(p); fi.Size() != 3 || !fi.ModTime().Equal(mt) {
		t.Fatalf("put -p: %d %v", fi.Size(), fi.ModTime())
	}
}

func TestDroppedUploadLeavesNothing(t *testing.T) {
	e := newTestEnv(t, nil)
	c, conn := e.client(t)
	f, err := c.Create("/by-date/2026-01-01/obs/half.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(randBytes(t, 1<<20)); err != nil {
		t.Fatal(err)
	}
	// The writer's session sees its open file (sshfs relies on it);
	// nobody else does.
	if fi, err := c.Stat("/by-date/2026-01-01/obs/half.bin"); err != nil || fi.Size() != 1<<20 {
		t.Fatalf("stat of the open upload in its session: %v %v", fi, err)
	}
	c2, _ := e.client(t)
	if _, err := c2.Stat("/by-date/2026-01-01/obs/half.bin"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("another session sees the open upload: %v", err)
	}
	conn.Close() // the connection drops with the file open
	deadline := time.Now().Add(10 * time.Second)
	for {
		ents, _ := os.ReadDir(e.srv.spoolDir)
		_, err := c2.Stat("/by-date/2026-01-01/obs/half.bin")
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the half upload is visible: %v", err)
		}
		if len(ents) == 0 && e.srv.sessionCount("alice") == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("spool not cleaned: %d files", len(ents))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := c2.Stat("/by-date/2026-01-01/obs/half.bin"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the half upload is visible: %v", err)
	}
}

func TestHandleCap(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.MaxHandles = 3 })
	c, _ := e.client(t)
	put(t, c, "/by-date/2026-01-01/obs/a", []byte("a"))
	var open []*pkgsftp.File
	for range 3 {
		f, err := c.Open("/by-date/2026-01-01/obs/a")
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, f)
	}
	_, err := c.Open("/by-date/2026-01-01/obs/a")
	wantStatus(t, "fourth handle", err, fxFailure)
	if !strings.Contains(err.Error(), "too many open handles") {
		t.Fatalf("message: %v", err)
	}
	_, err = c.ReadDir("/by-date")
	wantStatus(t, "opendir beyond the cap", err, fxFailure)
	open[0].Close()
	if _, err := c.ReadDir("/by-date"); err != nil {
		t.Fatalf("after closing one: %v", err)
	}
}

// rawSFTP speaks the protocol by hand, for requests no client library
// sends.
type rawSFTP struct {
	t  *testing.T
	w  io.Writer
	r  io.Reader
	id uint32
}

func newRaw(t *testing.T, e *testEnv) *rawSFTP {
	_, conn := e.client(t)
	s, err := conn.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	w, _ := s.StdinPipe()
	r, _ := s.StdoutPipe()
	if err := s.RequestSubsystem("sftp"); err != nil {
		t.Fatal(err)
	}
	raw := &rawSFTP{t: t, w: w, r: r}
	raw.send(1, binary.BigEndian.AppendUint32(nil, 3)) // INIT v3
	if typ, _ := raw.recv(); typ != 2 {
		t.Fatalf("version reply type %d", typ)
	}
	return raw
}

func (r *rawSFTP) send(typ byte, body []byte) {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(body)+1))
	b = append(b, typ)
	b = append(b, body...)
	if _, err := r.w.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawSFTP) recv() (byte, []byte) {
	var h [5]byte
	if _, err := io.ReadFull(r.r, h[:]); err != nil {
		r.t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(h[:4])-1)
	if _, err := io.ReadFull(r.r, body); err != nil {
		r.t.Fatal(err)
	}
	return h[4], body
}

func appendString(b []byte, s string) []byte {
	return append(binary.BigEndian.AppendUint32(b, uint32(len(s))), s...)
}

// request sends a request with a fresh id and returns the reply.
func (r *rawSFTP) request(typ byte, body []byte) (byte, []byte) {
	r.id++
	r.send(typ, append(binary.BigEndian.AppendUint32(nil, r.id), body...))
	rt, rb := r.recv()
	if binary.BigEndian.Uint32(rb) != r.id {
		r.t.Fatalf("reply to id %d for %d", binary.BigEndian.Uint32(rb), r.id)
	}
	return rt, rb[4:]
}

func TestMalformedAndUnknownRequests(t *testing.T) {
	e := newTestEnv(t, nil)
	c, _ := e.client(t)
	put(t, c, "/by-date/2026-01-01/obs/a", []byte("abc"))
	raw := newRaw(t, e)
	// Unknown extended request: unsupported, and the session goes on.
	typ, body := raw.request(200, appendString(nil, "frobnicate@example.com"))
	if typ != 101 || binary.BigEndian.Uint32(body) != fxUnsupported {
		t.Fatalf("unknown extension: type %d status %v", typ, body)
	}
	// fsync@openssh.com of a handle that is not open, or of none.
	typ, body = raw.request(200, appendString(appendString(nil, "fsync@openssh.com"), "1"))
	if typ != 101 || binary.BigEndian.Uint32(body) != fxFailure {
		t.Fatalf("fsync of no open file: type %d status %v", typ, body)
	}
	typ, body = raw.request(200, appendString(nil, "fsync@openssh.com"))
	if typ != 101 || binary.BigEndian.Uint32(body) != fxBadMessage {
		t.Fatalf("fsync without a handle: type %d status %v", typ, body)
	}
	// Open, then read at 2^64-1 (negative as int64) and 2^63-1.
	open := appendString(nil, "/by-date/2026-01-01/obs/a")
	open = binary.BigEndian.AppendUint32(open, 1) // READ
	open = binary.BigEndian.AppendUint32(open, 0) // no attrs
	typ, body = raw.request(3, open)
	if typ != 102 {
		t.Fatalf("open: type %d %v", typ, body)
	}
	handle := body[4 : 4+binary.BigEndian.Uint32(body)]
	for _, off := range []uint64{1<<64 - 1, 1 << 63, 1<<63 - 1, 4} {
		rd := appendString(nil, string(handle))
		rd = binary.BigEndian.AppendUint64(rd, off)
		rd = binary.BigEndian.AppendUint32(rd, 1<<20)
		typ, body = raw.request(5, rd)
		if typ != 101 || binary.BigEndian.Uint32(body) != fxEOF {
			t.Fatalf("read at %d: type %d %v", off, typ, body)
		}
	}
	// A handle that was never issued.
	rd := appendString(nil, "12345")
	rd = binary.BigEndian.AppendUint64(rd, 0)
	rd = binary.BigEndian.AppendUint32(rd, 10)
	if typ, _ := raw.request(5, rd); typ != 101 {
		t.Fatalf("bad handle: type %d", typ)
	}
	// An unknown packet type ends the session (pkg/sftp cannot parse
	// past it): the connection stays up and others go on.
	raw.id++
	raw.send(99, binary.BigEndian.AppendUint32(nil, raw.id))
	if _, err := io.ReadAll(raw.r); err != nil {
		t.Fatalf("after packet type 99: %v", err)
	}
	// Still alive.
	if got := string(get(t, c, "/by-date/2026-01-01/obs/a")); got != "abc" {
		t.Fatalf("after bad input: %q", got)
	}
}

func TestConcurrentSessions(t *testing.T) {
	e := newTestEnv(t, nil)
	c, _ := e.client(t)
	data := randBytes(t, 1<<20)
	put(t, c, "/by-date/2026-01-01/obs/shared", data)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc, err := e.dial("alice", gossh.PublicKeys(e.key))
			if err != nil {
				t.Error(err)
				return
			}
			defer sc.Close()
			cl, err := pkgsftp.NewClient(sc)
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			p := fmt.Sprintf("/by-date/2026-01-01/obs/own%d", i)
			f, err := cl.Create(p)
			if err != nil {
				t.Error(err)
				return
			}
			f.ReadFrom(bytes.NewReader(data[:i*1000]))
			if err := f.Close(); err != nil {
				t.Error(err)
				return
			}
			r, err := cl.Open("/by-date/2026-01-01/obs/shared")
			if err != nil {
				t.Error(err)
				return
			}
			defer r.Close()
			h := sha256.New()
			r.WriteTo(h)
			if !bytes.Equal(h.Sum(nil), sha256Of(data)) {
				t.Errorf("session %d read wrong bytes", i)
			}
		}()
	}
	wg.Wait()
	for i := range 8 {
		if fi, err := c.Stat(fmt.Sprintf("/by-type/obs/2026-01-01/own%d", i)); err != nil || fi.Size() != int64(i*1000) {
			t.Errorf("own%d: %v %v", i, fi, err)
		}
	}
}

func sha256Of(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func TestChecksumCommands(t *testing.T) {
	e := newTestEnv(t, nil)
	c, conn := e.client(t)
	data := []byte("some content")
	put(t, c, "/by-date/2026-01-01/obs/a b", data)
	run := func(cmd, stdin string) (string, string, error) {
		s, err := conn.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var out, errb bytes.Buffer
		s.Stdout, s.Stderr, s.Stdin = &out, &errb, strings.NewReader(stdin)
		err = s.Run(cmd)
		return out.String(), errb.String(), err
	}
	md := md5.Sum(data)
	out, _, err := run(`md5sum "/by-date/2026-01-01/obs/a b"`, "")
	if want := fmt.Sprintf("%x  /by-date/2026-01-01/obs/a b\n", md); err != nil || out != want {
		t.Fatalf("md5sum: %q %v, want %q", out, err, want)
	}
	out, _, err = run(`sha256sum by-type/obs/2026-01-01/a\ b`, "")
	if want := fmt.Sprintf("%x  by-type/obs/2026-01-01/a b\n", sha256.Sum256(data)); err != nil || out != want {
		t.Fatalf("sha256sum: %q %v, want %q", out, err, want)
	}
	out, _, err = run("md5sum", "")
	if err != nil || out != "d41d8cd98f00b204e9800998ecf8427e  -\n" {
		t.Fatalf("md5sum of stdin: %q %v", out, err)
	}
	_, errs, err := run("md5sum /secret/x", "")
	var ee *gossh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 1 || !strings.Contains(errs, "No such file") {
		t.Fatalf("md5sum outside views: %v %q", err, errs)
	}
	_, errs, err = run("rm -rf /", "")
	if !errors.As(err, &ee) || ee.ExitStatus() != 1 || !strings.Contains(errs, "refused") {
		t.Fatalf("rm: %v %q", err, errs)
	}
	if sumLine([]byte{1}, "a\nb") != "\\01  a\\nb\n" {
		t.Fatalf("escaping: %q", sumLine([]byte{1}, "a\nb"))
	}
}

var _ iofs.FileInfo = info{}

func TestShutdownWaitsForSessions(t *testing.T) {
	e := newTestEnv(t, nil)
	c, _ := e.client(t)
	f, err := c.Create("/by-date/2026-01-01/obs/inflight")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	e.srv.Shutdown(ctx) // an idle client keeps its connection: ctx ends it
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
	if n := e.srv.sessionCount("alice"); n != 0 {
		t.Fatalf("%d sessions still running after Shutdown", n)
	}
	if _, err := e.tree("alice").Stat(ctxT(t), "/by-date/2026-01-01/obs/inflight"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the interrupted upload is visible: %v", err)
	}
}

// Handles of one session on one path share the file: writes through
// either land in it, a reader opened meanwhile reads them, each close
// pushes what changed, and the last close leaves the whole content.
func TestSharedHandlesConcurrently(t *testing.T) {
	e := newTestEnv(t, nil)
	c, _ := e.client(t)
	other, _ := e.client(t)
	p := "/by-date/2026-02-02/obs/shared.bin"
	const n, chunk = 8, 64 << 10
	want := randBytes(t, n*chunk)
	var files []*pkgsftp.File
	for range n {
		f, err := c.OpenFile(p, os.O_WRONLY|os.O_CREATE)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Go(func() {
			if _, err := f.WriteAt(want[i*chunk:(i+1)*chunk], int64(i*chunk)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := get(t, c, p); !bytes.Equal(got, want) {
		t.Fatalf("the writing session reads %d bytes, not what was written", len(got))
	}
	if _, err := other.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("another session sees the file before a close: %v", err)
	}
	for i, f := range files {
		wg.Go(func() {
			if err := f.Close(); err != nil {
				t.Errorf("close %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if got := get(t, other, p); !bytes.Equal(got, want) {
		t.Fatalf("stored %d bytes, not what was written", len(got))
	}
}
