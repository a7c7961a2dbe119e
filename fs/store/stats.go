package store

import (
	"context"
	"errors"
	"io"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/cache"
	"github.com/datagate/datagate/fs"
)

// Statistics for the admin API and metrics. Nothing here scans the
// catalogue when asked: object counts, bytes, copies per store and queue
// depths are kept by the index with every commit (fs/index/counts.go, with
// tally below), the rest are atomic counters bumped where the work is done.

// Stats is a point-in-time summary of the store.
type Stats struct {
	Objects int64 // objects in the catalogue
	Bytes   int64 // sum of their sizes (sizes still unknown count 0)
	// Exact is false while the counts (Objects, Bytes, Stores[].Copies,
	// queue depths) are rebuilt after an unclean shutdown; they grow
	// towards the true values meanwhile.
	Exact     bool
	Cache     cache.Stats
	Stores    []StoreStats    // the primary first, then the replication targets in order
	Providers []ProviderStats // by name
	Collected uint64          // objects removed by the collector since Open
	Index     IndexStats
}

// StoreStats describes one store.
type StoreStats struct {
	Name string
	// UsedBytes and FreeBytes are those of the file system holding a
	// local store (statfs: used by anything, free for unprivileged
	// users); -1 for a remote store.
	UsedBytes, FreeBytes int64
	Copies               int64 // verified copies the catalogue records in it
	// Healthy is false while the store is passed over after failures
	// (backends/health); reads and copies probe it again after a back-off.
	Healthy bool
}

// ProviderStats counts the content fetches from one provider since Open.
// A fetch is one request for a byte range (the cache asks for runs of
// chunks), from its Open to the Close of its reader.
type ProviderStats struct {
	Name         string
	Fetches      uint64
	FetchErrors  uint64 // fetches that failed to open or broke mid-stream
	Retries      uint64 // retries of the provider's retry decorator, when it has one
	BytesFetched uint64
	FetchSeconds float64 // sum of the fetches' durations
	Healthy      bool    // false since a fetch failed for want of the provider, until one succeeds
}

// IndexStats are Badger's sizes, as Badger last measured them (about
// once a minute).
type IndexStats struct {
	LSMBytes, VLogBytes int64
}

// FetchObserver is told of every provider fetch once it ends: its
// duration (Open to Close), the bytes it delivered, and its error (nil
// when it succeeded; a fetch given up by its reader is not an error). It
// runs on the fetching goroutine and must be quick.
type FetchObserver func(provider string, d time.Duration, bytes int64, err error)

// storeStats holds the store's counters.
type storeStats struct {
	onFetch   FetchObserver // immutable after Open
	collected atomic.Uint64

	mu      sync.Mutex
	provs   map[string]*provCounters // guarded by mu; entries never removed
	retries map[string]*retryTrack   // guarded by mu
}

// retryTrack keeps a provider's retry count monotonic across reloads,
// which replace the provider (and its decorator's counter) by a new one:
// the retired one's count is banked when the change is first seen.
type retryTrack struct {
	cur  retryCounter
	base uint64
}

// retriesOf returns the retries of the provider called name, p being its
// current instance (nil when it is gone or does not count retries).
func (st *storeStats) retriesOf(name string, p retryCounter) uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	tr := st.retries[name]
	if tr == nil {
		if p == nil {
			return 0
		}
		if st.retries == nil {
			st.retries = make(map[string]*retryTrack)
		}
		tr = &retryTrack{}
		st.retries[name] = tr
	}
	if p != nil && tr.cur != p {
		if tr.cur != nil {
			tr.base += tr.cur.Retries()
		}
		tr.cur = p
	}
	n := tr.base
	if tr.cur != nil {
		n += tr.cur.Retries()
	}
	return n
}

type provCounters struct {
	fetches, errors, bytes, nanos atomic.Uint64
}

func (st *storeStats) provider(name string) *provCounters {
	st.mu.Lock()
	defer st.mu.Unlock()
	pc := st.provs[name]
	if pc == nil {
		if st.provs == nil {
			st.provs = make(map[string]*provCounters)
		}
		pc = &provCounters{}
		st.provs[name] = pc
	}
	return pc
}

// fetchProvider opens a range of a provider's file, counting the fetch
// against the provider when its reader is closed. fileSize is the size
// the whole file must have (-1: not known).
func (s *Store) fetchProvider(ctx context.Context, prov backends.Provider, name, path string, off, n, fileSize int64) (io.ReadCloser, error) {
	start := time.Now()
	var rc io.ReadCloser
	var err error
	if so, ok := prov.(backends.SizedOpener); ok && fileSize >= 0 {
		// A file rewritten in place since it was registered must not
		// lend the object its new bytes: with no checksum registered,
		// its size is what tells.
		rc, err = so.OpenSized(ctx, path, off, n, fileSize)
	} else {
		rc, err = prov.Open(ctx, path, off, n)
	}
	f := &fetchReader{s: s, name: name, start: start, rc: rc, err: err}
	if err != nil {
		f.finish()
		return nil, err
	}
	return f, nil
}

