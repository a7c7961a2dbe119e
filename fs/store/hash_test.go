package store

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
)

// Content of several pipeline buffers, not a multiple of one, through
// every way a source may hand it out.
func TestPutPipelineHashesWhatItStores(t *testing.T) {
	e := newEnv(t)
	data := pattern(5*pipeBufSize + 12345)
	ms, ss := md5.Sum(data), sha256.Sum256(data)
	sources := map[string]func() io.Reader{
		"whole":       func() io.Reader { return bytes.NewReader(data) },
		"byte a read": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data[:3*pipeBufSize/2])) },
		"data+EOF":    func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) },
		"half reads":  func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
	}
	for name, src := range sources {
		for _, known := range []bool{true, false} {
			want, wantMD5, wantSHA := data, ms[:], ss[:]
			if name == "byte a read" {
				want = data[:3*pipeBufSize/2]
				m, s := md5.Sum(want), sha256.Sum256(want)
				wantMD5, wantSHA = m[:], s[:]
			}
			size := int64(-1)
			if known {
				size = int64(len(want))
			}
			// MD5 on the way when asked for, else in the background.
			o, err := e.st.Put(ctxT(t), PutRequest{Name: "p", Size: size}, MD5Now(src()))
			if err != nil {
				t.Fatalf("%s, size %d: %v", name, size, err)
			}
			if o.Size != int64(len(want)) || !bytes.Equal(o.MD5, wantMD5) || !bytes.Equal(o.SHA256, wantSHA) {
				t.Fatalf("%s, size %d: record %d bytes md5 %x sha %x", name, size, o.Size, o.MD5, o.SHA256)
			}
			d, err := e.st.Put(ctxT(t), PutRequest{Name: "p", Size: size}, src())
			if err != nil {
				t.Fatalf("%s, size %d: %v", name, size, err)
			}
			if d.MD5 != nil || d.ETag != "" || !bytes.Equal(d.SHA256, wantSHA) {
				t.Fatalf("%s, size %d: deferred: record md5 %x etag %q sha %x", name, size, d.MD5, d.ETag, d.SHA256)
			}
			if g, err := e.st.Get(ctxT(t), d.ID); err != nil || !bytes.Equal(g.MD5, wantMD5) || g.ETag != hex.EncodeToString(wantMD5) {
				t.Fatalf("%s, size %d: Get after a deferred MD5: %v", name, size, err)
			}
			got, err := readObject(t, e.st, o.ID)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: read back %d bytes, %v", name, len(got), err)
			}
		}
	}
}

// Failures after the pipeline started leave nothing behind and no
// goroutine running.
func TestPutPipelineFailuresLeaveNothing(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	data := pattern(4*pipeBufSize + 7)
	midway, cancelMidway := context.WithCancel(ctx)
	defer cancelMidway()
	blocked, cancelBlocked := context.WithCancel(ctx)
	defer cancelBlocked()
	sha := sha256.Sum256([]byte("other"))
	before := runtime.NumGoroutine()
	cases := []struct {
		name string
		ctx  context.Context
		req  PutRequest
		r    io.Reader
		kind fs.Kind
	}{
		{"reader error after 2 buffers", ctx, PutRequest{Name: "x", Size: -1},
			io.MultiReader(bytes.NewReader(data[:2*pipeBufSize+5]), iotest.ErrReader(errors.New("client went away"))), anyKind},
		{"longer than announced", ctx, PutRequest{Name: "x", Size: int64(len(data)) - 3}, bytes.NewReader(data), fs.Invalid},
		{"shorter than announced", ctx, PutRequest{Name: "x", Size: int64(len(data)) + 1}, bytes.NewReader(data), fs.Invalid},
		{"sha256 mismatch", ctx, PutRequest{Name: "x", Size: -1, SHA256: sha[:]}, bytes.NewReader(data), fs.Invalid},
		{"cancelled mid-put", midway, PutRequest{Name: "x", Size: int64(len(data))},
			&cancelAfter{r: bytes.NewReader(data), n: 2 * pipeBufSize, cancel: cancelMidway}, fs.Invalid},
		{"cancelled while the source blocks", blocked, PutRequest{Name: "x", Size: -1},
			&blockAfter{r: bytes.NewReader(data), n: 3 * pipeBufSize, ctx: blocked, cancel: cancelBlocked}, fs.Invalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.st.Put(c.ctx, c.req, c.r)
			if err == nil {
				t.Fatal("put succeeded")
			}
			if c.kind != anyKind && fs.KindOf(err) != c.kind {
				t.Errorf("error kind %q, want %q: %v", fs.KindOf(err), c.kind, err)
			}
			if n := countFiles(t, filepath.Join(e.dir, "objects")); n != 0 {
				t.Fatalf("%d files left in the store", n)
			}
		})
	}
	// Goroutines end before Put returns; allow the runtime a moment for
	// its own.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

