package store

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"io"
	iofs "io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/cache"
	"github.com/datagate/datagate/backends/local"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
)

type env struct {
	dir     string // data dir
	srcRoot string // the "disk" provider's root
	st      *Store
}

func (e *env) open(t *testing.T) {
	t.Helper()
	disk, err := local.New("disk", local.Config{Root: e.srcRoot})
	if err != nil {
		t.Fatal(err)
	}
	primary, err := local.New(PrimaryName, local.Config{Root: filepath.Join(e.dir, "objects")})
	if err != nil {
		t.Fatal(err)
	}
	e.st, err = Open(context.Background(), Options{
		Dir: e.dir, Providers: map[string]backends.Provider{"disk": disk}, Primary: primary,
		Cache: cache.Options{ChunkSize: 64 << 10},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func newEnv(t *testing.T) *env {
	e := &env{dir: t.TempDir(), srcRoot: t.TempDir()}
	e.open(t)
	t.Cleanup(func() { e.st.Close() })
	return e
}

func (e *env) write(t *testing.T, name string, b []byte) {
	t.Helper()
	p := filepath.Join(e.srcRoot, name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + i>>9)
	}
	return b
}

func readObject(t *testing.T, st *Store, id fs.ID) ([]byte, error) {
	t.Helper()
	r, err := st.Open(ctxT(t), id)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func TestPutThenRead(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	data := pattern(300 << 10)
	o, err := e.st.Put(ctx, PutRequest{Name: "a.bin", Meta: map[string]string{"type": "obs"}, Size: int64(len(data))}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	ms, ss := md5.Sum(data), sha256.Sum256(data)
	if !bytes.Equal(o.MD5, ms[:]) || !bytes.Equal(o.SHA256, ss[:]) || o.Size != int64(len(data)) || o.State != fs.StateStored {
		t.Fatalf("put record: %+v", o)
	}
	got, err := readObject(t, e.st, o.ID)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %d bytes, %v", len(got), err)
	}
	r, _ := e.st.Open(ctx, o.ID)
	if f, ok := r.File(); !ok || f == nil {
		t.Error("stored content offers no plain file for sendfile")
	}
	r.Close()
	var found []fs.ID
	e.st.Find(ctx, []index.Cond{{Key: "type", Value: "obs"}}, index.FindOptions{}, func(o *fs.Object) error {
		found = append(found, o.ID)
		return nil
	})
	if len(found) != 1 || found[0] != o.ID {
		t.Fatalf("find: %v", found)
	}
	if err := e.st.Delete(ctx, o.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Get(ctx, o.ID); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("get after delete: %v", err)
	}
	if files := countFiles(t, filepath.Join(e.dir, "objects")); files != 0 {
		t.Fatalf("%d content files left after delete", files)
	}
}

func countFiles(t *testing.T, root string) int {
	n := 0
	filepath.WalkDir(root, func(p string, d iofs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

func TestFailedPutsLeaveNothing(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	data := pattern(200 << 10)
	md := md5.Sum([]byte("other"))
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	midway, cancelMidway := context.WithCancel(ctx)
	defer cancelMidway()
	cases := []struct {
		name string
		ctx  context.Context
		req  PutRequest
		r    io.Reader
	}{
		{"reader error", ctx, PutRequest{Name: "x", Size: -1}, &failingReader{bytes.NewReader(data), errors.New("client went away")}},
		{"size mismatch", ctx, PutRequest{Name: "x", Size: int64(len(data)) + 1}, bytes.NewReader(data)},
		{"md5 mismatch", ctx, PutRequest{Name: "x", Size: -1, MD5: md[:]}, bytes.NewReader(data)},
		{"cancelled", cancelled, PutRequest{Name: "x", Size: -1}, bytes.NewReader(data)},
		{"cancelled mid-put", midway, PutRequest{Name: "x", Size: int64(len(data))}, &cancelAfter{r: bytes.NewReader(data), n: 64 << 10, cancel: cancelMidway}},
		{"bad metadata", ctx, PutRequest{Name: "x", Size: -1, Meta: map[string]string{"k": "nul\x00"}}, bytes.NewReader(data)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := e.st.Put(c.ctx, c.req, c.r); err == nil {
				t.Fatal("put succeeded")
			}
			if n := countFiles(t, filepath.Join(e.dir, "objects")); n != 0 {
				t.Fatalf("%d files left in the store", n)
			}
			found := 0
			e.st.Find(ctx, []index.Cond{{Key: "k", Value: "nul\x00"}}, index.FindOptions{}, func(*fs.Object) error { found++; return nil })
			if found != 0 {
				t.Fatal("object indexed")
			}
		})
	}
}

// cancelAfter cancels a context once n bytes have been read.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	if len(p) > 4096 {
		p = p[:4096]
	}
	n, err := c.r.Read(p)
	c.n -= n
	return n, err
}

func TestDiskFullDuringPut(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	objects := filepath.Join(dir, "objects")
	os.MkdirAll(objects, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", objects).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs: %v %s", err, out)
	}
	defer exec.Command("umount", "-l", objects).Run()
	e := &env{dir: dir, srcRoot: t.TempDir()}
	e.open(t)
	defer e.st.Close()
	_, err := e.st.Put(ctxT(t), PutRequest{Name: "big", Size: -1}, bytes.NewReader(make([]byte, 4<<20)))
	if fs.KindOf(err) != fs.NoSpace {
		t.Fatalf("put onto a full disk: %v, want a NoSpace error", err)
	}
	if !strings.Contains(err.Error(), "space") {
		t.Errorf("error does not say why: %v", err)
	}
	if n := countFiles(t, objects); n != 0 {
		t.Fatalf("%d files left on the full disk", n)
	}
	// A small put still fits afterwards: nothing leaked the space.
	if _, err := e.st.Put(ctxT(t), PutRequest{Name: "small", Size: -1}, bytes.NewReader(make([]byte, 100<<10))); err != nil {
		t.Fatalf("small put after a full-disk failure: %v", err)
	}
}

func register(t *testing.T, st *Store, objs ...*fs.Object) {
	t.Helper()
	if _, err := st.Register(ctxT(t), objs); err != nil {
		t.Fatal(err)
	}
}

func TestRegisteredRangesReadLazilyAndVerify(t *testing.T) {
	e := newEnv(t)
	big := pattern(1 << 20)
	e.write(t, "grib/all.grib", big)
	sum := func(b []byte) []byte { s := sha256.Sum256(b); return s[:] }
	a := &fs.Object{Name: "field-a", Size: -1, Source: fs.Location{Provider: "disk", Path: "grib/all.grib", Offset: 0, Length: 200000}, SHA256: sum(big[:200000])}
	b := &fs.Object{Name: "field-b", Size: -1, Source: fs.Location{Provider: "disk", Path: "grib/all.grib", Offset: 200000, Length: 300000}}
	whole := &fs.Object{Size: -1, Source: fs.Location{Provider: "disk", Path: "grib/all.grib"}}
	register(t, e.st, a, b, whole)
	if whole.Name != "all.grib" {
		t.Errorf("default name %q", whole.Name)
	}
	for _, c := range []struct {
		o    *fs.Object
		want []byte
	}{{a, big[:200000]}, {b, big[200000:500000]}, {whole, big}} {
		got, err := readObject(t, e.st, c.o.ID)
		if err != nil || !bytes.Equal(got, c.want) {
			t.Fatalf("%s: %d bytes, %v", c.o.Name, len(got), err)
		}
	}
	// Random access into the middle of an uncached range.
	r, err := e.st.Open(ctxT(t), b.ID)
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 1000)
	if _, err := r.ReadAt(p, 123456); err != nil || !bytes.Equal(p, big[200000+123456:200000+124456]) {
		t.Fatalf("ReadAt: %v", err)
	}
	r.Close()
	// The verified object becomes Cached; the one without checksums gets
	// them computed in the background.
	waitFor(t, func() bool { o, _ := e.st.Get(ctxT(t), a.ID); return o.State == fs.StateCached })
	waitFor(t, func() bool { o, _ := e.st.Get(ctxT(t), b.ID); return o.State == fs.StateCached && len(o.MD5) == 16 })
	o, _ := e.st.Get(ctxT(t), b.ID)
	if want := md5.Sum(big[200000:500000]); !bytes.Equal(o.MD5, want[:]) {
		t.Fatal("background MD5 is wrong")
	}

	// Restart with the provider's files gone: reads come from the cache.
	e.st.Close()
	os.RemoveAll(e.srcRoot)
	e.open(t)
	for _, c := range []*fs.Object{a, b, whole} {
		if _, err := readObject(t, e.st, c.ID); err != nil {
			t.Fatalf("%s after restart without provider: %v", c.Name, err)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWrongBytesAreNeverServedAsGood(t *testing.T) {
	e := newEnv(t)
	data := pattern(150 << 10)
	e.write(t, "x.bin", data)
	e.write(t, "short.bin", data[:1000])
	bad := sha256.Sum256([]byte("something else"))
	wrong := &fs.Object{Size: int64(len(data)), SHA256: bad[:], Source: fs.Location{Provider: "disk", Path: "x.bin"}}
	short := &fs.Object{Size: 5000, Source: fs.Location{Provider: "disk", Path: "short.bin"}}
	register(t, e.st, wrong, short)

	if _, err := readObject(t, e.st, wrong.ID); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("checksum mismatch read: %v", err)
	}
	if info, ok := e.st.Cache().Lookup(wrong.ContentKey()); ok && (info.Complete || info.Present > 0) {
		t.Fatalf("mismatched content kept in cache: %+v", info)
	}
	if o, _ := e.st.Get(ctxT(t), wrong.ID); o.State == fs.StateCached {
		t.Fatal("mismatched object marked cached")
	}
	if _, err := readObject(t, e.st, short.ID); err == nil {
		t.Fatal("short provider read succeeded")
	}
	if info, ok := e.st.Cache().Lookup(short.ContentKey()); ok && info.Complete {
		t.Fatal("short content marked complete")
	}
}

func TestRegisterBadInput(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	for name, o := range map[string]*fs.Object{
		"unknown provider": {Source: fs.Location{Provider: "nope", Path: "x"}},
		"no location":      {Name: "x"},
		"negative offset":  {Source: fs.Location{Provider: "disk", Path: "x", Offset: -1}},
		"bad checksum":     {Source: fs.Location{Provider: "disk", Path: "x"}, MD5: []byte{1, 2}},
	} {
		_, err := e.st.Register(ctx, []*fs.Object{o})
		if fs.KindOf(err) != fs.Invalid {
			t.Errorf("%s: %v, want Invalid", name, err)
		}
	}
	_, err := e.st.Register(ctx, []*fs.Object{{Source: fs.Location{Provider: "nope", Path: "x"}}})
	if !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown provider error does not name it: %v", err)
	}
}

func TestLockedDataDirectory(t *testing.T) {
	e := newEnv(t)
	primary, _ := local.New(PrimaryName, local.Config{Root: filepath.Join(e.dir, "objects")})
	_, err := Open(context.Background(), Options{Dir: e.dir, Primary: primary})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("second open: %v", err)
	}
	// The first store is unharmed.
	if _, err := e.st.Put(ctxT(t), PutRequest{Name: "ok", Size: -1}, strings.NewReader("fine")); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentReadersOneFetch(t *testing.T) {
	e := newEnv(t)
	data := pattern(512 << 10)
	e.write(t, "c.bin", data)
	o := &fs.Object{Size: int64(len(data)), Source: fs.Location{Provider: "disk", Path: "c.bin"}}
	register(t, e.st, o)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := readObject(t, e.st, o.ID)
			if err == nil && !bytes.Equal(got, data) {
				err = errors.New("wrong bytes")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
