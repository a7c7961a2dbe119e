package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/cache"
	"github.com/datagate/datagate/backends/local"
	"github.com/datagate/datagate/backends/retry"
	"github.com/datagate/datagate/fs"
)

// openStatsStore opens a store in dir with the provider "disk" at src.
func openStatsStore(t *testing.T, dir, src string, mod func(*Options)) *Store {
	t.Helper()
	disk, err := local.New("disk", local.Config{Root: src})
	if err != nil {
		t.Fatal(err)
	}
	primary, err := local.New(PrimaryName, local.Config{Root: filepath.Join(dir, "objects")})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Dir: dir, Providers: map[string]backends.Provider{"disk": disk}, Primary: primary,
		Cache: cache.Options{ChunkSize: 64 << 10},
	}
	if mod != nil {
		mod(&opts)
	}
	st, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func stats(t *testing.T, st *Store) Stats {
	t.Helper()
	s, err := st.Stats(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func wantCounts(t *testing.T, st *Store, when string, objects, bytes, primaryCopies int64) {
	t.Helper()
	s := stats(t, st)
	if !s.Exact || s.Objects != objects || s.Bytes != bytes || len(s.Stores) == 0 || s.Stores[0].Copies != primaryCopies {
		t.Fatalf("%s: %+v; want exact, %d objects, %d bytes, %d copies in the primary", when, s, objects, bytes, primaryCopies)
	}
}

// TestStatsCounts: the counts follow puts, replacements, deletes,
// registrations, sizes learnt on first read and collection; a clean
// reopen keeps them, and an unclean one (a child process that exits
// without closing the store) recounts them in the background.
func TestStatsCounts(t *testing.T) {
	if dir := os.Getenv("DG_STATS_CRASH_DIR"); dir != "" {
		statsCrashChild(t, dir, os.Getenv("DG_STATS_CRASH_SRC"))
		return
	}
	ctx := ctxT(t)
	dir, src := t.TempDir(), t.TempDir()
	var fetchMu sync.Mutex
	var fetched int64
	var fetches int
	clk := &clock{t: time.Now()}
	st := openStatsStore(t, dir, src, func(o *Options) {
		o.Now = clk.now
		o.OnFetch = func(p string, d time.Duration, n int64, err error) {
			fetchMu.Lock()
			defer fetchMu.Unlock()
			if p != "disk" || err != nil || d <= 0 {
				t.Errorf("OnFetch(%q, %v, %d, %v)", p, d, n, err)
			}
			fetched += n
			fetches++
		}
	})
	defer func() { st.Close() }()
	wantCounts(t, st, "empty", 0, 0, 0)

	put := func(n int, replace ...fs.ID) *fs.Object {
		t.Helper()
		o, err := st.Put(ctx, PutRequest{Name: "f", Size: int64(n), Replace: replace}, bytes.NewReader(pattern(n)))
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	a, b := put(1000), put(2000)
	put(3000)
	wantCounts(t, st, "three puts", 3, 6000, 3)
	put(500, a.ID)
	wantCounts(t, st, "a replacement", 3, 5500, 3)
	if err := st.Delete(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, st, "a delete", 2, 3500, 2)

	// Registered: one of unknown size (learnt on first read), two that
	// expire.
	data := pattern(300_000)
	os.WriteFile(filepath.Join(src, "r"), data, 0o644)
	unknown := &fs.Object{Source: fs.Location{Provider: "disk", Path: "r"}, Size: -1}
	exp := clk.now().Add(time.Hour)
	e1 := &fs.Object{Source: fs.Location{Provider: "disk", Path: "r", Length: 10}, Expires: exp}
	e2 := &fs.Object{Source: fs.Location{Provider: "disk", Path: "r", Offset: 10, Length: 20}, Expires: exp}
	register(t, st, unknown, e1, e2)
	wantCounts(t, st, "registered", 5, 3530, 2)
	got, err := readObject(t, st, unknown.ID)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read registered object: %v", err)
	}
	wantCounts(t, st, "size learnt", 5, 3530+300_000, 2)
	s := stats(t, st)
	fetchMu.Lock()
	if len(s.Providers) != 1 || s.Providers[0].Name != "disk" || s.Providers[0].BytesFetched != uint64(len(data)) ||
		s.Providers[0].Fetches == 0 || s.Providers[0].FetchErrors != 0 || s.Providers[0].FetchSeconds <= 0 ||
		fetched != int64(len(data)) || uint64(fetches) != s.Providers[0].Fetches {
		t.Errorf("provider stats %+v; observer saw %d fetches of %d bytes", s.Providers, fetches, fetched)
	}
	fetchMu.Unlock()
	if s.Cache.BytesFetched != uint64(len(data)) || s.Cache.Misses == 0 || s.Cache.Size != int64(len(data)) || s.Cache.Entries != 1 {
		t.Errorf("cache stats %+v", s.Cache)
	}
	if !s.Providers[0].Healthy {
		t.Errorf("provider unhealthy after good fetches: %+v", s.Providers[0])
	}
	if p := s.Stores[0]; p.Name != PrimaryName || p.UsedBytes <= 0 || p.FreeBytes < 0 || !p.Healthy {
		t.Errorf("primary usage %+v", p)
	}
	if s.Index.LSMBytes < 0 || s.Index.VLogBytes < 0 {
		t.Errorf("index sizes %+v", s.Index)
	}
	// Locations of a registered object: cached whole, in no store.
	if l, err := st.Locations(ctx, unknown.ID); err != nil || l.Cached != int64(len(data)) || !l.Complete || len(l.Stores) != 0 || len(l.Pending) != 0 {
		t.Errorf("locations of a cached object: %+v %v", l, err)
	}
	if _, err := st.Locations(ctx, b.ID); fs.KindOf(err) != fs.NotExist {
		t.Errorf("locations of a deleted object: %v", err)
	}

	clk.add(2 * time.Hour)
	if cs, err := st.Collect(ctx, clk.now(), 0); err != nil || cs.Objects != 2 {
		t.Fatalf("collect: %+v %v", cs, err)
	}
	wantCounts(t, st, "collected", 3, 3500+300_000, 2)
	if s := stats(t, st); s.Collected != 2 {
		t.Errorf("Collected = %d, want 2", s.Collected)
	}

	// A clean reopen keeps the counts.
	st.Close()
	st = openStatsStore(t, dir, src, nil)
	wantCounts(t, st, "clean reopen", 3, 303_500, 2)
	st.Close()

	// An unclean one: the child adds three objects and exits without
	// closing the store.
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^TestStatsCounts$")
	cmd.Env = append(os.Environ(), "DG_STATS_CRASH_DIR="+dir, "DG_STATS_CRASH_SRC="+src)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	st = openStatsStore(t, dir, src, nil)
	waitFor(t, func() bool { return stats(t, st).Exact })
	wantCounts(t, st, "unclean reopen", 6, 303_500+3*700, 5)
}

// statsCrashChild puts three objects of 700 bytes and exits without
// closing the store, as a crash would leave it.
func statsCrashChild(t *testing.T, dir, src string) {
	st := openStatsStore(t, dir, src, nil)
	for range 3 {
		if _, err := st.Put(context.Background(), PutRequest{Name: "c", Size: 700}, bytes.NewReader(pattern(700))); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	os.Exit(0)
}

// TestReplicationStatus: queue depth per store, copies in flight, made
// and failed, the recent transfers, and the locations of an object as
// its copies are made.
func TestReplicationStatus(t *testing.T) {
	e := newRepEnv(t, nil)
	ctx := ctxT(t)
	status := func() ReplicationStatus {
		t.Helper()
		rs, err := e.st.ReplicationStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs.Stores) != 2 || rs.Stores[0].Name != PrimaryName || rs.Stores[1].Name != "second" {
			t.Fatalf("stores %+v", rs.Stores)
		}
		return rs
	}
	gate := make(chan struct{})
	e.second.set(func(f *faultWriter) { f.gate = gate })
	var objs []*fs.Object
	for i := range 3 {
		o, err := e.st.Put(ctx, PutRequest{Name: "f", Size: -1}, bytes.NewReader(pattern(1000*(i+1))))
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	if rs := status(); rs.Stores[1].Queued != 3 || rs.Stores[0].Queued != 0 || len(rs.Recent) != 0 || !rs.Exact {
		t.Fatalf("before replication: %+v", rs)
	}
	if l, err := e.st.Locations(ctx, objs[0].ID); err != nil || !slices.Equal(l.Stores, []string{PrimaryName}) ||
		!slices.Equal(l.Pending, []string{"second"}) || !l.Complete {
		t.Fatalf("locations before replication: %+v %v", l, err)
	}
	e.run()
	// Two slots for the second store: two copies wait at the gate.
	waitFor(t, func() bool { return status().Stores[1].InFlight == 2 })
	close(gate)
	for _, o := range objs {
		waitFor(t, func() bool { return hasStore(t, e.st, o.ID, "second") })
	}
	waitFor(t, func() bool { return status().Stores[1].InFlight == 0 })
	rs := status()
	if q := rs.Stores[1]; q.Queued != 0 || q.Done != 3 || q.Failed != 0 || q.Bytes != 6000 {
		t.Fatalf("after replication: %+v", q)
	}
	// Newest first means by the end of the copy (TestRecentTransfersRing):
	// concurrent copies end in any order, so only the set is checked here.
	if len(rs.Recent) != 3 {
		t.Fatalf("recent transfers: %+v", rs.Recent)
	}
	for _, r := range rs.Recent {
		if r.Store != "second" || r.Err != "" || !slices.ContainsFunc(objs, func(o *fs.Object) bool { return o.ID == r.ID }) {
			t.Fatalf("recent transfers: %+v", rs.Recent)
		}
	}
	if l, err := e.st.Locations(ctx, objs[0].ID); err != nil || !slices.Equal(l.Stores, []string{PrimaryName, "second"}) || len(l.Pending) != 0 {
		t.Fatalf("locations after replication: %+v %v", l, err)
	}
	s := stats(t, e.st)
	if len(s.Stores) != 2 || s.Stores[0].Copies != 3 || s.Stores[1].Copies != 3 || s.Stores[1].UsedBytes != -1 {
		t.Fatalf("store stats: %+v", s.Stores)
	}

	// A failing store: the attempt is counted and listed with its error.
	e.second.set(func(f *faultWriter) { f.fail = errors.New("disk on fire") })
	o, err := e.st.Put(ctx, PutRequest{Name: "g", Size: -1}, bytes.NewReader(pattern(10)))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return status().Stores[1].Failed > 0 })
	rs = status()
	if r := rs.Recent[0]; r.ID != o.ID || r.Err == "" || rs.Stores[1].Queued != 1 {
		t.Fatalf("failed transfer: %+v, queue %+v", r, rs.Stores[1])
	}
	if s := stats(t, e.st); s.Stores[1].Healthy || !s.Stores[0].Healthy {
		t.Errorf("health after a failed copy: %+v", s.Stores)
	}
}

// TestRecentTransfersRing keeps the last 200, newest first.
func TestRecentTransfersRing(t *testing.T) {
	var rt recentTransfers
	for i := range 250 {
		rt.add(Transfer{Bytes: int64(i)})
	}
	l := rt.list()
	if len(l) != 200 || l[0].Bytes != 249 || l[199].Bytes != 50 {
		t.Fatalf("ring holds %d, first %d, last %d", len(l), l[0].Bytes, l[len(l)-1].Bytes)
	}
}

// unreachable is a provider that is unavailable for its first fails calls.
type unreachable struct {
	backends.Provider
	fails atomic.Int32
}

func (u *unreachable) Stat(ctx context.Context, p string) (backends.Entry, error) {
	if u.fails.Add(-1) >= 0 {
		return backends.Entry{}, fmt.Errorf("no route: %w", backends.ErrUnavailable)
	}
	return u.Provider.Stat(ctx, p)
}

// TestRetriesSurviveReload: a reload replaces a provider and its retry
// decorator; the retries counted before stay counted.
func TestRetriesSurviveReload(t *testing.T) {
	ctx := ctxT(t)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644)
	disk, err := local.New("disk", local.Config{Root: src})
	if err != nil {
		t.Fatal(err)
	}
	wrap := func(fails int32) backends.Provider {
		u := &unreachable{Provider: disk}
		u.fails.Store(fails)
		return retry.New(u, retry.Options{Base: time.Millisecond, Max: time.Millisecond})
	}
	st := openStatsStore(t, t.TempDir(), src, nil)
	defer st.Close()
	retries := func() uint64 {
		t.Helper()
		s := stats(t, st)
		for _, p := range s.Providers {
			if p.Name == "disk" {
				return p.Retries
			}
		}
		t.Fatalf("no provider disk in %+v", s.Providers)
		return 0
	}
	p1 := wrap(2)
	st.SetProviders(map[string]backends.Provider{"disk": p1})
	if _, err := p1.Stat(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	if n := retries(); n != 2 {
		t.Fatalf("%d retries, want 2", n)
	}
	p2 := wrap(1)
	st.SetProviders(map[string]backends.Provider{"disk": p2})
	if _, err := p2.Stat(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	if n := retries(); n != 3 {
		t.Fatalf("%d retries after a reload, want 3", n)
	}
	st.SetProviders(map[string]backends.Provider{})
	if n := retries(); n != 3 {
		t.Fatalf("%d retries once the provider is gone, want 3", n)
	}
}

// TestPrefetchQueueCount: registered objects count in the prefetch queue
// until their content is cached whole.
func TestPrefetchQueueCount(t *testing.T) {
	ctx := ctxT(t)
	src := t.TempDir()
	st := openStatsStore(t, t.TempDir(), src, func(o *Options) {
		o.Replication.Prefetch = func(*fs.Object) (bool, Priority) { return true, Normal }
	})
	defer st.Close()
	var objs []*fs.Object
	for i := range 2 {
		data := pattern(1000 + i)
		os.WriteFile(filepath.Join(src, fmt.Sprint(i)), data, 0o644)
		objs = append(objs, &fs.Object{Source: fs.Location{Provider: "disk", Path: fmt.Sprint(i)}, Size: int64(len(data)), SHA256: sha(data)})
	}
	register(t, st, objs...)
	prefetch := func() int64 {
		rs, err := st.ReplicationStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rs.Prefetch
	}
	if n := prefetch(); n != 2 {
		t.Fatalf("%d queued for prefetch, want 2", n)
	}
	if _, err := readObject(t, st, objs[0].ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return prefetch() == 1 })
}
