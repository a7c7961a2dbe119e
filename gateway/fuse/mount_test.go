package fuse

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/hanwen/go-fuse/v2/splice"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/cache"
	"github.com/datagate/datagate/backends/local"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/store"
	"github.com/datagate/datagate/views"
)

// needFuse skips when this machine cannot mount (CI installs fuse3 and
// runs as root, so there it mounts).
func needFuse(t testing.TB) {
	t.Helper()
	why := ""
	if _, err := os.Stat("/dev/fuse"); err != nil {
		why = "no /dev/fuse: cannot mount"
	} else if _, err := exec.LookPath("fusermount3"); err != nil && os.Geteuid() != 0 {
		why = "no fusermount3 and not root: cannot mount"
	}
	switch {
	case why != "" && os.Getenv("CI") != "":
		t.Fatal(why + " (CI runs as root with fuse3 installed)")
	case why != "":
		t.Skip(why)
	}
}

// env is a real store with two views, mounted for one user.
type env struct {
	dir string
	set *views.Set
	st  *store.Store
	mnt string
	m   *Mounted
	w   *views.Watcher
}

var testViews = map[string]views.Def{
	"by-date": {Path: "{date}/{type}/{name}"},
	"by-type": {Path: "{type}/{name}"},
}

func newEnv(t testing.TB, rights map[string]views.Rights, opts Options) *env {
	t.Helper()
	return newEnvWith(t, rights, opts, envConfig{})
}

// newEnvSync is newEnv with index commits fsynced (benchmarks compare
// with a local file system that syncs).
func newEnvSync(t testing.TB, rights map[string]views.Rights, opts Options, sync bool) *env {
	t.Helper()
	return newEnvWith(t, rights, opts, envConfig{sync: sync})
}

// envConfig is what the benchmarks vary.
type envConfig struct {
	sync      bool
	providers map[string]backends.Provider // besides "disk"
	chunk     int64                        // cache chunk size; default 64 KiB
}

func newEnvWith(t testing.TB, rights map[string]views.Rights, opts Options, ec envConfig) *env {
	t.Helper()
	needFuse(t)
	set, err := views.NewSet(testViews, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{dir: t.TempDir(), set: set}
	src, err := local.New("disk", local.Config{Root: filepath.Join(e.dir, "src")})
	if err != nil {
		t.Fatal(err)
	}
	primary, err := local.New(store.PrimaryName, local.Config{Root: filepath.Join(e.dir, "objects")})
	if err != nil {
		t.Fatal(err)
	}
	provs := map[string]backends.Provider{"disk": src}
	for k, p := range ec.providers {
		provs[k] = p
	}
	if ec.chunk == 0 {
		ec.chunk = 64 << 10
	}
	e.st, err = store.Open(context.Background(), store.Options{
		Dir: e.dir, Providers: provs, Primary: primary,
		Cache: cache.Options{ChunkSize: ec.chunk, ReadAhead: 4}, Derive: set.Derive, NoSync: !ec.sync,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.st.Close() })
	if err := set.Attach(context.Background(), e.st); err != nil {
		t.Fatal(err)
	}
	e.mnt = filepath.Join(e.dir, "mnt")
	os.Mkdir(e.mnt, 0o755)
	e.w = views.Watch(set, e.st.Index(), 256)
	opts.Tree = views.NewTree(views.TreeOptions{Set: set, Store: e.st, User: "alice", Profile: views.Profile{Views: rights}, StatfsDir: e.dir})
	opts.Events = e.w.C
	opts.Set = set
	opts.SpoolDir = filepath.Join(e.dir, "spool")
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e.m, err = Mount(context.Background(), e.mnt, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.m.Unmount(ctx); err != nil {
			t.Error(err)
		}
		e.w.Close()
	})
	return e
}

// registerAt registers an object whose content is the disk provider's
// file rel.
func (e *env) registerAt(t testing.TB, name, rel string, size int64, meta map[string]string) *fs.Object {
	t.Helper()
	o := &fs.Object{Name: name, Meta: meta, Size: size, ModTime: time.Unix(1700000000, 0).UTC(),
		Source: fs.Location{Provider: "disk", Path: rel}}
	if _, err := e.st.Register(context.Background(), []*fs.Object{o}); err != nil {
		t.Fatal(err)
	}
	return o
}

// register adds an object whose content is a file of the "disk" provider.
func (e *env) register(t testing.TB, name string, content []byte, meta map[string]string) *fs.Object {
	t.Helper()
	rel := fmt.Sprintf("p/%s-%d", name, time.Now().UnixNano())
	full := filepath.Join(e.dir, "src", rel)
	os.MkdirAll(filepath.Dir(full), 0o755)
	if err := os.WriteFile(full, content, 0o644); err != nil {
		t.Fatal(err)
	}
	o := &fs.Object{Name: name, Meta: meta, Size: int64(len(content)), ModTime: time.Unix(1700000000, 0).UTC(),
		Source: fs.Location{Provider: "disk", Path: rel}}
	if _, err := e.st.Register(context.Background(), []*fs.Object{o}); err != nil {
		t.Fatal(err)
	}
	return o
}

func (e *env) path(p string) string { return filepath.Join(e.mnt, p) }

func wantErrno(t testing.TB, err error, want syscall.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got %v, want %v", err, want)
	}
}

func listNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func TestReadOnlyTree(t *testing.T) {
	e := newEnv(t, map[string]views.Rights{"by-date": views.Read, "by-type": views.Read}, Options{})
	body := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320 KB, several chunks
	e.register(t, "t2m.grib", body, map[string]string{"date": "2026-11-22", "type": "fc"})
	e.register(t, "obs.bufr", []byte("obs"), map[string]string{"date": "2026-11-21", "type": "obs"})

	if got := listNames(t, e.mnt); strings.Join(got, ",") != "by-date,by-type" {
		t.Fatalf("root: %v", got)
	}
	if got := listNames(t, e.path("by-date")); strings.Join(got, ",") != "2026-11-21,2026-11-22" {
		t.Fatalf("by-date: %v", got)
	}
	b, err := os.ReadFile(e.path("by-type/fc/t2m.grib"))
	if err != nil || !bytes.Equal(b, body) {
		t.Fatalf("read: %d bytes, %v", len(b), err)
	}
	st, err := os.Stat(e.path("by-date/2026-11-22/fc/t2m.grib"))
	if err != nil || st.Size() != int64(len(body)) || st.Mode().Perm() != 0o444 || !st.ModTime().Equal(time.Unix(1700000000, 0)) {
		t.Fatalf("stat: %v %v", st, err)
	}
	// random reads at odd offsets, then again once cached (passthrough
	// or splice from the cache file)
	for round := 0; round < 2; round++ {
		f, err := os.Open(e.path("by-type/fc/t2m.grib"))
		if err != nil {
			t.Fatal(err)
		}
		for _, off := range []int64{0, 70000, 319990, 12345} {
			buf := make([]byte, 100)
			n, err := f.ReadAt(buf, off)
			if (err != nil && err != io.EOF) || !bytes.Equal(buf[:n], body[off:min(off+100, int64(len(body)))]) {
				t.Fatalf("round %d ReadAt %d: %d %v", round, off, n, err)
			}
		}
		io.Copy(io.Discard, f)
		f.Close()
	}

	_, err = os.Stat(e.path("by-type/nope"))
	wantErrno(t, err, syscall.ENOENT)
	_, err = os.Stat(e.path("by-type/" + strings.Repeat("x", 300)))
	wantErrno(t, err, syscall.ENAMETOOLONG)
	_, err = os.Stat(e.path("by-type/bad\xffname"))
	wantErrno(t, err, syscall.EINVAL) // not UTF-8: no object can have that path
	_, err = os.Open(e.path("by-type/fc/t2m.grib/x"))
	wantErrno(t, err, syscall.ENOTDIR)
	err = os.WriteFile(e.path("by-type/fc/new.grib"), []byte("x"), 0o644)
	wantErrno(t, err, syscall.EACCES)
	wantErrno(t, os.Remove(e.path("by-type/fc/t2m.grib")), syscall.EACCES)

	var sfs syscall.Statfs_t
	if err := syscall.Statfs(e.mnt, &sfs); err != nil || sfs.Blocks == 0 || sfs.Namelen != 255 {
		t.Fatalf("statfs: %+v %v", sfs, err)
	}
}

func TestReadOnlyMount(t *testing.T) {
	e := newEnv(t, map[string]views.Rights{"by-type": views.All}, Options{ReadOnly: true})
	e.register(t, "a", []byte("a"), map[string]string{"type": "fc"})
	wantErrno(t, os.WriteFile(e.path("fc/b"), []byte("x"), 0o644), syscall.EROFS)
	wantErrno(t, os.Mkdir(e.path("fc2"), 0o755), syscall.EROFS)
	if b, err := os.ReadFile(e.path("fc/a")); err != nil || string(b) != "a" {
		t.Fatalf("read: %q %v", b, err)
	}
}