const anyKind fs.Kind = 255

// blockAfter gives n bytes, then blocks until ctx is done, as a stalled
// client does; it cancels ctx itself once the first n bytes are out.
type blockAfter struct {
	r      io.Reader
	n      int
	ctx    context.Context
	cancel func()
}

func (b *blockAfter) Read(p []byte) (int, error) {
	if b.n <= 0 {
		go func() { time.Sleep(20 * time.Millisecond); b.cancel() }()
		<-b.ctx.Done()
		return 0, errors.New("connection closed")
	}
	if len(p) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= n
	return n, err
}

// A store may stop reading once it has the size announced: the sums must
// then still cover exactly what it took, and a longer source is refused.
func TestHashPipeEnd(t *testing.T) {
	data := pattern(3*pipeBufSize + 1)
	for _, extra := range []int{0, 1} {
		src := bytes.NewReader(append(data, make([]byte, extra)...))
		p := newHashPipe(context.Background(), src, int64(len(data)), extra == 0)
		got, err := io.ReadAll(io.LimitReader(p, int64(len(data))))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %d bytes, %v", len(got), err)
		}
		err = p.end()
		p.finish()
		if extra == 1 {
			if !errors.Is(err, errLonger) {
				t.Fatalf("a longer source ends with %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		m, s := p.sums()
		ws := sha256.Sum256(data)
		if m != nil || !bytes.Equal(s, ws[:]) {
			t.Fatalf("sums differ: md5 %x (deferred: none)", m)
		}
	}
}

// Content of a single buffer is small enough to hash at once: its MD5
// is never deferred.
func TestPutSmallHasMD5AtOnce(t *testing.T) {
	e := newEnv(t)
	data := pattern(pipeBufSize - 1)
	o, err := e.st.Put(ctxT(t), PutRequest{Name: "s", Size: -1}, bytes.NewReader(data))
	if want := md5.Sum(data); err != nil || !bytes.Equal(o.MD5, want[:]) {
		t.Fatalf("put: %v, md5 %x", err, o.MD5)
	}
}

// A deferred MD5 is of verified content only: a stored file changed
// before its job runs gets none recorded (and Get does not wait for
// ever); Close waits for the jobs, so a reopened store has the others'.
func TestDeferredMD5(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	data := pattern(3*pipeBufSize + 5)
	want := md5.Sum(data)
	e.st.md5s.run.Lock() // jobs wait
	bad, err := e.st.Put(ctx, PutRequest{Name: "bad", Size: -1}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	good, err := e.st.Put(ctx, PutRequest{Name: "good", Size: -1}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.st.primaryFS.LocalPath(primaryPath(bad.ID))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("X"), 7)
	f.Close()
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	o, err := e.st.Get(short, good.ID)
	cancel()
	if err != nil || o.MD5 != nil {
		t.Fatalf("Get while the job waits: %v, md5 %x", err, o.MD5)
	}
	// An object with an ETag of its own is not waited for.
	tagged, err := e.st.Put(ctx, PutRequest{Name: "tagged", Size: -1, ETag: "e-2"}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	short, cancel = context.WithTimeout(ctx, 5*time.Second)
	t0 := time.Now()
	o, err = e.st.Get(short, tagged.ID)
	cancel()
	if err != nil || o.MD5 != nil || o.ETag != "e-2" || time.Since(t0) > 4*time.Second {
		t.Fatalf("Get of a tagged object while its job waits: %v, md5 %x, etag %q, after %v", err, o.MD5, o.ETag, time.Since(t0))
	}
	e.st.md5s.run.Unlock()
	if o, err := e.st.Get(ctx, bad.ID); err != nil || o.MD5 != nil || o.ETag != "" {
		t.Fatalf("changed file: %v, md5 %x etag %q recorded", err, o.MD5, o.ETag)
	}
	third, err := e.st.Put(ctx, PutRequest{Name: "third", Size: int64(len(data))}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	e.st.Close() // waits for the jobs
	e.open(t)
	for _, id := range []fs.ID{good.ID, third.ID, tagged.ID} {
		if o, err := e.st.Get(ctx, id); err != nil || !bytes.Equal(o.MD5, want[:]) {
			t.Fatalf("after reopening: %v, md5 %x", err, o.MD5)
		}
	}
}

// Local files (S3 multipart parts) are copied by the kernel and hashed as
// written; a total that differs from the size announced fails with
// nothing left.
func TestPutLocalFiles(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	dir := t.TempDir()
	data := pattern(5*pipeBufSize + 3)
	// One part empty, as a file of a part may be.
	cuts := []int{0, 2*pipeBufSize + 1, 2*pipeBufSize + 1, 4 * pipeBufSize, len(data)}
	var names []string
	for i := 1; i < len(cuts); i++ {
		name := filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(name, data[cuts[i-1]:cuts[i]], 0o600); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	ms, ss := md5.Sum(data), sha256.Sum256(data)
	for _, now := range []bool{false, true} {
		var r io.Reader = &filesReader{names: names}
		if now {
			r = MD5Now(r)
		}
		o, err := e.st.Put(ctx, PutRequest{Name: "parts", Size: int64(len(data)), ETag: "x-5"}, r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(o.SHA256, ss[:]) || o.ETag != "x-5" || (now && !bytes.Equal(o.MD5, ms[:])) || (!now && o.MD5 != nil) {
			t.Fatalf("MD5 at once %v: record md5 %x sha %x etag %q", now, o.MD5, o.SHA256, o.ETag)
		}
		// Get does not wait for the MD5 of an object with an ETag.
		e.st.md5s.wait(ctx, o.ID)
		if g, err := e.st.Get(ctx, o.ID); err != nil || !bytes.Equal(g.MD5, ms[:]) || g.ETag != "x-5" {
			t.Fatalf("Get: %v, md5 %x, etag %q", err, g.MD5, g.ETag)
		}
		got, err := readObject(t, e.st, o.ID)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes, %v", len(got), err)
		}
		if err := e.st.Delete(ctx, o.ID); err != nil {
			t.Fatal(err)
		}
	}
	for _, size := range []int64{int64(len(data)) - 1, int64(len(data)) + 1} {
		if _, err := e.st.Put(ctx, PutRequest{Name: "parts", Size: size}, &filesReader{names: names}); fs.KindOf(err) != fs.Invalid {
			t.Fatalf("size %d of %d: %v", size, len(data), err)
		}
	}
	wrong := sha256.Sum256([]byte("other"))
	if _, err := e.st.Put(ctx, PutRequest{Name: "parts", Size: int64(len(data)), SHA256: wrong[:]}, &filesReader{names: names}); fs.KindOf(err) != fs.Invalid {
		t.Fatalf("SHA-256 mismatch: %v", err)
	}
	if n := countFiles(t, filepath.Join(e.dir, "objects")); n != 0 {
		t.Fatalf("%d files left in the store", n)
	}
}

// filesReader is a LocalFiles whose Read must not be called: Put copies
// the files themselves.
type filesReader struct{ names []string }

func (f *filesReader) Read([]byte) (int, error) { return 0, errors.New("read instead of copied") }
func (f *filesReader) LocalFiles() []string     { return f.names }

// A section of a local file from its start (an SFTP or FUSE spool,
// unlinked or not) is copied by the kernel through a descriptor of the
// store's own: the spool's offset does not move. Other sections go
// through the pipeline.
func TestPutSpoolSection(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	data := pattern(3*pipeBufSize + 77)
	f, err := os.CreateTemp(t.TempDir(), "spool")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	os.Remove(f.Name())
	own := reopenSpool(io.NewSectionReader(f, 0, int64(len(data))), int64(len(data)))
	if own == nil {
		t.Fatal("an unlinked spool is not reopened")
	}
	own.Close()
	ms, ss := md5.Sum(data), sha256.Sum256(data)
	cases := []struct {
		name      string
		off, size int64
	}{
		{"whole", 0, int64(len(data))},
		{"head", 0, int64(len(data)) - 10},
		{"tail", 10, int64(len(data)) - 10},
	}
	for _, c := range cases {
		want := data[c.off : c.off+c.size]
		m, s := md5.Sum(want), sha256.Sum256(want)
		if c.name == "whole" {
			m, s = ms, ss
		}
		o, err := e.st.Put(ctx, PutRequest{Name: c.name, Size: c.size}, io.NewSectionReader(f, c.off, c.size))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !bytes.Equal(o.SHA256, s[:]) || o.Size != c.size {
			t.Fatalf("%s: record %d bytes sha %x", c.name, o.Size, o.SHA256)
		}
		if g, err := e.st.Get(ctx, o.ID); err != nil || !bytes.Equal(g.MD5, m[:]) {
			t.Fatalf("%s: Get: %v", c.name, err)
		}
		got, err := readObject(t, e.st, o.ID)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: read back %d bytes, %v", c.name, len(got), err)
		}
		if pos, _ := f.Seek(0, io.SeekCurrent); pos != int64(len(data)) {
			t.Fatalf("%s: the spool's offset moved to %d", c.name, pos)
		}
	}
}

// TestMD5ResumedAfterCrash: a child pushes an object whose background MD5
// cannot run and exits without closing the store; the next Open computes
// and records it.
func TestMD5ResumedAfterCrash(t *testing.T) {
	data := pattern(3*pipeBufSize + 5)
	if dir := os.Getenv("DG_MD5_CRASH_DIR"); dir != "" {
		st := openStatsStore(t, dir, os.Getenv("DG_MD5_CRASH_SRC"), nil)
		st.md5s.run.Lock() // the job never runs
		o, err := st.Put(context.Background(), PutRequest{Name: "m", Size: -1}, bytes.NewReader(data))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println(o.ID)
		os.Exit(0)
	}
	ctx := ctxT(t)
	dir, src := t.TempDir(), t.TempDir()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^TestMD5ResumedAfterCrash$")
	cmd.Env = append(os.Environ(), "DG_MD5_CRASH_DIR="+dir, "DG_MD5_CRASH_SRC="+src)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	id, err := fs.ParseID(strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0]))
	if err != nil {
		t.Fatalf("child's output %q: %v", out, err)
	}
	st := openStatsStore(t, dir, src, nil)
	want := md5.Sum(data)
	o, err := st.Get(ctx, id) // waits for the resumed job
	if err != nil || !bytes.Equal(o.MD5, want[:]) || o.ETag != hex.EncodeToString(want[:]) {
		t.Fatalf("after an unclean reopen: md5 %x etag %q (%v), want %x", o.MD5, o.ETag, err, want)
	}
	var left int
	st.idx.Derived(ctx, index.DerivedOptions{Prefix: []byte{md5Pending}}, func(k, _ []byte) error { left++; return nil })
	if left != 0 {
		t.Fatalf("%d md5Pending keys left after the MD5 was recorded", left)
	}
}
