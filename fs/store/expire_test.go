package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/cache"
	"github.com/datagate/datagate/backends/local"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
)

// clock is a settable time source for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) add(d time.Duration) { c.set(c.now().Add(d)) }

// newEnvWith is newEnv with extra store options (providers "disk" and
// "keep", both local directories).
func newEnvWith(t *testing.T, mod func(*Options)) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), srcRoot: t.TempDir()}
	disk, err := local.New("disk", local.Config{Root: e.srcRoot})
	if err != nil {
		t.Fatal(err)
	}
	keep, err := local.New("keep", local.Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	primary, err := local.New(PrimaryName, local.Config{Root: filepath.Join(e.dir, "objects")})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Dir: e.dir, Providers: map[string]backends.Provider{"disk": disk, "keep": keep}, Primary: primary,
		Cache: cache.Options{ChunkSize: 64 << 10}, NoSync: true,
	}
	if mod != nil {
		mod(&opts)
	}
	e.st, err = Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.st.Close() })
	return e
}

func sha(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func exists(t *testing.T, p string) bool {
	t.Helper()
	_, err := os.Stat(p)
	if err != nil && !errors.Is(err, iofs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

func findIDs(t *testing.T, st *Store, k, v string) []fs.ID {
	t.Helper()
	var ids []fs.ID
	if err := st.Find(ctxT(t), []index.Cond{{Key: k, Value: v}}, index.FindOptions{}, func(o *fs.Object) error {
		ids = append(ids, o.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

// The expiry scenario: objects expire while being read; readers
// holding them open finish correctly; afterwards nothing is left.
func TestExpiryWhileReading(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)}
	e := newEnvWith(t, func(o *Options) {
		o.Now = clk.now
		o.DeleteAtSource = map[string]bool{"disk": true}
	})
	ctx := ctxT(t)
	exp := clk.now().Add(time.Hour)
	meta := map[string]string{"type": "fc"}

	whole := pattern(1 << 20) // read partly, then expires: source deletion must wait
	e.write(t, "fc/whole.grib", whole)
	cached := pattern(200 << 10) // read fully before it expires
	e.write(t, "fc/cached.grib", cached)
	e.write(t, "fc/unread.grib", pattern(1000)) // never opened: its file goes at once
	shared := pattern(400 << 10)                // two ranges of one file; only one expires
	e.write(t, "fc/shared.grib", shared)
	shared2 := pattern(300 << 10) // a whole-file object and a range of it
	e.write(t, "fc/shared2.grib", shared2)

	oWhole := &fs.Object{Size: -1, Meta: meta, Expires: exp, SHA256: sha(whole), Source: fs.Location{Provider: "disk", Path: "fc/whole.grib"}}
	oCached := &fs.Object{Size: -1, Meta: meta, Expires: exp, SHA256: sha(cached), Source: fs.Location{Provider: "disk", Path: "fc/cached.grib"}}
	oRange := &fs.Object{Name: "r1", Size: -1, Meta: meta, Expires: exp, Source: fs.Location{Provider: "disk", Path: "fc/shared.grib", Length: 100 << 10}}
	oRangeLive := &fs.Object{Name: "r2", Size: -1, Meta: meta, Source: fs.Location{Provider: "disk", Path: "fc/shared.grib", Offset: 100 << 10, Length: 100 << 10}}
	oWhole2 := &fs.Object{Size: -1, Meta: meta, Expires: exp, Source: fs.Location{Provider: "disk", Path: "fc/shared2.grib"}}
	oRange2Live := &fs.Object{Name: "r3", Size: -1, Meta: meta, Source: fs.Location{Provider: "disk", Path: "fc/shared2.grib", Length: 10}}
	oUnread := &fs.Object{Size: -1, Meta: meta, Expires: exp, Source: fs.Location{Provider: "disk", Path: "fc/unread.grib"}}
	register(t, e.st, oWhole, oCached, oRange, oRangeLive, oWhole2, oRange2Live, oUnread)

	storedData := pattern(500 << 10)
	oStored, err := e.st.Put(ctx, PutRequest{Name: "s.bin", Meta: meta, Expires: exp, Size: -1}, bytes.NewReader(storedData))
	if err != nil {
		t.Fatal(err)
	}
	live, err := e.st.Put(ctx, PutRequest{Name: "live.bin", Meta: meta, Size: 5}, bytes.NewReader([]byte("hello")))
	if err != nil {
		t.Fatal(err)
	}

	// Fill the cache for oCached, and find its files.
	if got, err := readObject(t, e.st, oCached.ID); err != nil || !bytes.Equal(got, cached) {
		t.Fatalf("read cached: %v", err)
	}
	o, _ := e.st.Get(ctx, oCached.ID)
	cinfo, ok := e.st.Cache().Lookup(o.ContentKey())
	if !ok || !cinfo.Complete {
		t.Fatalf("cached object not complete in cache: %+v", cinfo)
	}
	storedPath, _ := e.st.primaryFS.LocalPath(primaryPath(oStored.ID))

	// Readers that hold objects open across their expiry.
	rWhole, err := e.st.Open(ctx, oWhole.ID)
	if err != nil {
		t.Fatal(err)
	}
	half := make([]byte, len(whole)/2)
	if _, err := io.ReadFull(rWhole, half); err != nil || !bytes.Equal(half, whole[:len(half)]) {
		t.Fatalf("first half: %v", err)
	}
	rStored, err := e.st.Open(ctx, oStored.ID)
	if err != nil {
		t.Fatal(err)
	}
	sHalf := make([]byte, len(storedData)/2)
	if _, err := io.ReadFull(rStored, sHalf); err != nil {
		t.Fatal(err)
	}
	rCached, err := e.st.Open(ctx, oCached.ID)
	if err != nil {
		t.Fatal(err)
	}

	// Not yet expired: nothing goes.
	if st, err := e.st.Collect(ctx, clk.now(), 2); err != nil || st.Objects != 0 {
		t.Fatalf("early collect: %+v %v", st, err)
	}
	clk.add(2 * time.Hour)
	st, err := e.st.Collect(ctx, clk.now(), 2) // small batches: several transactions
	if err != nil {
		t.Fatal(err)
	}
	if st.Objects != 6 || st.Batches < 3 || st.SourceFiles != 1 {
		t.Fatalf("collect: %+v, want 6 objects in >= 3 batches, 1 source file", st)
	}
	for _, id := range []fs.ID{oWhole.ID, oCached.ID, oRange.ID, oWhole2.ID, oStored.ID, oUnread.ID} {
		if _, err := e.st.Get(ctx, id); !errors.Is(err, iofs.ErrNotExist) {
			t.Fatalf("expired %s still there: %v", id, err)
		}
	}
	got := findIDs(t, e.st, "type", "fc")
	want := map[fs.ID]bool{oRangeLive.ID: true, oRange2Live.ID: true, live.ID: true}
	if len(got) != len(want) {
		t.Fatalf("find after expiry: %v", got)
	}
	for _, id := range got {
		if !want[id] {
			t.Fatalf("find after expiry returned expired %s", id)
		}
	}

	// The readers finish reading correctly.
	rest, err := io.ReadAll(rWhole)
	if err != nil || !bytes.Equal(append(half, rest...), whole) {
		t.Fatalf("reader of an expired registered object: %d bytes, %v", len(half)+len(rest), err)
	}
	rest, err = io.ReadAll(rStored)
	if err != nil || !bytes.Equal(append(sHalf, rest...), storedData) {
		t.Fatalf("reader of an expired stored object: %v", err)
	}
	all, err := io.ReadAll(rCached)
	if err != nil || !bytes.Equal(all, cached) {
		t.Fatalf("reader of an expired cached object: %v", err)
	}
	src := func(p string) string { return filepath.Join(e.srcRoot, p) }
	if !exists(t, src("fc/whole.grib")) || !exists(t, src("fc/cached.grib")) {
		t.Fatal("source file deleted while a reader held its object")
	}
	if exists(t, src("fc/unread.grib")) {
		t.Error("whole-file source of an unread expired object not deleted")
	}
	if !exists(t, src("fc/shared.grib")) || !exists(t, src("fc/shared2.grib")) {
		t.Error("a file other objects are registered on was deleted")
	}
	for _, r := range []*Reader{rWhole, rStored, rCached} {
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if exists(t, cinfo.Path) || exists(t, storedPath) {
		t.Error("cache or stored file of an expired object left behind")
	}
	if _, ok := e.st.Cache().Lookup(o.ContentKey()); ok {
		t.Error("cache still knows the expired entry")
	}
	// The deferred source deletion happens on the next round.
	st, err = e.st.Collect(ctx, clk.now(), 0)
	if err != nil || st.SourceFiles != 2 || exists(t, src("fc/whole.grib")) || exists(t, src("fc/cached.grib")) {
		t.Fatalf("deferred source deletion: %+v %v", st, err)
	}
	if b, err := readObject(t, e.st, live.ID); err != nil || string(b) != "hello" {
		t.Fatalf("live object: %q %v", b, err)
	}
	if n := countFiles(t, filepath.Join(e.dir, "objects")); n != 1 {
		t.Errorf("%d stored files, want 1 (the live object)", n)
	}
}

func TestExpiryPostponedIsKept(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)}
	e := newEnvWith(t, func(o *Options) { o.Now = clk.now })
	ctx := ctxT(t)
	e.write(t, "a", []byte("a"))
	a := &fs.Object{Size: -1, Expires: clk.now().Add(time.Minute), Source: fs.Location{Provider: "disk", Path: "a"}}
	register(t, e.st, a)
	if _, err := e.st.Update(ctx, a.ID, func(o *fs.Object) error { o.Expires = clk.now().Add(time.Hour); return nil }); err != nil {
		t.Fatal(err)
	}
	clk.add(10 * time.Minute)
	if st, err := e.st.Collect(ctx, clk.now(), 0); err != nil || st.Objects != 0 {
		t.Fatalf("collect: %+v %v", st, err)
	}
	if _, err := e.st.Get(ctx, a.ID); err != nil {
		t.Fatalf("postponed object collected: %v", err)
	}
	clk.add(time.Hour)
	if st, err := e.st.Collect(ctx, clk.now(), 0); err != nil || st.Objects != 1 {
		t.Fatalf("collect after the new date: %+v %v", st, err)
	}
	if !exists(t, filepath.Join(e.srcRoot, "a")) {
		t.Error("source deleted without delete_at_source")
	}
}

func TestRetentionDefaults(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)}
	e := newEnvWith(t, func(o *Options) {
		o.Now = clk.now
		o.Retention = func(o *fs.Object) time.Duration {
			switch o.Source.Provider {
			case "":
				return 7 * 24 * time.Hour // pushed
			case "disk":
				return 2 * 24 * time.Hour
			}
			return 0 // "keep": for ever
		}
	})
	ctx := ctxT(t)
	now := clk.now()
	e.write(t, "x", []byte("x"))
	fromDisk := &fs.Object{Size: -1, Source: fs.Location{Provider: "disk", Path: "x"}}
	explicit := &fs.Object{Size: -1, Expires: now.Add(time.Hour), Source: fs.Location{Provider: "disk", Path: "x", Length: 1}}
	kept := &fs.Object{Size: -1, Source: fs.Location{Provider: "keep", Path: "y"}}
	register(t, e.st, fromDisk, explicit, kept)
	pushed, err := e.st.Put(ctx, PutRequest{Name: "p", Size: 1}, bytes.NewReader([]byte("p")))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id   fs.ID
		want time.Time
	}{
		{fromDisk.ID, now.Add(48 * time.Hour)},
		{explicit.ID, now.Add(time.Hour)},
		{kept.ID, time.Time{}},
		{pushed.ID, now.Add(7 * 24 * time.Hour)},
	} {
		o, err := e.st.Get(ctx, c.id)
		if err != nil {
			t.Fatal(err)
		}
		if !o.Expires.Equal(c.want) {
			t.Errorf("%s (%s): expires %v, want %v", o.Name, o.Source.Provider, o.Expires, c.want)
		}
	}
	clk.add(3 * 24 * time.Hour)
	if st, err := e.st.Collect(ctx, clk.now(), 0); err != nil || st.Objects != 2 {
		t.Fatalf("collect after 3 days: %+v %v", st, err)
	}
	clk.add(5 * 24 * time.Hour)
	if st, err := e.st.Collect(ctx, clk.now(), 0); err != nil || st.Objects != 1 {
		t.Fatalf("collect after 8 days: %+v %v", st, err)
	}
	if _, err := e.st.Get(ctx, kept.ID); err != nil {
		t.Fatalf("object kept for ever is gone: %v", err)
	}
}

func TestRunCollectorStopsWithContext(t *testing.T) {
	e := newEnvWith(t, nil)
	e.write(t, "a", []byte("a"))
	a := &fs.Object{Size: -1, Expires: time.Now().Add(-time.Second), Source: fs.Location{Provider: "disk", Path: "a"}}
	register(t, e.st, a)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.st.RunCollector(ctx, 10*time.Millisecond, 0); close(done) }()
	waitFor(t, func() bool { _, err := e.st.Get(ctxT(t), a.ID); return fs.KindOf(err) == fs.NotExist })
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunCollector did not stop")
	}
}