func TestWrites(t *testing.T) {
	e := newEnv(t, map[string]views.Rights{"by-date": views.All, "by-type": views.Read}, Options{})
	ctx := context.Background()
	tree := views.NewTree(views.TreeOptions{Set: e.set, Store: e.st, User: "bob", Profile: views.Profile{Views: map[string]views.Rights{"by-date": views.Read, "by-type": views.Read}}})

	// sequential write: visible in the other view after close, same bytes
	body := bytes.Repeat([]byte("datagate"), 300000) // 2.4 MB
	p := e.path("by-date/2026-11-22/fc/t.grib")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, body, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := tree.Open(ctx, "/by-type/fc/t.grib")
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(body)
	if got := f.Object().SHA256; !bytes.Equal(got, want[:]) {
		t.Fatalf("sha256 %x, want %x", got, want)
	}
	f.Close()
	if b, err := os.ReadFile(e.path("by-type/fc/t.grib")); err != nil || !bytes.Equal(b, body) {
		t.Fatalf("read back: %d %v", len(b), err)
	}

	// random write into an existing file: the rest is kept
	wf, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	wf.WriteAt([]byte("XYZ"), 1000000)
	wf.WriteAt([]byte("END"), int64(len(body)))
	if err := wf.Close(); err != nil {
		t.Fatal(err)
	}
	copy(body[1000000:], "XYZ")
	body = append(body, "END"...)
	if b, err := os.ReadFile(e.path("by-type/fc/t.grib")); err != nil || !bytes.Equal(b, body) {
		t.Fatalf("after random write: %d %v", len(b), err)
	}

	// truncate, O_TRUNC
	if err := os.Truncate(p, 10); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); !bytes.Equal(b, body[:10]) {
		t.Fatalf("after truncate: %q", b)
	}
	if err := os.WriteFile(p, []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "short" {
		t.Fatalf("after O_TRUNC: %q", b)
	}

	// nothing visible before close
	nf, err := os.Create(e.path("by-date/2026-11-22/fc/new.grib"))
	if err != nil {
		t.Fatal(err)
	}
	nf.Write([]byte("half"))
	if _, err := tree.Stat(ctx, "/by-type/fc/new.grib"); fs.KindOf(err) != fs.NotExist {
		t.Fatalf("half-written file visible: %v", err)
	}
	if st, err := nf.Stat(); err != nil || st.Size() != 4 {
		t.Fatalf("fstat while writing: %v %v", st, err)
	}
	if err := nf.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := tree.Stat(ctx, "/by-type/fc/new.grib"); err != nil {
		t.Fatal(err)
	}

	// streamed, then abandoned: a seek back, a gap, a rename while open
	gf, err := os.Create(e.path("by-date/2026-11-22/fc/gap.grib"))
	if err != nil {
		t.Fatal(err)
	}
	gf.Write(bytes.Repeat([]byte("a"), 300000))
	gf.WriteAt([]byte("B"), 10)
	gf.WriteAt([]byte("C"), 400000)
	if err := os.Rename(e.path("by-date/2026-11-22/fc/gap.grib"), e.path("by-date/2026-11-22/fc/gap2.grib")); err != nil {
		t.Fatal(err)
	}
	gf.WriteAt([]byte("D"), 400001)
	if err := gf.Close(); err != nil {
		t.Fatal(err)
	}
	want2 := append(bytes.Repeat([]byte("a"), 300000), make([]byte, 100000)...)
	want2[10] = 'B'
	want2 = append(want2, 'C', 'D')
	if b, err := os.ReadFile(e.path("by-type/fc/gap2.grib")); err != nil || !bytes.Equal(b, want2) {
		t.Fatalf("gap write: %d bytes %v", len(b), err)
	}
	if _, err := os.Stat(e.path("by-type/fc/gap.grib")); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("old name of a file renamed while written: %v", err)
	}

	// a path the view's template cannot take: refused at creation, and
	// at close for a file being written that was renamed there
	_, err = os.Create(e.path("by-date/orphan.txt"))
	wantErrno(t, err, syscall.EINVAL)
	bad, err := os.Create(e.path("by-date/2026-11-22/fc/orphan.txt"))
	if err != nil {
		t.Fatal(err)
	}
	bad.Write([]byte("x"))
	if err := os.Rename(e.path("by-date/2026-11-22/fc/orphan.txt"), e.path("by-date/orphan.txt")); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, bad.Close(), syscall.EINVAL)
	if _, err := os.Stat(e.path("by-date/orphan.txt")); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("failed push visible: %v", err)
	}

	// mkdir, rename (moves in the other view), unlink, rmdir
	if err := os.Mkdir(e.path("by-date/2026-11-23"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(e.path("by-date/2026-11-23/obs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(e.path("by-date/2026-11-22/fc/new.grib"), e.path("by-date/2026-11-23/obs/new.grib")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(e.path("by-type/obs/new.grib")); err != nil || string(b) != "half" {
		t.Fatalf("renamed file in the other view: %q %v", b, err)
	}
	wantErrno(t, os.Remove(e.path("by-date/2026-11-23/obs")), syscall.ENOTEMPTY)
	if err := os.Remove(e.path("by-date/2026-11-23/obs/new.grib")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(e.path("by-date/2026-11-23/obs")); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, os.Mkdir(e.path("by-date/2026-11-22"), 0o755), syscall.EEXIST)

	// xattrs: the store's checksum; a path key moves the file
	xp := e.path("by-date/2026-11-22/fc/t.grib")
	buf := make([]byte, 128)
	n, err := syscall.Getxattr(xp, "user.datagate.sha256", buf)
	if sum := sha256.Sum256([]byte("short")); err != nil || string(buf[:n]) != fmt.Sprintf("%x", sum) {
		t.Fatalf("user.datagate.sha256: %q %v", buf[:n], err)
	}
	wantErrno(t, syscall.Setxattr(xp, "user.datagate.id", []byte("x"), 0), syscall.EACCES)
	// A key the path does not use changes in place; remove takes it off.
	if err := syscall.Setxattr(xp, "user.datagate.param", []byte("t2m"), 0); err != nil {
		t.Fatal(err)
	}
	if n, err := syscall.Getxattr(xp, "user.datagate.param", buf); err != nil || string(buf[:n]) != "t2m" {
		t.Fatalf("user.datagate.param after set: %q %v", buf[:n], err)
	}
	if o, err := tree.Object(ctx, "/by-type/fc/t.grib"); err != nil || o.Meta["param"] != "t2m" {
		t.Fatalf("param in the store: %v %v", o, err)
	}
	wantErrno(t, syscall.Setxattr(xp, "user.datagate.param", []byte("x"), xattrCreate), syscall.EEXIST)
	wantErrno(t, syscall.Setxattr(xp, "user.datagate.level", []byte("x"), xattrReplace), syscall.ENODATA)
	if err := syscall.Removexattr(xp, "user.datagate.param"); err != nil {
		t.Fatal(err)
	}
	if _, err := syscall.Getxattr(xp, "user.datagate.param", buf); !errors.Is(err, syscall.ENODATA) {
		t.Fatalf("user.datagate.param after remove: %v", err)
	}
	wantErrno(t, syscall.Removexattr(xp, "user.datagate.param"), syscall.ENODATA)
	wantErrno(t, syscall.Removexattr(xp, "user.datagate.type"), syscall.EINVAL) // the template needs it
	wantErrno(t, syscall.Setxattr(e.path("by-type/fc/t.grib"), "user.datagate.type", []byte("obs"), 0), syscall.EACCES)
	if err := syscall.Setxattr(xp, "user.datagate.type", []byte("an"), 0); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(e.path("by-type/an/t.grib")); err != nil || string(b) != "short" {
		t.Fatalf("after setxattr type=an: %q %v", b, err)
	}
	wantErrno(t, os.Mkdir(e.path("by-type/x"), 0o755), syscall.EACCES)
}

func TestChangeFeed(t *testing.T) {
	e := newEnv(t, map[string]views.Rights{"by-type": views.All}, Options{EntryTimeout: time.Hour, AttrTimeout: time.Hour})
	e.register(t, "a", []byte("one"), map[string]string{"type": "fc"})
	if b, err := os.ReadFile(e.path("fc/a")); err != nil || string(b) != "one" {
		t.Fatalf("%q %v", b, err)
	}
	// a new object appears in a listing at once
	e.register(t, "b", []byte("two"), map[string]string{"type": "fc"})
	if got := listNames(t, e.path("fc")); strings.Join(got, ",") != "a,b" {
		t.Fatalf("after register: %v", got)
	}
	// an object replaced through the store is not read stale, despite
	// hour-long kernel timeouts
	tree := views.NewTree(views.TreeOptions{Set: e.set, Store: e.st, User: "x", Profile: views.Profile{Views: map[string]views.Rights{"by-type": views.All}}})
	if _, err := tree.Create(context.Background(), "/fc/a", strings.NewReader("replaced!"), views.CreateOptions{Size: 9}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	for {
		b, err := os.ReadFile(e.path("fc/a"))
		if err == nil && string(b) == "replaced!" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stale after 1s: %q %v", b, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// re-registered with changed content (same id, a new version): the
	// kernel's pages of the old version are dropped
	o := e.register(t, "c", []byte("version one"), map[string]string{"type": "fc"})
	if b, err := os.ReadFile(e.path("fc/c")); err != nil || string(b) != "version one" {
		t.Fatalf("%q %v", b, err)
	}
	os.WriteFile(filepath.Join(e.dir, "src", o.Source.Path), []byte("version two"), 0o644)
	o2 := &fs.Object{Name: "c", Meta: o.Meta, Size: 11, ModTime: time.Unix(1700000100, 0).UTC(), Source: o.Source}
	if _, err := e.st.Register(context.Background(), []*fs.Object{o2}); err != nil {
		t.Fatal(err)
	}
	if o2.ID != o.ID {
		t.Fatalf("re-registration made a new object %s (was %s)", o2.ID, o.ID)
	}
	deadline = time.Now().Add(time.Second)
	for {
		b, err := os.ReadFile(e.path("fc/c"))
		if err == nil && string(b) == "version two" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("old version read after 1s: %q %v", b, err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// removed through the store: gone
	if err := tree.Remove(context.Background(), "/fc/b"); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(time.Second)
	for {
		_, err := os.Stat(e.path("fc/b"))
		if errors.Is(err, syscall.ENOENT) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("removed file still there after 1s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A listing the kernel keeps (FOPEN_CACHE_DIR) is listed again without
// asking us, and is dropped by the change feed when an entry comes or
// goes, in its directory or below.
func TestCachedListing(t *testing.T) {
	e := newEnv(t, map[string]views.Rights{"by-date": views.All}, Options{})
	e.register(t, "a", []byte("one"), map[string]string{"type": "fc", "date": "d1"})
	want := func(dir, names string) {
		t.Helper()
		deadline := time.Now().Add(time.Second)
		for {
			got := strings.Join(listNames(t, e.path(dir)), ",")
			if got == names {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s after 1s: %s, want %s", dir, got, names)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The feed may still be delivering the registration (which drops
	// the listings once more): a few tries. The root's listing is not
	// kept (the view set may change), the others are.
	for try := 0; ; try++ {
		want("d1/fc", "a")
		want("d1", "fc")
		before := e.m.fsys.pages.Load()
		for i := 0; i < 3; i++ {
			want("d1/fc", "a")
			want("d1", "fc")
		}
		got := e.m.fsys.pages.Load()
		if got == before {
			break
		}
		if try == 5 {
			t.Fatalf("kept listings were read again from the index: %d pages", got-before)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Added in a listed directory; a new directory in a listed ancestor.
	e.register(t, "b", []byte("two"), map[string]string{"type": "fc", "date": "d1"})
	want("d1/fc", "a,b")
	e.register(t, "c", []byte("three"), map[string]string{"type": "obs", "date": "d1"})
	want("d1", "fc,obs")
	e.register(t, "d", []byte("four"), map[string]string{"type": "obs", "date": "d2"})
	want("", "d1,d2")
	// Removed through the store, by another user's tree.
	tree := views.NewTree(views.TreeOptions{Set: e.set, Store: e.st, User: "x", Profile: views.Profile{Views: map[string]views.Rights{"by-date": views.All}}})
	if err := tree.Remove(context.Background(), "/d1/fc/a"); err != nil {
		t.Fatal(err)
	}
	want("d1/fc", "b")
	if err := tree.Remove(context.Background(), "/d1/obs/c"); err != nil {
		t.Fatal(err)
	}
	want("d1", "fc")
	// Changed through the mount itself: the kernel drops its own listing.
	if err := os.WriteFile(e.path("d1/fc/m"), []byte("m"), 0o644); err != nil {
		t.Fatal(err)
	}
	want("d1/fc", "b,m")
	if err := os.Rename(e.path("d1/fc/m"), e.path("d1/fc/n")); err != nil {
		t.Fatal(err)
	}
	want("d1/fc", "b,n")
	// A view created at run time (not in the feed) shows in the root
	// within the root's 1 s: the user now sees two views, one directory
	// each.
	if _, err := e.set.CreateView(context.Background(), "mine", views.Def{Path: "{name}", Filter: "bucket = mine"}, "alice"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(rootTimeout)
	want("", "by-date,mine")
	want("by-date/d1/fc", "b,n")
}

func TestReadAheadWindow(t *testing.T) {
	e := newEnv(t, map[string]views.Rights{"by-type": views.Read}, Options{})
	if os.Geteuid() != 0 {
		t.Skip("only root sets a mount's read-ahead window")
	}
	major, minor, err := device(e.mnt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", major, minor))
	if err != nil || strings.TrimSpace(string(b)) != fmt.Sprint(readAheadKB) {
		t.Fatalf("read_ahead_kb of the mount: %q %v, want %d", b, err, readAheadKB)
	}
	// A cold sequential read through the window gets the content.
	body := bytes.Repeat([]byte("0123456789abcdef"), 300_000) // 4.8 MB: 74 chunks
	e.register(t, "big", body, map[string]string{"type": "fc"})
	got, err := os.ReadFile(e.path("fc/big"))
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read: %d bytes, %v", len(got), err)
	}
}

// The mount caps READs to what a splice pipe holds, so replies of
// content being fetched are spliced (maxRead); reads through the cap,
// straddling READ and chunk boundaries, get the content.
func TestReadsFitAPipe(t *testing.T) {
	e := newEnv(t, map[string]views.Rights{"by-type": views.Read}, Options{})
	if os.Geteuid() != 0 {
		t.Skip("only a direct (root) mount takes the cap")
	}
	if maxRead()+spliceSlack > splice.MaxPipeSize() {
		t.Fatalf("maxRead %d: its replies do not fit a %d-byte pipe", maxRead(), splice.MaxPipeSize())
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == e.mnt {
			found = true
			if want := fmt.Sprintf("max_read=%d", maxRead()); !strings.Contains(l, want) {
				t.Fatalf("mount options %q lack %s", l, want)
			}
		}
	}
	if !found {
		t.Fatalf("%s not in /proc/self/mountinfo", e.mnt)
	}
	body := make([]byte, 5<<20+12345)
	for i := range body {
		body[i] = byte(i * 7 / 4093)
	}
	e.register(t, "big", body, map[string]string{"type": "fc"})
	f, err := os.Open(e.path("fc/big"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []byte
	buf := make([]byte, 1<<20+4097) // each read straddles a READ boundary
	for {
		n, err := f.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("cold read: %d bytes, content differs", len(got))
	}
}

// While a stream goes on, the spool gets its writes from the stream's
// feeder: whatever then needs the spool (a read on the handle, a
// truncate, a rewrite, a push after fsync) must see every write made.
func TestStreamedWritesReachTheSpool(t *testing.T) {
	e := newEnv(t, map[string]views.Rights{"by-type": views.All}, Options{})
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	const chunks = 12 // more than the stream's queue
	var want []byte
	write := func(f *os.File) {
		t.Helper()
		for i := 0; i < chunks; i++ {
			chunk[0] = byte(i)
			if _, err := f.Write(chunk); err != nil {
				t.Fatal(err)
			}
			want = append(want, chunk...)
		}
	}
	check := func(name string) {
		t.Helper()
		b, err := os.ReadFile(e.path("fc/" + name))
		if err != nil || !bytes.Equal(b, want) {
			t.Fatalf("%s: %d bytes (want %d), %v", name, len(b), len(want), err)
		}
	}

	if err := os.Mkdir(e.path("fc"), 0o755); err != nil {
		t.Fatal(err)
	}
	// read back on the handle while streaming
	f, err := os.OpenFile(e.path("fc/rw"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, f)
	write(f)
	got := make([]byte, len(want))
	if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read back on the writing handle: %v", err)
	}
	if _, err := f.WriteAt([]byte("tail"), int64(len(want))); err != nil {
		t.Fatal(err)
	}
	want = append(want, "tail"...)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	check("rw")

	// truncate while streaming
	want = nil
	f, err = os.Create(e.path("fc/tr"))
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, f)
	write(f)
	if err := f.Truncate(int64(len(want) - 5)); err != nil {
		t.Fatal(err)
	}
	want = want[:len(want)-5]
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	check("tr")

	// fsync commits the stream; later writes push the spool, which must
	// hold the streamed part
	want = nil
	f, err = os.Create(e.path("fc/fs"))
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, f)
	write(f)
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	check("fs")
	if _, err := f.WriteAt([]byte("X"), 3); err != nil {
		t.Fatal(err)
	}
	want[3] = 'X'
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	check("fs")
}

// closeLater closes f, if the test has not, before the mount goes: a
// file left open on the mount would make the test binary's exit wait on
// its own, gone, server.
func closeLater(t *testing.T, f *os.File) {
	t.Cleanup(func() { f.Close() })
}

// A truncate(2) right after close(2) of a writer races the writer's
// RELEASE, which the kernel sends asynchronously: the truncate must apply
// to the pushed content, not fail on the released handle's spool.
func TestTruncateAfterClose(t *testing.T) {
	e := newEnv(t, map[string]views.Rights{"by-date": views.All, "by-type": views.Read}, Options{})
	p := e.path("by-date/2026-11-22/fc/r.grib")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte("abcdefghij"), 0); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		n := int64(1 + i%9)
		if err := os.Truncate(p, n); err != nil {
			t.Fatalf("round %d: truncate: %v", i, err)
		}
		if b, err := os.ReadFile(p); err != nil || string(b) != "abcdefghij"[:n] {
			t.Fatalf("round %d: after truncate to %d: %q %v", i, n, b, err)
		}
		if err := os.WriteFile(p, []byte("0123456789"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// A file written from start to end is hashed as it is written, and its
// spool is linked into the store at the push, not copied: the stored file
// is the spool's own inode. Written again after that push (fsync, then a
// write), the handle works on a copy: the pushed content stays as it was.
func TestSpoolLinkedAtPush(t *testing.T) {
	e := newEnv(t, map[string]views.Rights{"by-type": views.All}, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := os.Mkdir(e.path("fc"), 0o755); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 3<<20+7)
	for i := range want {
		want[i] = byte(i * 13)
	}
	f, err := os.Create(e.path("fc/ln"))
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, f)
	for off := 0; off < len(want); off += 1 << 20 {
		if _, err := f.Write(want[off:min(off+1<<20, len(want))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	o, err := e.m.fsys.tree.Object(ctx, "/fc/ln")
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(want); !bytes.Equal(o.SHA256, sum[:]) {
		t.Fatalf("recorded SHA-256 %x, content's %x", o.SHA256, sum)
	}
	id := o.ID.String()
	stored, err := os.Stat(filepath.Join(e.dir, "objects", id[24:26], id))
	if err != nil {
		t.Fatal(err)
	}
	// The spool is open in this process, which serves the mount.
	fds, _ := os.ReadDir("/proc/self/fd")
	linked := false
	for _, d := range fds {
		target, _ := os.Readlink("/proc/self/fd/" + d.Name())
		if !strings.HasPrefix(target, filepath.Join(e.dir, "spool")) {
			continue
		}
		if fi, err := os.Stat("/proc/self/fd/" + d.Name()); err == nil && os.SameFile(fi, stored) {
			linked = true
		}
	}
	if !linked {
		t.Fatal("the stored file is not the writer's spool: it was copied")
	}
	r, err := e.st.Open(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := f.WriteAt([]byte("X"), 3); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	old, err := io.ReadAll(io.NewSectionReader(readerAt{ctx, r}, 0, int64(len(want))))
	if err != nil || !bytes.Equal(old, want) {
		t.Fatalf("the content pushed first changed after the push (%d bytes, %v)", len(old), err)
	}
	want[3] = 'X'
	if got, err := os.ReadFile(e.path("fc/ln")); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("after the second push: %d bytes, %v", len(got), err)
	}
}

type readerAt struct {
	ctx context.Context
	r   *store.Reader
}

func (r readerAt) ReadAt(p []byte, off int64) (int, error) { return r.r.ReadAtContext(r.ctx, p, off) }

// Opening a file with O_TRUNC starts from an empty spool (the kernel
// passes O_TRUNC in the OPEN: atomic_o_trunc), never from a copy of the
// content it replaces: overwriting a file whose provider is gone works,
// and costs nothing for the old content.
func TestTruncatingOpenCopiesNothing(t *testing.T) {
	e := newEnv(t, map[string]views.Rights{"by-type": views.All}, Options{})
	o := e.register(t, "gone.grib", []byte("the provider loses this"), map[string]string{"type": "fc"})
	if err := os.Remove(filepath.Join(e.dir, "src", o.Source.Path)); err != nil {
		t.Fatal(err)
	}
	p := e.path("fc/gone.grib")
	if _, err := os.ReadFile(p); err == nil {
		t.Fatal("read content its provider lost")
	}
	if err := os.WriteFile(p, []byte("new"), 0o644); err != nil {
		t.Fatalf("overwrite (O_TRUNC) of a file whose content is gone: %v", err)
	}
	if got, err := os.ReadFile(p); err != nil || string(got) != "new" {
		t.Fatalf("read back %q, %v", got, err)
	}
}

// A file read by passthrough can be opened for writing: the kernel wants
// every open of an inode in one mode, so the writer is sent to a new
// inode (ESTALE, which the kernel retries once), while the reader keeps
// its own and reads the old content to the end.
func TestWriterBesidePassthroughReader(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("passthrough needs root (CI runs as root)")
	}
	e := newEnv(t, map[string]views.Rights{"by-type": views.All}, Options{})
	content := func(v int) []byte { // 2 MiB: passed through once whole
		return bytes.Repeat([]byte(fmt.Sprintf("version %07d\n", v)), 1<<17)
	}
	e.register(t, "big.grib", content(0), map[string]string{"type": "fc"})
	p := e.path("fc/big.grib")
	for v, flags := range []int{os.O_WRONLY | os.O_TRUNC, os.O_RDWR | os.O_CREATE | os.O_TRUNC, os.O_WRONLY} {
		old := content(v)
		if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, old) { // whole here now
			t.Fatalf("v%d: first read: %d bytes, %v", v, len(b), err)
		}
		// Passed through once the first reader's RELEASE is settled.
		var r *os.File
		for end := time.Now().Add(5 * time.Second); r == nil; time.Sleep(10 * time.Millisecond) {
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			if e.m.fsys.settler.passthroughs() == 1 {
				r = f
			} else if f.Close(); time.Now().After(end) {
				t.Fatalf("v%d: the whole file is not passed through", v)
			}
		}
		head := make([]byte, 1000)
		if _, err := io.ReadFull(r, head); err != nil || !bytes.Equal(head, old[:1000]) {
			t.Fatalf("v%d: reader: %v", v, err)
		}
		w, err := os.OpenFile(p, flags, 0o644)
		if err != nil {
			t.Fatalf("v%d: open (%#x) beside a passthrough reader: %v", v, flags, err)
		}
		if _, err := w.WriteAt(content(v+1), 0); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("v%d: push: %v", v, err)
		}
		rest, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(rest, old[1000:]) {
			t.Fatalf("v%d: the reader's old content: %d bytes, %v", v, len(rest), err)
		}
	}
	if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, content(3)) {
		t.Fatalf("read back: %d bytes, %v", len(b), err)
	}
}

// Writers of one file at once share it, as on a local file system:
// processes appending lines (each an open, a write and a close) keep
// every line, whole, and nothing else.
func TestConcurrentAppends(t *testing.T) {
	e := newEnv(t, map[string]views.Rights{"by-type": views.All}, Options{})
	if err := os.Mkdir(e.path("log"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := e.path("log/run.txt")
	const writers, lines = 3, 60
	errs := make(chan error, writers)
	for k := range writers {
		go func() {
			for i := range lines {
				f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
				if err == nil {
					_, err = fmt.Fprintf(f, "writer %d line %03d\n", k, i)
					if cerr := f.Close(); err == nil {
						err = cerr
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	check := func(b []byte) {
		t.Helper()
		got := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		sort.Strings(got)
		var want []string
		for k := range writers {
			for i := range lines {
				want = append(want, fmt.Sprintf("writer %d line %03d", k, i))
			}
		}
		sort.Strings(want)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("%d lines, %d bytes, want %d lines: %q...", len(got), len(b), len(want), b[:min(len(b), 80)])
		}
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	check(b)
	// What the store has (the last push) is the same.
	f, err := e.m.fsys.tree.Open(context.Background(), "/log/run.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stored, err := io.ReadAll(io.NewSectionReader(f, 0, f.Stat().Size()))
	if err != nil {
		t.Fatal(err)
	}
	check(stored)
}

// A file open for writing can be opened for reading, as on a local file
// system: the reader sees what has been written so far, a new file (not
// in the store before its first close) included, and reading pushes
// nothing.
func TestReadWhileWriting(t *testing.T) {
	e := newEnv(t, map[string]views.Rights{"by-type": views.All}, Options{})
	if err := os.Mkdir(e.path("log"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := e.path("log/growing.txt")
	w, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteString("first\n"); err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(p)
	if err != nil {
		t.Fatalf("open for reading a file being written: %v", err)
	}
	defer r.Close()
	readMore := func(want string) {
		t.Helper()
		b, err := io.ReadAll(r)
		if err != nil || string(b) != want {
			t.Fatalf("reader got %q, %v, want %q", b, err, want)
		}
	}
	readMore("first\n")
	if _, err := w.WriteString("second\n"); err != nil {
		t.Fatal(err)
	}
	readMore("second\n") // tail -f
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.fsys.tree.Stat(context.Background(), "/log/growing.txt"); fs.KindOf(err) != fs.NotExist {
		t.Fatalf("in the store before the writer's close: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "first\nsecond\n" {
		t.Fatalf("after close %q, %v", b, err)
	}
}

// A file open for reading stays readable when this mount removes or
// replaces its object before the first read (small files open without
// asking the store and read their object at the first READ): the reader
// reads the version it opened. Dropped through another front-end first,
// the read is ESTALE, as on NFS.
func TestOpenFileOutlivesItsObject(t *testing.T) {
	e := newEnv(t, map[string]views.Rights{"by-type": views.All}, Options{})
	if err := os.Mkdir(e.path("fc"), 0o755); err != nil {
		t.Fatal(err)
	}
	// open writes p and opens it for reading once its writer is gone
	// (RELEASE is asynchronous; a reader beside a writer reads the
	// writer's spool, TestReadWhileWriting).
	open := func(name string) *os.File {
		t.Helper()
		if err := os.WriteFile(e.path("fc/"+name), []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		for end := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			fc := e.m.fsys.root.GetChild("fc")
			if ch := fc.GetChild(name); ch != nil && !ch.Operations().(*node).writing() {
				break
			}
			if time.Now().After(end) {
				t.Fatal("the writer is not released")
			}
		}
		r, err := os.Open(e.path("fc/" + name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	drops := map[string]func(p string){
		"unlink": func(p string) { os.Remove(p) },
		"rename-over": func(p string) {
			os.WriteFile(p+".new", []byte("new"), 0o644)
			os.Rename(p+".new", p)
		},
	}
	for name, drop := range drops {
		r := open(name)
		drop(e.path("fc/" + name))
		if b, err := io.ReadAll(r); err != nil || string(b) != "old" {
			t.Errorf("%s: the reader got %q, %v; want the version it opened", name, b, err)
		}
	}
	// A rewrite in place is the file's new content, for its readers too,
	// as on a local file system.
	r := open("overwrite")
	if err := os.WriteFile(e.path("fc/overwrite"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(r); err != nil || string(b) != "new" {
		t.Errorf("overwrite: the reader got %q, %v; want the new content", b, err)
	}
	r = open("elsewhere")
	if err := e.m.fsys.tree.Remove(context.Background(), "/fc/elsewhere"); err != nil {
		t.Fatal(err)
	}
	_, err := io.ReadAll(r)
	wantErrno(t, err, syscall.ESTALE)
}

// A name that is no canonical path segment (a bare % or an escape of a
// byte that needs none) is EINVAL when looked up: such a file used to be
// created, take writes and fail at close, which shells do not check.
func TestNonCanonicalNames(t *testing.T) {
	e := newEnv(t, map[string]views.Rights{"by-type": views.All}, Options{})
	if err := os.Mkdir(e.path("fc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"50%.txt", "a%20b.txt", "x%2f"} {
		_, err := os.Create(e.path("fc/" + name))
		wantErrno(t, err, syscall.EINVAL)
		_, err = os.Stat(e.path("fc/" + name))
		wantErrno(t, err, syscall.EINVAL)
	}
	// Canonical escapes are names like any other: %25 is a %.
	if err := os.WriteFile(e.path("fc/50%25.txt"), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := listNames(t, e.path("fc")); strings.Join(got, ",") != "50%25.txt" {
		t.Fatalf("listed %v", got)
	}
}

// A file the view cannot hold (a path its template does not fit) fails
// at creation, not at close.
func TestCreateOutsideTheTemplate(t *testing.T) {
	e := newEnv(t, map[string]views.Rights{"by-date": views.All}, Options{})
	if err := os.Mkdir(e.path("2026-11-22"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"new.bufr", "2026-11-22/new.bufr"} { // {date}/{type}/{name}
		_, err := os.Create(e.path(p))
		wantErrno(t, err, syscall.EINVAL)
	}
	if err := os.Mkdir(e.path("2026-11-22/obs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.path("2026-11-22/obs/new.bufr"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// cp -p, cp -a and tar set a file's time after writing it, by descriptor
// (futimens) or by path, before or after close: the kernel sends no
// handle, and the time used to be lost for a file being written.
func TestTimesSetWhileWriting(t *testing.T) {
	e := newEnv(t, map[string]views.Rights{"by-type": views.All}, Options{})
	if err := os.Mkdir(e.path("fc"), 0o755); err != nil {
		t.Fatal(err)
	}
	want := time.Date(2021, 5, 6, 7, 8, 9, 0, time.UTC)
	check := func(name string) {
		t.Helper()
		st, err := os.Stat(e.path("fc/" + name))
		if err != nil || !st.ModTime().Equal(want) {
			t.Fatalf("%s: mtime %v, %v; want %v", name, st.ModTime(), err, want)
		}
		info, err := e.m.fsys.tree.Stat(context.Background(), "/fc/"+name)
		if err != nil || !info.ModTime().Equal(want) {
			t.Fatalf("%s: stored mtime %v, %v", name, info.ModTime(), err)
		}
	}
	ts := []syscall.Timespec{syscall.NsecToTimespec(want.UnixNano()), syscall.NsecToTimespec(want.UnixNano())}
	for _, name := range []string{"by-fd", "by-path", "existing"} {
		p := e.path("fc/" + name)
		if name == "existing" {
			if err := os.WriteFile(p, []byte("before"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("content"); err != nil {
			t.Fatal(err)
		}
		if name == "by-fd" {
			// futimens(fd): utimensat with the descriptor and no path.
			err = unixUtimensFd(int(f.Fd()), ts)
		} else {
			err = os.Chtimes(p, want, want)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		check(name)
	}
	// A write after the time set makes it now again.
	f, err := os.OpenFile(e.path("fc/by-path"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	os.Chtimes(e.path("fc/by-path"), want, want)
	f.WriteString("more")
	f.Close()
	if st, err := os.Stat(e.path("fc/by-path")); err != nil || st.ModTime().Equal(want) {
		t.Fatalf("written after utimes: mtime %v, %v", st.ModTime(), err)
	}
}

// unixUtimensFd is futimens(2).
func unixUtimensFd(fd int, ts []syscall.Timespec) error {
	_, _, e := syscall.Syscall6(syscall.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// Concurrent rewrites of a file (open with O_TRUNC, write it whole,
// close) each push a whole version of their own, never a mix (the last
// close wins), and a reader that opens the file meanwhile reads the last
// pushed version whole. (One that opened before a truncating open shares
// the kernel's size of the file with the writer, as on a local file
// system.)
func TestConcurrentRewritesStayWhole(t *testing.T) {
	e := newEnv(t, map[string]views.Rights{"by-type": views.All}, Options{})
	if err := os.Mkdir(e.path("fc"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := e.path("fc/latest.grib")
	const size = 192 << 10
	version := func(v int) []byte { return bytes.Repeat([]byte(fmt.Sprintf("%07d\n", v)), size/8) }
	whole := func(b []byte) bool { return len(b) == size && bytes.Equal(b, bytes.Repeat(b[:8], size/8)) }
	if err := os.WriteFile(p, version(0), 0o644); err != nil {
		t.Fatal(err)
	}
	stop := time.Now().Add(2 * time.Second)
	errs := make(chan error, 4)
	for k := 1; k <= 2; k++ {
		go func() {
			for v := k * 1000; time.Now().Before(stop); v++ {
				if err := os.WriteFile(p, version(v), 0o644); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	go func() {
		// The mount's readers fail only with ESTALE: a small file's
		// object is read at its first READ, and a rewrite racing the
		// open may have dropped it (as on NFS). Their size may be cut
		// (see above).
		for time.Now().Before(stop) {
			if _, err := os.ReadFile(p); err != nil && !errors.Is(err, syscall.ESTALE) {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	go func() { // what the store has, version after version
		for time.Now().Before(stop) {
			f, err := e.m.fsys.tree.Open(context.Background(), "/fc/latest.grib")
			if fs.KindOf(err) == fs.NotExist || errors.Is(err, os.ErrNotExist) {
				continue // replaced between the lookup and the open
			}
			if err != nil {
				errs <- err
				return
			}
			b, err := io.ReadAll(io.NewSectionReader(f, 0, f.Stat().Size()))
			f.Close()
			if err == nil && !whole(b) {
				err = fmt.Errorf("stored %d bytes, not one whole version: %q...", len(b), b[:min(len(b), 16)])
			}
			if err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// A reader opening while a rewrite is under way reads the last push.
	w, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(version(9)[:size/2]); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(p); err != nil || !whole(b) {
		t.Fatalf("read during a rewrite: %d bytes, %v", len(b), err)
	}
}

// TestCopyWithAttributes copies a file of the mount as rsync -X and cp
// --preserve=xattr do: the new file gets each attribute of the old one.
// The checksums and the keys they share are set to what they already are
// (success); the id differs (EACCES), and an attribute of a file not yet
// pushed waits for its close (EBUSY).
func TestCopyWithAttributes(t *testing.T) {
	e := newEnv(t, map[string]views.Rights{"by-type": views.All}, Options{})
	e.register(t, "a.grib", []byte("same bytes"), map[string]string{"type": "fc", "param": "t2m"})
	src := e.path("fc/a.grib")
	names := make([]byte, 1024)
	n, err := syscall.Listxattr(src, names)
	if err != nil {
		t.Fatal(err)
	}
	dst := e.path("fc/b.grib")
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("same bytes")
	wantErrno(t, syscall.Setxattr(dst, "user.datagate.type", []byte("fc"), 0), syscall.EBUSY)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	for _, name := range strings.Split(strings.TrimRight(string(names[:n]), "\x00"), "\x00") {
		m, err := syscall.Getxattr(src, name, buf)
		if err != nil {
			t.Fatal(name, err)
		}
		err = syscall.Setxattr(dst, name, buf[:m], 0)
		switch name {
		case "user.datagate.id":
			wantErrno(t, err, syscall.EACCES)
		case "user.datagate.md5":
			// Computed after the push: absent yet, or the same.
			if err != nil && !errors.Is(err, syscall.EACCES) {
				t.Fatal(name, err)
			}
		default: // sha256, type (the path's), param (set in place)
			if err != nil {
				t.Fatalf("%s=%q: %v", name, buf[:m], err)
			}
		}
	}
	if m, err := syscall.Getxattr(dst, "user.datagate.param", buf); err != nil || string(buf[:m]) != "t2m" {
		t.Fatalf("param of the copy: %q %v", buf[:m], err)
	}
	// A checksum that is not the content's stays refused.
	wantErrno(t, syscall.Setxattr(dst, "user.datagate.sha256", []byte("00"), 0), syscall.EACCES)
}

// TestAppendBesideReader appends to a file that a reader holds open and
// reads past the end of, as tail -f does: the reader reads each appended
// line, as on a local file system. Its short reads of the version it had
// opened used to cut the inode's size back, so that each later append
// landed over the one before (kept: the first and the last line).
func TestAppendBesideReader(t *testing.T) {
	e := newEnv(t, map[string]views.Rights{"by-type": views.All}, Options{})
	if err := os.Mkdir(e.path("fc"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := e.path("fc/log")
	want := "line 0\n"
	if err := os.WriteFile(p, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 100)
	if n, err := r.Read(buf); err != nil || string(buf[:n]) != want {
		t.Fatalf("first read: %q %v", buf[:n], err)
	}
	for i := 1; i <= 4; i++ {
		line := fmt.Sprintf("line %d\n", i)
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(line); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		want += line
		// The reader looks for more, past where it has read.
		if st, err := r.Stat(); err != nil || st.Size() != int64(len(want)) {
			t.Fatalf("fstat by the reader: %v, %v; want %d bytes", st.Size(), err, len(want))
		}
		if n, err := r.Read(buf); err != nil || string(buf[:n]) != line {
			t.Fatalf("the reader read %q, %v; want %q", buf[:n], err, line)
		}
	}
	if got, err := os.ReadFile(p); err != nil || string(got) != want {
		t.Fatalf("after the appends: %q %v, want %q", got, err, want)
	}
}

// setfattr may not grow a file's metadata past views.MaxMeta: ENOSPC.
func TestXattrsAreBounded(t *testing.T) {
	e := newEnv(t, map[string]views.Rights{"by-type": views.All}, Options{})
	e.register(t, "a.grib", []byte("a"), map[string]string{"type": "fc"})
	p := e.path("fc/a.grib")
	val := bytes.Repeat([]byte("v"), 1000)
	var err error
	n := 0
	for ; n < 100 && err == nil; n++ {
		err = syscall.Setxattr(p, fmt.Sprintf("user.datagate.k%03d", n), val, 0)
	}
	wantErrno(t, err, syscall.ENOSPC)
	if n < 15 || n > 17 {
		t.Fatalf("ENOSPC after %d keys of 1,000 bytes, want about 16", n)
	}
	// Removing is always allowed.
	if err := syscall.Removexattr(p, "user.datagate.k000"); err != nil {
		t.Fatal(err)
	}
}
