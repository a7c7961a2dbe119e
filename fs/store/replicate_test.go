package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/cache"
	"github.com/datagate/datagate/backends/local"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
)

// repEnv is a store with a provider "disk", the primary and a second
// local store "second" (wrapped in a faultWriter the test controls).
type repEnv struct {
	dir, srcRoot, secondRoot string
	second                   *faultWriter
	st                       *Store
	skew                     atomic.Int64 // added to the store's clock (ns)
	cancel                   context.CancelFunc
	done                     chan struct{}
}

func newRepEnv(t *testing.T, mod func(*Replication)) *repEnv {
	e := &repEnv{dir: t.TempDir(), srcRoot: t.TempDir(), secondRoot: t.TempDir()}
	e.open(t, mod)
	t.Cleanup(func() { e.close() })
	return e
}

func (e *repEnv) open(t *testing.T, mod func(*Replication)) {
	t.Helper()
	disk, err := local.New("disk", local.Config{Root: e.srcRoot})
	if err != nil {
		t.Fatal(err)
	}
	primary, err := local.New(PrimaryName, local.Config{Root: filepath.Join(e.dir, "objects")})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := local.New("second", local.Config{Root: e.secondRoot})
	if err != nil {
		t.Fatal(err)
	}
	e.second = &faultWriter{Writer: sec}
	rep := Replication{
		Stores:   []Target{{Name: "second", W: e.second}},
		Replicas: 2, RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		HealthBackoff: 20 * time.Millisecond,
	}
	if mod != nil {
		mod(&rep)
	}
	e.st, err = Open(context.Background(), Options{
		Dir: e.dir, Providers: map[string]backends.Provider{"disk": disk}, Primary: primary,
		Cache: cache.Options{ChunkSize: 64 << 10}, NoSync: true, Replication: rep,
		Now: func() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) },
	})
	if err != nil {
		t.Fatal(err)
	}
}

// run starts the queues; close stops them and closes the store.
func (e *repEnv) run() {
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan struct{})
	go func() {
		defer close(e.done)
		e.st.RunReplication(ctx)
	}()
}

func (e *repEnv) close() {
	if e.cancel != nil {
		e.cancel()
		<-e.done
		e.cancel = nil
	}
	e.st.Close()
}

// faultWriter is a store whose writes the test can corrupt or block:
// faults a real disk does not produce on demand.
type faultWriter struct {
	backends.Writer
	mu      sync.Mutex
	corrupt bool          // flip a byte of every Put
	fail    error         // every Put fails with it
	gate    chan struct{} // when set, Put waits for it to close
	puts    []string      // paths put, in order
}