// fetchReader counts one provider fetch. Its reader is read by one
// goroutine (a cache fetch), so the counts need no atomics until Close.
type fetchReader struct {
	s     *Store
	name  string
	start time.Time
	rc    io.ReadCloser
	n     int64
	err   error // the first error other than io.EOF
	done  bool
}

func (f *fetchReader) Read(p []byte) (int, error) {
	n, err := f.rc.Read(p)
	f.n += int64(n)
	if err != nil && err != io.EOF && f.err == nil {
		f.err = err
	}
	return n, err
}

func (f *fetchReader) Close() error {
	err := f.rc.Close()
	f.finish()
	return err
}

func (f *fetchReader) finish() {
	if f.done {
		return
	}
	f.done = true
	d := time.Since(f.start)
	err := f.err
	if errors.Is(err, context.Canceled) {
		err = nil // given up by the reader, not failed by the provider
	}
	pc := f.s.st.provider(f.name)
	pc.fetches.Add(1)
	pc.bytes.Add(uint64(f.n))
	pc.nanos.Add(uint64(d))
	if err != nil {
		pc.errors.Add(1)
	}
	if f.s.st.onFetch != nil {
		f.s.st.onFetch(f.name, d, f.n, err)
	}
}

// retryCounter is a provider that counts its retries (backends/retry).
type retryCounter interface{ Retries() uint64 }

// Tally names (fs/index/counts.go).
const (
	tallyCopies   = "copies:" // + store name: verified copies in that store
	tallyQueued   = "queued:" // + store name: queued objects whose next copy goes there
	tallyPrefetch = "prefetch"
)

// tally gives the index the counts it keeps besides objects and bytes.
// Like the queue keys (derive), it depends only on the object and on
// rules fixed at Open.
func (r *replicator) tally(o *fs.Object, add func(string, int64)) {
	for _, name := range o.Stores {
		if t := r.targets[name]; t != nil {
			add(t.copiesKey, 1) // no concatenation on the commit path
		} else {
			add(tallyCopies+name, 1)
		}
	}
	if r.wants(o) {
		if t := r.nextTarget(o); t != nil {
			add(t.queuedKey, 1)
		}
	}
	if ok, _ := r.prefetches(o); ok {
		add(tallyPrefetch, 1)
	}
}

// tallySig names the rules tally follows.
func (r *replicator) tallySig() string { return "tally v1 " + string(r.signature()) }

// nextTarget is the first target, in order, that lacks a copy of o: where
// its next copy goes while every store is healthy.
func (r *replicator) nextTarget(o *fs.Object) *target {
	for _, t := range r.order {
		if !slices.Contains(o.Stores, t.name) {
			return t
		}
	}
	return nil
}

// startCounting rebuilds the catalogue's counts in the background, at low
// priority, when the index has none it can trust (an unclean shutdown).
func (s *Store) startCounting() {
	if s.idx.Counts().Exact {
		return
	}
	s.inBackground(func(ctx context.Context) {
		if err := s.idx.RebuildCounts(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("count the catalogue after an unclean shutdown", "err", err)
		}
	})
}

// Stats returns a summary of the store. It reads counters and asks the
// file systems of local stores for their usage; it scans nothing.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	if err := ctx.Err(); err != nil {
		return Stats{}, fs.E(fs.Other, "stats", "", err)
	}
	c := s.idx.Counts()
	st := Stats{
		Objects: c.Objects, Bytes: c.Bytes, Exact: c.Exact,
		Cache:     s.cache.Stats(),
		Collected: s.st.collected.Load(),
	}
	st.Index.LSMBytes, st.Index.VLogBytes = s.idx.Size()
	for _, t := range s.rep.order {
		ss := StoreStats{Name: t.name, UsedBytes: -1, FreeBytes: -1, Copies: c.Tallies[t.copiesKey], Healthy: s.health.Healthy(t.name)}
		if r, ok := t.w.(interface{ Root() string }); ok {
			ss.UsedBytes, ss.FreeBytes = diskUsage(r.Root())
		}
		st.Stores = append(st.Stores, ss)
	}
	st.Providers = s.providerStats()
	return st, nil
}

// providerStats reports every current provider, and those a reload
// retired that fetched something.
func (s *Store) providerStats() []ProviderStats {
	names := map[string]bool{}
	for n := range *s.providers.cur.Load() {
		names[n] = true
	}
	s.st.mu.Lock()
	for n := range s.st.provs {
		names[n] = true
	}
	for n := range s.st.retries {
		names[n] = true
	}
	s.st.mu.Unlock()
	out := make([]ProviderStats, 0, len(names))
	for n := range names {
		pc := s.st.provider(n)
		ps := ProviderStats{
			Name: n, Fetches: pc.fetches.Load(), FetchErrors: pc.errors.Load(),
			BytesFetched: pc.bytes.Load(), FetchSeconds: time.Duration(pc.nanos.Load()).Seconds(),
			Healthy: s.health.Healthy(providerHealth(n)),
		}
		var rc retryCounter
		if p, ok := s.providers.get(n); ok {
			rc, _ = p.(retryCounter)
		}
		ps.Retries = s.st.retriesOf(n, rc)
		out = append(out, ps)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ReplicationStatus is the state of the replication queue.
type ReplicationStatus struct {
	Stores []StoreQueue // the primary first, then the replication targets in order
	// Prefetch is the number of registered objects queued for prefetch.
	Prefetch int64
	Exact    bool       // as Stats.Exact, for the Queued and Prefetch counts
	Recent   []Transfer // newest first, at most 200
}

// StoreQueue describes the copies to one store.
type StoreQueue struct {
	Name string
	// Queued counts the objects waiting for a copy whose next copy goes
	// to this store: the first store, in order, that lacks one (an
	// unhealthy store's share goes to the next one when dispatched).
	Queued   int64
	InFlight int64  // copies being made now
	Done     uint64 // copies made and recorded since Open
	Failed   uint64 // attempts that failed since Open (each is retried later)
	Bytes    uint64 // bytes of the copies made since Open
}

// Transfer is one copy attempt.
type Transfer struct {
	ID       fs.ID
	Store    string
	Bytes    int64
	Start    time.Time
	Duration time.Duration
	Err      string // empty when the copy succeeded
}

// copyStats are a target's counters.
type copyStats struct {
	inflight             atomic.Int64
	done, failed, nbytes atomic.Uint64
}

// recentTransfers keeps the last transfers in a ring.
type recentTransfers struct {
	mu   sync.Mutex
	ring [200]Transfer // guarded by mu
	next int           // guarded by mu: where the next one goes
	n    int           // guarded by mu: how many the ring holds
}

func (rt *recentTransfers) add(t Transfer) {
	rt.mu.Lock()
	rt.ring[rt.next] = t
	rt.next = (rt.next + 1) % len(rt.ring)
	rt.n = min(rt.n+1, len(rt.ring))
	rt.mu.Unlock()
}

// list returns the transfers, newest first.
func (rt *recentTransfers) list() []Transfer {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	out := make([]Transfer, 0, rt.n)
	for i := 1; i <= rt.n; i++ {
		out = append(out, rt.ring[(rt.next-i+len(rt.ring))%len(rt.ring)])
	}
	return out
}

// transferDone counts a finished copy attempt of o to t.
func (r *replicator) transferDone(o *fs.Object, t *target, start time.Time, err error) {
	tr := Transfer{ID: o.ID, Store: t.name, Start: start, Duration: time.Since(start)}
	if err != nil {
		tr.Err = err.Error()
	} else {
		tr.Bytes = o.Size
	}
	// Listed before counted: whoever sees a counter move finds the
	// transfer in the list.
	r.recent.add(tr)
	if err != nil {
		t.st.failed.Add(1)
	} else {
		t.st.done.Add(1)
		t.st.nbytes.Add(uint64(max(o.Size, 0)))
	}
}

// ReplicationStatus returns the queue depth and the copies in flight and
// made per store, and the last transfers. It reads counters only.
func (s *Store) ReplicationStatus(ctx context.Context) (ReplicationStatus, error) {
	if err := ctx.Err(); err != nil {
		return ReplicationStatus{}, fs.E(fs.Other, "replication status", "", err)
	}
	c := s.idx.Counts()
	rs := ReplicationStatus{Prefetch: c.Tallies[tallyPrefetch], Exact: c.Exact, Recent: s.rep.recent.list()}
	for _, t := range s.rep.order {
		rs.Stores = append(rs.Stores, StoreQueue{
			Name: t.name, Queued: c.Tallies[t.queuedKey], InFlight: t.st.inflight.Load(),
			Done: t.st.done.Load(), Failed: t.st.failed.Load(), Bytes: t.st.nbytes.Load(),
		})
	}
	return rs, nil
}

// Locations says where an object's content is.
type Locations struct {
	// Stores hold a verified copy (as the catalogue records it), in the
	// order Object.Stores lists them.
	Stores []string
	// Pending are the stores copies are still wanted in, in the order
	// they will be made while every store is healthy.
	Pending []string
	Cached  int64 // bytes of this version present in the cache
	// Complete: the whole content is in the cache (verified) or in a
	// store.
	Complete bool
}

// Locations returns where the content of object id is. A missing object
// is a NotExist error.
func (s *Store) Locations(ctx context.Context, id fs.ID) (Locations, error) {
	o, err := s.idx.Get(ctx, id)
	if err != nil {
		return Locations{}, err
	}
	loc := Locations{Stores: append([]string(nil), o.Stores...)}
	r := s.rep
	if r.wants(o) {
		need := r.wanted - r.copies(o)
		for _, t := range r.order {
			if need == 0 {
				break
			}
			if !slices.Contains(o.Stores, t.name) {
				loc.Pending = append(loc.Pending, t.name)
				need--
			}
		}
	}
	if info, ok := s.cache.Lookup(o.ContentKey()); ok {
		loc.Cached = info.Present
		loc.Complete = info.Complete
	}
	if len(o.Stores) > 0 {
		loc.Complete = true
	}
	return loc, nil
}