func (f *faultWriter) Put(ctx context.Context, p string, r io.Reader, size int64) error {
	f.mu.Lock()
	corrupt, gate, fail := f.corrupt, f.gate, f.fail
	f.puts = append(f.puts, p)
	f.mu.Unlock()
	if fail != nil {
		return fail
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if corrupt {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if len(b) > 0 {
			b[len(b)/2] ^= 0xff
		}
		r = bytes.NewReader(b)
	}
	return f.Writer.Put(ctx, p, r, size)
}

func (f *faultWriter) set(fn func(f *faultWriter)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// localStore is a local store named name, and its root.
func localStore(t *testing.T, name string) (*local.Provider, string) {
	t.Helper()
	root := t.TempDir()
	w, err := local.New(name, local.Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	return w, root
}

func hasStore(t *testing.T, st *Store, id fs.ID, name string) bool {
	o, err := st.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Contains(o.Stores, name)
}

func queued(t *testing.T, st *Store) int {
	qs, err := st.QueueStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range qs.Replicate {
		n += c
	}
	for _, c := range qs.Prefetch {
		n += c
	}
	return n
}

func TestReplicateToSecondStore(t *testing.T) {
	e := newRepEnv(t, nil)
	ctx := ctxT(t)
	var objs []*fs.Object
	for i := range 5 {
		o, err := e.st.Put(ctx, PutRequest{Name: "f", Size: -1}, bytes.NewReader(pattern(100_000+i)))
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	if n := queued(t, e.st); n != 5 {
		t.Fatalf("%d queued after 5 puts, want 5 (the put enqueues)", n)
	}
	e.run()
	for i, o := range objs {
		waitFor(t, func() bool { return hasStore(t, e.st, o.ID, "second") })
		b, err := os.ReadFile(filepath.Join(e.secondRoot, copyPath(o)))
		if err != nil || !bytes.Equal(b, pattern(100_000+i)) {
			t.Fatalf("copy of %d in second store: %v (equal %v)", i, err, bytes.Equal(b, pattern(100_000+i)))
		}
	}
	if n := queued(t, e.st); n != 0 {
		t.Fatalf("%d still queued", n)
	}
	// Deleting the object drops the copy too.
	if err := e.st.Delete(ctx, objs[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.secondRoot, copyPath(objs[0]))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("copy survives the object's deletion: %v", err)
	}
}

func TestReplicationQueueSurvivesRestart(t *testing.T) {
	e := newRepEnv(t, nil)
	ctx := ctxT(t)
	gate := make(chan struct{})
	e.second.set(func(f *faultWriter) { f.gate = gate })
	var ids []fs.ID
	for i := range 4 {
		o, err := e.st.Put(ctx, PutRequest{Name: "f", Size: -1}, bytes.NewReader(pattern(1000+i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, o.ID)
	}
	e.run()
	waitFor(t, func() bool {
		e.second.mu.Lock()
		defer e.second.mu.Unlock()
		return len(e.second.puts) > 0
	})
	// Stop mid-queue: the copies in flight are abandoned.
	e.close()
	e.open(t, nil)
	if n := queued(t, e.st); n != 4 {
		t.Fatalf("%d queued after restart, want 4", n)
	}
	e.run()
	for _, id := range ids {
		waitFor(t, func() bool { return hasStore(t, e.st, id, "second") })
	}
}

func TestCorruptReplicaNotRecorded(t *testing.T) {
	e := newRepEnv(t, nil)
	ctx := ctxT(t)
	e.second.set(func(f *faultWriter) { f.corrupt = true })
	o, err := e.st.Put(ctx, PutRequest{Name: "f", Size: -1}, bytes.NewReader(pattern(50_000)))
	if err != nil {
		t.Fatal(err)
	}
	e.run()
	waitFor(t, func() bool {
		qs, _ := e.st.QueueStats(ctx)
		return qs.Waiting > 0
	})
	if hasStore(t, e.st, o.ID, "second") {
		t.Fatal("a corrupt copy was recorded")
	}
	if _, err := os.Stat(filepath.Join(e.secondRoot, copyPath(o))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the corrupt copy was left in the store: %v", err)
	}
	e.second.set(func(f *faultWriter) { f.corrupt = false })
	waitFor(t, func() bool { return hasStore(t, e.st, o.ID, "second") })
}

func TestPrioritiesServedInOrder(t *testing.T) {
	e := newRepEnv(t, func(r *Replication) {
		r.Stores[0].Concurrency = 1
		r.Priority = func(o *fs.Object) Priority {
			p, _ := ParsePriority(o.Meta["prio"])
			return p
		}
	})
	ctx := ctxT(t)
	gate := make(chan struct{})
	e.second.set(func(f *faultWriter) { f.gate = gate })
	// A first object occupies the single slot; the rest queue behind it.
	first, err := e.st.Put(ctx, PutRequest{Name: "first", Size: -1, Meta: map[string]string{"prio": "low"}}, bytes.NewReader(pattern(10)))
	if err != nil {
		t.Fatal(err)
	}
	e.run()
	waitFor(t, func() bool {
		e.second.mu.Lock()
		defer e.second.mu.Unlock()
		return len(e.second.puts) == 1
	})
	want := map[string]string{}
	for _, p := range []string{"low", "normal", "high", "low", "high"} {
		o, err := e.st.Put(ctx, PutRequest{Name: p, Size: -1, Meta: map[string]string{"prio": p}}, bytes.NewReader(pattern(10)))
		if err != nil {
			t.Fatal(err)
		}
		want[copyPath(o)] = p
	}
	close(gate)
	waitFor(t, func() bool { return queued(t, e.st) == 0 })
	e.second.mu.Lock()
	defer e.second.mu.Unlock()
	var got []string
	for _, p := range e.second.puts[1:] {
		got = append(got, want[p])
	}
	if !slices.Equal(got, []string{"high", "high", "normal", "low", "low"}) {
		t.Fatalf("copies made in priority order %v", got)
	}
	_ = first
}

func TestReadFallsBackToStoreCopy(t *testing.T) {
	e := newRepEnv(t, func(r *Replication) { r.KeepFetched = true })
	ctx := ctxT(t)
	// A pushed object whose primary file is lost is read from "second".
	data := pattern(300_000)
	o, err := e.st.Put(ctx, PutRequest{Name: "p", Size: -1}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	// A fetched object, read once whole, is kept in the primary and second.
	reg := pattern(200_000)
	e2 := &env{srcRoot: e.srcRoot}
	e2.write(t, "r.bin", reg)
	r := &fs.Object{Name: "r", Size: -1, Source: fs.Location{Provider: "disk", Path: "r.bin"}, SHA256: sha(reg)}
	if _, err := e.st.Register(ctx, []*fs.Object{r}); err != nil {
		t.Fatal(err)
	}
	if got, err := readObject(t, e.st, r.ID); err != nil || !bytes.Equal(got, reg) {
		t.Fatalf("first read of registered object: %v", err)
	}
	e.run()
	waitFor(t, func() bool {
		return hasStore(t, e.st, o.ID, "second") && hasStore(t, e.st, r.ID, "second") && hasStore(t, e.st, r.ID, PrimaryName)
	})

	// Primary copy lost: read from the replica.
	if err := os.Remove(filepath.Join(e.dir, "objects", primaryPath(o.ID))); err != nil {
		t.Fatal(err)
	}
	if got, err := readObject(t, e.st, o.ID); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read with the primary copy lost: %v (equal %v)", err, bytes.Equal(got, data))
	}

	// Provider gone and the cache evicted: read from a store copy.
	r, _ = e.st.Get(ctx, r.ID)
	os.Remove(filepath.Join(e.srcRoot, "r.bin"))
	if err := e.st.cache.Remove(r.ContentKey()); err != nil {
		t.Fatal(err)
	}
	if got, err := readObject(t, e.st, r.ID); err != nil || !bytes.Equal(got, reg) {
		t.Fatalf("read with the provider gone: %v", err)
	}

	// Stores gone, provider back: read from the provider.
	e2.write(t, "r.bin", reg)
	e.st.cache.Remove(r.ContentKey())
	os.RemoveAll(e.secondRoot)
	os.Remove(filepath.Join(e.dir, "objects", copyPath(r)))
	if got, err := readObject(t, e.st, r.ID); err != nil || !bytes.Equal(got, reg) {
		t.Fatalf("read with the stores gone: %v", err)
	}

	// Nothing anywhere: a clear error, not a hang.
	os.Remove(filepath.Join(e.srcRoot, "r.bin"))
	e.st.cache.Remove(r.ContentKey())
	if _, err := readObject(t, e.st, r.ID); err == nil {
		t.Fatal("read succeeded with no copy anywhere")
	}
}

func TestPrefetch(t *testing.T) {
	e := newRepEnv(t, func(r *Replication) {
		r.Replicas = 0
		r.Prefetch = func(o *fs.Object) (bool, Priority) { return o.Meta["pre"] == "yes", Normal }
		r.Signature = "pre=yes"
	})
	ctx := ctxT(t)
	e2 := &env{srcRoot: e.srcRoot}
	var objs []*fs.Object
	for i, pre := range []string{"yes", "no", "yes"} {
		b := pattern(70_000 + i)
		name := []string{"a", "b", "c"}[i]
		e2.write(t, name, b)
		objs = append(objs, &fs.Object{Name: name, Size: -1, Source: fs.Location{Provider: "disk", Path: name}, Meta: map[string]string{"pre": pre}})
	}
	if _, err := e.st.Register(ctx, objs); err != nil {
		t.Fatal(err)
	}
	e.run()
	state := func(o *fs.Object) fs.State {
		n, err := e.st.Get(ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		return n.State
	}
	waitFor(t, func() bool { return state(objs[0]) == fs.StateCached && state(objs[2]) == fs.StateCached })
	waitFor(t, func() bool { return queued(t, e.st) == 0 })
	if s := state(objs[1]); s != fs.StateRegistered {
		t.Fatalf("an object not marked for prefetch is %v", s)
	}
	// The rules changed across a restart: the queue is rebuilt.
	e.close()
	e.open(t, func(r *Replication) {
		r.Replicas = 0
		r.Prefetch = func(o *fs.Object) (bool, Priority) { return true, Low }
		r.Signature = "all"
	})
	if n := queued(t, e.st); n != 1 {
		t.Fatalf("%d queued after the rules changed, want 1", n)
	}
}

func TestFsckKnowsStores(t *testing.T) {
	e := newRepEnv(t, func(r *Replication) { r.KeepFetched = true })
	ctx := ctxT(t)
	data := pattern(120_000)
	o, err := e.st.Put(ctx, PutRequest{Name: "p", Size: -1}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	reg := pattern(90_000)
	(&env{srcRoot: e.srcRoot}).write(t, "r.bin", reg)
	r := &fs.Object{Name: "r", Size: -1, Source: fs.Location{Provider: "disk", Path: "r.bin"}, SHA256: sha(reg)}
	if _, err := e.st.Register(ctx, []*fs.Object{r}); err != nil {
		t.Fatal(err)
	}
	if _, err := readObject(t, e.st, r.ID); err != nil {
		t.Fatal(err)
	}
	e.run()
	waitFor(t, func() bool { return queued(t, e.st) == 0 && hasStore(t, e.st, r.ID, "second") })
	fsck := func(repair bool) map[string][]Damage {
		_, dmg := collectDamage(t, func(report func(Damage)) (CheckReport, error) {
			return e.st.Fsck(ctx, CheckOptions{Repair: repair}, report)
		})
		return dmg
	}
	// Clean: the fetched object's copy in the primary is no orphan.
	if dmg := fsck(false); len(dmg) != 0 {
		t.Fatalf("fsck after replication: %v", dmg)
	}
	e.close()
	e.cancel = nil
	e.open(t, func(r *Replication) { r.KeepFetched = true })

	// A recorded copy lost: reported; repair forgets it and requeues.
	os.Remove(filepath.Join(e.secondRoot, copyPath(o)))
	if dmg := fsck(false); len(dmg["stores"]) != 1 {
		t.Fatalf("lost copy: %v", dmg)
	}
	if dmg := fsck(true); len(dmg["stores"]) != 1 || !dmg["stores"][0].Repaired {
		t.Fatalf("lost copy, repair: %v", dmg)
	}
	if hasStore(t, e.st, o.ID, "second") || queued(t, e.st) != 1 {
		t.Fatal("the lost copy is still recorded, or the object was not queued again")
	}
	e.run()
	waitFor(t, func() bool { return hasStore(t, e.st, o.ID, "second") })

	// The primary file lost: repaired from the second store.
	os.Remove(filepath.Join(e.dir, "objects", primaryPath(o.ID)))
	if dmg := fsck(true); len(dmg["store"]) != 1 || !dmg["store"][0].Repaired {
		t.Fatalf("lost primary, repair: %v", dmg)
	}
	if b, err := os.ReadFile(filepath.Join(e.dir, "objects", primaryPath(o.ID))); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("primary not restored: %v", err)
	}
	if dmg := fsck(false); len(dmg) != 0 {
		t.Fatalf("fsck after repair: %v", dmg)
	}
}

func TestFailingStoreIsPassedOver(t *testing.T) {
	third, _ := localStore(t, "third")
	e := newRepEnv(t, func(r *Replication) {
		r.Stores = append(r.Stores, Target{Name: "third", W: third})
		r.HealthBackoff = time.Minute // stays unhealthy for the test
	})
	ctx := ctxT(t)
	e.second.set(func(f *faultWriter) { f.fail = fmt.Errorf("second is down: %w", backends.ErrUnavailable) })
	var ids []fs.ID
	for i := range 3 {
		o, err := e.st.Put(ctx, PutRequest{Name: "f", Size: -1}, bytes.NewReader(pattern(5000+i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, o.ID)
	}
	e.run()
	for _, id := range ids {
		waitFor(t, func() bool { return hasStore(t, e.st, id, "third") })
	}
	e.second.mu.Lock()
	defer e.second.mu.Unlock()
	// The copies already in flight when the first failed (its
	// concurrency, 2), then none.
	if len(e.second.puts) > 2 {
		t.Fatalf("%d attempts on the failing store, want at most 2 (then passed over)", len(e.second.puts))
	}
}

func TestExpiredObjectsLoseTheirCopies(t *testing.T) {
	e := newRepEnv(t, nil)
	ctx := ctxT(t)
	o, err := e.st.Put(ctx, PutRequest{Name: "f", Size: -1, Expires: time.Now().Add(time.Hour)}, bytes.NewReader(pattern(30_000)))
	if err != nil {
		t.Fatal(err)
	}
	keep, err := e.st.Put(ctx, PutRequest{Name: "g", Size: -1}, bytes.NewReader(pattern(30_001)))
	if err != nil {
		t.Fatal(err)
	}
	e.run()
	waitFor(t, func() bool { return hasStore(t, e.st, o.ID, "second") && hasStore(t, e.st, keep.ID, "second") })
	e.skew.Store(int64(2 * time.Hour))
	if _, err := e.st.Collect(ctx, e.st.now(), 100); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		_, err := os.Stat(filepath.Join(e.secondRoot, copyPath(o)))
		return errors.Is(err, os.ErrNotExist)
	})
	if _, err := os.Stat(filepath.Join(e.secondRoot, copyPath(keep))); err != nil {
		t.Fatalf("the copy of an object that did not expire went: %v", err)
	}
}

func TestSupersededVersionLosesItsCopies(t *testing.T) {
	e := newRepEnv(t, func(r *Replication) { r.KeepFetched = true })
	ctx := ctxT(t)
	src := &env{srcRoot: e.srcRoot}
	src.write(t, "v.bin", pattern(40_000))
	o := &fs.Object{Name: "v", Size: -1, Source: fs.Location{Provider: "disk", Path: "v.bin"}}
	if _, err := e.st.Register(ctx, []*fs.Object{o}); err != nil {
		t.Fatal(err)
	}
	if _, err := readObject(t, e.st, o.ID); err != nil {
		t.Fatal(err)
	}
	e.run()
	waitFor(t, func() bool { return hasStore(t, e.st, o.ID, "second") && hasStore(t, e.st, o.ID, PrimaryName) })
	old, _ := e.st.Get(ctx, o.ID)
	// The source changes; a re-crawl registers the new content.
	src.write(t, "v.bin", pattern(41_000))
	re := &fs.Object{Name: "v", Size: 41_000, Source: fs.Location{Provider: "disk", Path: "v.bin"}}
	if out, err := e.st.Register(ctx, []*fs.Object{re}); err != nil || out[0] != index.Updated {
		t.Fatalf("re-register: %v %v", out, err)
	}
	for _, p := range []string{filepath.Join(e.secondRoot, copyPath(old)), filepath.Join(e.dir, "objects", copyPath(old))} {
		waitFor(t, func() bool {
			_, err := os.Stat(p)
			return errors.Is(err, os.ErrNotExist)
		})
	}
}

func TestBackingOffStoreIsTheLastResort(t *testing.T) {
	e := newRepEnv(t, func(r *Replication) { r.HealthBackoff = time.Hour })
	ctx := ctxT(t)
	data := pattern(60_000)
	o, err := e.st.Put(ctx, PutRequest{Name: "f", Size: -1}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	e.run()
	waitFor(t, func() bool { return hasStore(t, e.st, o.ID, "second") })
	os.Remove(filepath.Join(e.dir, "objects", primaryPath(o.ID)))
	e.st.health.Failure("second") // passed over for an hour
	if got, err := readObject(t, e.st, o.ID); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read with only a backing-off store holding a copy: %v", err)
	}
}

// A store that refuses one object's copy (an answer, not a fault: it stays
// healthy) backs off for that object only; the copy goes to the next store
// at once rather than after the object's back-off.
func TestRefusingStoreDoesNotDelayTheNext(t *testing.T) {
	third, _ := localStore(t, "third")
	e := newRepEnv(t, func(r *Replication) {
		r.Stores = append(r.Stores, Target{Name: "third", W: third})
		r.RetryBase, r.RetryMax = time.Hour, time.Hour // a retry never comes in the test
	})
	ctx := ctxT(t)
	e.second.set(func(f *faultWriter) { f.fail = fmt.Errorf("refused by policy: %w", os.ErrPermission) })
	o, err := e.st.Put(ctx, PutRequest{Name: "f", Size: -1}, bytes.NewReader(pattern(7000)))
	if err != nil {
		t.Fatal(err)
	}
	e.run()
	waitFor(t, func() bool { return hasStore(t, e.st, o.ID, "third") })
	if hasStore(t, e.st, o.ID, "second") {
		t.Fatal("copy recorded in the refusing store")
	}
	// The object has its copies: the refusing store's retry state goes.
	waitFor(t, func() bool {
		qs, err := e.st.QueueStats(ctx)
		return err == nil && qs.Waiting == 0 && queued(t, e.st) == 0
	})
}

// Retry state is kept per store across a restart: the store that failed
// still backs off for the object, the others do not.
func TestRetryStatePerStoreSurvivesRestart(t *testing.T) {
	third, _ := localStore(t, "third")
	thirdW := &faultWriter{Writer: third}
	mod := func(r *Replication) {
		r.Stores = append(r.Stores, Target{Name: "third", W: thirdW})
		r.Replicas = 3
		r.RetryBase, r.RetryMax = time.Hour, time.Hour
	}
	e := newRepEnv(t, mod)
	ctx := ctxT(t)
	thirdW.set(func(f *faultWriter) { f.fail = fmt.Errorf("refused: %w", os.ErrPermission) })
	o, err := e.st.Put(ctx, PutRequest{Name: "f", Size: -1}, bytes.NewReader(pattern(8000)))
	if err != nil {
		t.Fatal(err)
	}
	e.run()
	waitFor(t, func() bool { return hasStore(t, e.st, o.ID, "second") })
	waitFor(t, func() bool {
		qs, err := e.st.QueueStats(ctx)
		return err == nil && qs.Waiting == 1
	})
	e.close()
	thirdW.set(func(f *faultWriter) { f.fail, f.puts = nil, nil })
	e.open(t, mod)
	e.run()
	// Give the queue time to (wrongly) retry the third store.
	time.Sleep(300 * time.Millisecond)
	thirdW.mu.Lock()
	n := len(thirdW.puts)
	thirdW.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d attempts on the store still backing off for the object", n)
	}
	if qs, err := e.st.QueueStats(ctx); err != nil || qs.Waiting != 1 {
		t.Fatalf("retry state after restart: %+v %v", qs, err)
	}
}
