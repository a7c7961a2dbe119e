package store

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
)

// Replication and prefetch run from durable queues kept in the catalogue
// itself. An object's queue entry is a derived key (index.Deriver) that
// exists exactly while the object needs work:
//
//	derived 0x06 prio id   replication: fewer verified copies than wanted
//	derived 0x07 prio id   prefetch: registered, not yet cached whole
//
// Because the index writes derived keys in the transaction that writes
// the object, a put or a register enqueues its object atomically — there
// is no window in which a crash loses the enqueue — and recording a new
// copy (or the cached state) dequeues it in the same way. Keys sort by
// priority then id (creation time), so a walk of the prefix serves high
// before normal before low, oldest first. Retry state lives apart, in raw
// Badger keys that only this file writes:
//
//	0x20 0x06 id store     attempts (u32), next attempt (unix ns, i64)
//	0x20 0x07 id           the same, for a prefetch
//	0x21                   signature of the rules the queue keys follow
//
// A copy's retry state is kept per (object, store): a store that keeps
// failing an object backs off for that object alone, and the object's
// copy goes to the next store meanwhile rather than waiting for it. (Keys
// of an earlier layout, without a store, are dropped by the sweep: the
// object is tried again at once.)
//
// When the rules change between runs (stores, replicas, keep_fetched,
// prefetch settings) Open rebuilds the queue keys from the catalogue.

// Priority orders queued work: High first, then Normal, then Low.
type Priority uint8

const (
	High Priority = iota
	Normal
	Low
)

var priorityNames = [...]string{"high", "normal", "low"}

func (p Priority) String() string {
	if int(p) < len(priorityNames) {
		return priorityNames[p]
	}
	return fmt.Sprintf("priority(%d)", p)
}

// ParsePriority reads "high", "normal" or "low" ("" is normal).
func ParsePriority(s string) (Priority, error) {
	switch s {
	case "", "normal":
		return Normal, nil
	case "high":
		return High, nil
	case "low":
		return Low, nil
	}
	return Normal, fs.E(fs.Invalid, "priority", s, errors.New("want high, normal or low"))
}

// Target is one store content is copied to.
type Target struct {
	Name string
	W    backends.Writer
	// Concurrency bounds the copies to this store in flight; default 2.
	Concurrency int
}

// Replication configures copies beyond the primary store, and prefetch.
type Replication struct {
	// Stores are the copy targets, in order of preference. The primary
	// store is always the first target and is not listed here.
	Stores []Target
	// Replicas is the number of verified copies wanted, the primary's
	// counting as one (so a pushed object, which starts with its primary
	// copy, gets Replicas-1 more). 0 or 1: pushed objects are not copied.
	Replicas int
	// KeepFetched: content fetched from a provider, once whole and
	// verified, is copied to Replicas stores too (the primary first), so
	// it outlives cache eviction and the provider.
	KeepFetched bool
	// Priority of an object's replication. Default: High for pushed
	// objects (their only other copy is the primary), Low for fetched ones
	// (the provider still has them).
	Priority func(o *fs.Object) Priority
	// Prefetch says whether a registered object is fetched ahead of
	// demand, and at which priority. nil: never.
	Prefetch func(o *fs.Object) (bool, Priority)
	// PrefetchConcurrency bounds prefetches in flight; default 2.
	PrefetchConcurrency int
	// Signature names the rules behind Priority and Prefetch; when it (or
	// the stores, Replicas or KeepFetched) differs from the last run, Open
	// rebuilds the queues.
	Signature string
	// RetryBase and RetryMax bound the back-off between attempts on one
	// object (defaults 1s and 1h); each failure doubles it, with jitter.
	RetryBase, RetryMax time.Duration
	// HealthBackoff is how long a failing store or provider is passed
	// over after its first failure (doubling after each further one, up
	// to 5 minutes) before one request probes it again; default 1s.
	HealthBackoff time.Duration
	// StoreTempAge is how long a temporary file of a local store (other
	// than the primary) must have been left untouched to be taken for
	// the leftover of an interrupted copy and removed; default 1h. See
	// recovery.go.
	StoreTempAge time.Duration
}

const (
	queueReplicate = 0x06 // derived-key prefix of the replication queue
	queuePrefetch  = 0x07 // derived-key prefix of the prefetch queue
	rawAttempts    = 0x20 // Badger prefix of retry state
	rawSignature   = 0x21 // Badger key of the queue rules' signature
	// rawDerived is the index's Badger prefix of derived keys (see
	// fs/index/doc.go), needed to drop queue keys when rebuilding.
	rawDerived = 0x05
)

type target struct {
	name string
	w    backends.Writer
	sem  chan struct{}
	st   copyStats // stats.go
	// tally names of its copies and of its queue (stats.go)
	copiesKey, queuedKey string
}

// replicator runs the queues. Its rules are fixed at Open.
type replicator struct {
	s       *Store
	opts    Replication
	order   []*target // primary first, then opts.Stores
	targets map[string]*target
	wanted  int // copies wanted, capped by the targets there are
	// healthBase is how soon a store passed over as unhealthy may be
	// probed again at the earliest.
	healthBase time.Duration
	prefSem    chan struct{}

	poke chan struct{} // something may be ready: scan again

	recent recentTransfers // the last copies, for ReplicationStatus (stats.go)

	mu       sync.Mutex
	inflight map[fs.ID]bool
	// waiting mirrors the retry state on disk (next attempt per entry
	// and, for copies, per store).
	waiting map[waitKey]time.Time
	// blocked is when an object waiting for copies has a store due
	// again, once dispatch found every store it lacks backing off for
	// it, so a scan skips it without a lookup.
	blocked map[fs.ID]time.Time
}

// waitKey names retry state: store is empty for a prefetch.
type waitKey struct {
	kind  byte
	id    fs.ID
	store string
}

func newReplicator(s *Store, opts Replication) *replicator {
	r := &replicator{s: s, opts: opts, targets: map[string]*target{}, poke: make(chan struct{}, 1), inflight: map[fs.ID]bool{}, waiting: map[waitKey]time.Time{}, blocked: map[fs.ID]time.Time{}}
	if r.opts.RetryBase <= 0 {
		r.opts.RetryBase = time.Second
	}
	if r.opts.RetryMax < r.opts.RetryBase {
		r.opts.RetryMax = max(time.Hour, r.opts.RetryBase)
	}
	if r.opts.PrefetchConcurrency <= 0 {
		r.opts.PrefetchConcurrency = 2
	}
	r.prefSem = make(chan struct{}, r.opts.PrefetchConcurrency)
	r.healthBase = opts.HealthBackoff
	if r.healthBase <= 0 {
		r.healthBase = time.Second
	}
	add := func(name string, w backends.Writer, c int) {
		if c <= 0 {
			c = 2
		}
		t := &target{name: name, w: w, sem: make(chan struct{}, c), copiesKey: tallyCopies + name, queuedKey: tallyQueued + name}
		r.order = append(r.order, t)
		r.targets[name] = t
	}
	add(PrimaryName, s.primary, 2)
	for _, t := range opts.Stores {
		add(t.Name, t.W, t.Concurrency)
	}
	r.wanted = min(opts.Replicas, len(r.order))
	return r
}

// signature describes the rules the queue keys follow.
func (r *replicator) signature() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "v1 replicas=%d keep_fetched=%v stores=", r.wanted, r.opts.KeepFetched)
	for _, t := range r.order {
		b.WriteString(t.name + ",")
	}
	b.WriteString(" rules=" + r.opts.Signature)
	return []byte(b.String())
}

// wants reports whether o needs another copy.
func (r *replicator) wants(o *fs.Object) bool {
	switch {
	case o.State == fs.StateStored:
	case o.State == fs.StateCached && r.opts.KeepFetched:
	default:
		return false
	}
	return r.copies(o) < r.wanted
}

// copies counts o's verified copies on configured targets.
func (r *replicator) copies(o *fs.Object) int {
	n := 0
	for _, name := range o.Stores {
		if r.targets[name] != nil {
			n++
		}
	}
	return n
}

func (r *replicator) priority(o *fs.Object) Priority {
	if r.opts.Priority != nil {
		return min(r.opts.Priority(o), Low)
	}
	if o.State == fs.StateStored {
		return High
	}
	return Low
}

func queueKey(kind byte, p Priority, id fs.ID) []byte {
	k := make([]byte, 0, 2+len(id))
	return append(append(k, kind, byte(p)), id[:]...)
}

// derive wraps next (the views' Deriver) with the queue keys of o.
func (r *replicator) derive(next index.Deriver) index.Deriver {
	return func(o *fs.Object) []index.Derived {
		var out []index.Derived
		if next != nil {
			out = next(o)
		}
		return append(out, r.queueKeys(o)...)
	}
}

func (r *replicator) queueKeys(o *fs.Object) []index.Derived {
	var out []index.Derived
	if r.wants(o) {
		out = append(out, index.Derived{Key: queueKey(queueReplicate, r.priority(o), o.ID)})
	}
	if ok, p := r.prefetches(o); ok {
		out = append(out, index.Derived{Key: queueKey(queuePrefetch, p, o.ID)})
	}
	return out
}

// prefetches reports whether o waits in the prefetch queue, and at which
// priority.
func (r *replicator) prefetches(o *fs.Object) (bool, Priority) {
	if r.opts.Prefetch == nil || o.State >= fs.StateCached || o.Source.IsZero() {
		return false, Low
	}
	ok, p := r.opts.Prefetch(o)
	return ok, min(p, Low)
}

// rebuild rewrites every queue key when the rules changed since the
// signature was recorded. It runs inside Open, before anything else
// writes. The signature is written last: a crash part-way rebuilds again.
func (r *replicator) rebuild(ctx context.Context) error {
	db := r.s.idx.DB()
	sig := r.signature()
	var old []byte
	err := db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte{rawSignature})
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		old, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		return fs.E(fs.Other, "open replication queue", "", err)
	}
	if bytes.Equal(old, sig) {
		return nil
	}
	start := time.Now()
	// Without a signature no queue key was ever written (the first open
	// of a data directory): nothing to drop.
	for _, kind := range []byte{queueReplicate, queuePrefetch} {
		if old == nil {
			break
		}
		if err := db.DropPrefix([]byte{rawDerived, kind}); err != nil {
			return fs.E(fs.Other, "rebuild replication queue", "", err)
		}
	}
	wb := db.NewWriteBatch()
	defer wb.Cancel()
	n := 0
	if r.wanted == 0 && r.opts.Prefetch == nil {
		// Rules that queue nothing (the default): no walk of the
		// catalogue, which may be large.
		err = wb.Set([]byte{rawSignature}, sig)
		if err == nil {
			err = wb.Flush()
		}
		if err != nil {
			return fs.E(fs.Other, "rebuild replication queue", "", err)
		}
		return nil
	}
	err = r.s.idx.Walk(ctx, fs.ID{}, func(o *fs.Object) error {
		for _, d := range r.queueKeys(o) {
			n++
			if err := wb.Set(append([]byte{rawDerived}, d.Key...), d.Value); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = wb.Set([]byte{rawSignature}, sig)
	}
	if err == nil {
		err = wb.Flush()
	}
	if err != nil {
		return fs.E(fs.Other, "rebuild replication queue", "", err)
	}
	if old != nil || n > 0 {
		r.s.log.Info("replication and prefetch queues rebuilt for new rules", "queued", n, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// attempts is the retry state of a copy or a prefetch.
type attempts struct {
	n    uint32
	next time.Time
}

func attemptKey(k waitKey) []byte {
	return append(append([]byte{rawAttempts, k.kind}, k.id[:]...), k.store...)
}

// parseAttemptKey reads a retry state key; ok is false for one of another
// layout.
func parseAttemptKey(k []byte) (wk waitKey, ok bool) {
	if len(k) < 2+len(fs.ID{}) {
		return wk, false
	}
	wk.kind = k[1]
	copy(wk.id[:], k[2:])
	wk.store = string(k[2+len(fs.ID{}):])
	return wk, (wk.kind == queueReplicate) == (wk.store != "")
}

func (r *replicator) loadAttempts(txn *badger.Txn, k waitKey) (attempts, error) {
	item, err := txn.Get(attemptKey(k))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return attempts{}, nil
	}
	if err != nil {
		return attempts{}, err
	}
	var a attempts
	err = item.Value(func(v []byte) error {
		if len(v) != 12 {
			return nil // unreadable: start afresh
		}
		a.n = binary.BigEndian.Uint32(v)
		a.next = time.Unix(0, int64(binary.BigEndian.Uint64(v[4:])))
		return nil
	})
	return a, err
}

// failed records a failed attempt and returns when to try again: an
// exponential back-off, half of it random so objects that failed together
// spread out.
func (r *replicator) failed(k waitKey) time.Time {
	var next time.Time
	err := r.s.idx.DB().Update(func(txn *badger.Txn) error {
		a, err := r.loadAttempts(txn, k)
		if err != nil {
			return err
		}
		d := r.opts.RetryMax
		if a.n < 40 && r.opts.RetryBase<<a.n > 0 && r.opts.RetryBase<<a.n < d {
			d = r.opts.RetryBase << a.n
		}
		d = d/2 + rand.N(d/2+1)
		next = r.s.now().Add(d)
		v := make([]byte, 12)
		binary.BigEndian.PutUint32(v, a.n+1)
		binary.BigEndian.PutUint64(v[4:], uint64(next.UnixNano()))
		return txn.Set(attemptKey(k), v)
	})
	if err != nil {
		r.s.log.Warn("record replication attempt", "id", k.id, "store", k.store, "err", err)
	}
	r.mu.Lock()
	r.waiting[k] = next
	r.mu.Unlock()
	return next
}

// succeeded clears the retry state of the entries in ks.
func (r *replicator) succeeded(ks ...waitKey) {
	// Most jobs succeed at the first attempt: skip a commit (an fsync)
	// when there is no retry state to clear.
	var had []waitKey
	r.mu.Lock()
	for _, k := range ks {
		if _, ok := r.waiting[k]; ok {
			had = append(had, k)
			delete(r.waiting, k)
		}
	}
	r.mu.Unlock()
	if len(had) == 0 {
		return
	}
	err := r.s.idx.DB().Update(func(txn *badger.Txn) error {
		for _, k := range had {
			if err := txn.Delete(attemptKey(k)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		r.s.log.Warn("clear replication attempts", "id", had[0].id, "err", err)
	}
}

// copyKeys names the retry state the copies of object id may have, one
// per store.
func (r *replicator) copyKeys(id fs.ID) []waitKey {
	ks := make([]waitKey, len(r.order))
	for i, t := range r.order {
		ks[i] = waitKey{queueReplicate, id, t.name}
	}
	return ks
}

// Run serves the replication and prefetch queues until ctx is done or the
// store closes. Serve runs it; commands that open the store briefly do not,
// and the work waits in the queue for the next server.
func (r *replicator) run(ctx context.Context) {
	// Copies in flight stop when the store closes too, so Close does not
	// wait for a slow store.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-r.s.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	sub := r.s.idx.Subscribe(1024)
	expired := make(chan *fs.Object, 4096)
	go func() {
		defer close(expired)
		for ch := range sub.C {
			// Only changes that queue work call for a scan.
			if ch.Op == index.OpOverflow || (ch.New != nil && len(r.queueKeys(ch.New)) > 0) {
				r.wake()
			}
			// The collector (expire.go) removes the cache entry and the
			// primary file of what expires, and a re-crawl that finds
			// new content drops the old version's cache entry; their
			// copies in the stores go here. Delete drops them itself
			// (dropContent).
			expiredCopies := ch.Op == index.OpDelete && ch.Old != nil && ch.Old.Expired(r.s.now())
			supersededCopies := ch.Op == index.OpPut && ch.Old != nil && ch.New != nil && ch.Old.Version != ch.New.Version
			if (expiredCopies || supersededCopies) && len(ch.Old.Stores) > 0 {
				select {
				case expired <- ch.Old:
				default:
					r.s.log.Warn("copies left in the stores: cleanup queue full", "id", ch.Old.ID, "version", ch.Old.Version, "stores", ch.Old.Stores)
				}
			}
		}
	}()
	var cleaner sync.WaitGroup
	cleaner.Add(1)
	go func() {
		defer cleaner.Done()
		for o := range expired {
			if ctx.Err() == nil {
				r.s.dropCopies(ctx, o)
			}
		}
	}()
	defer func() {
		sub.Close() // ends the feed reader, which ends the cleaner
		cleaner.Wait()
	}()
	r.sweep(ctx)
	var jobs sync.WaitGroup
	defer jobs.Wait()
	lastReport := time.Now()
	for {
		if time.Since(lastReport) >= time.Minute {
			lastReport = time.Now()
			r.report(ctx)
			r.sweep(ctx) // retry state of entries that left the queue
		}
		next := r.scan(ctx, &jobs)
		wait := 30 * time.Second
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(r.s.now()), 10*time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-r.s.closed:
			t.Stop()
			return
		case <-r.poke:
		case <-t.C:
		}
		t.Stop()
	}
}

// report logs what the queues hold, when they hold anything.
func (r *replicator) report(ctx context.Context) {
	qs, err := r.s.QueueStats(ctx)
	if err != nil {
		return
	}
	rep := qs.Replicate[High] + qs.Replicate[Normal] + qs.Replicate[Low]
	pre := qs.Prefetch[High] + qs.Prefetch[Normal] + qs.Prefetch[Low]
	if rep+pre == 0 {
		return
	}
	r.s.log.Info("replication queue", "replicate", rep, "prefetch", pre, "retrying", qs.Waiting,
		"high", qs.Replicate[High]+qs.Prefetch[High], "normal", qs.Replicate[Normal]+qs.Prefetch[Normal], "low", qs.Replicate[Low]+qs.Prefetch[Low])
}

func (r *replicator) wake() {
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

// sweep drops retry state whose object left the queue while no server
// ran (deleted, or copied by an earlier run that crashed before clearing),
// and loads the rest into memory.
func (r *replicator) sweep(ctx context.Context) {
	db := r.s.idx.DB()
	var stale [][]byte
	db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{rawAttempts}})
		defer it.Close()
		for it.Rewind(); it.Valid() && ctx.Err() == nil; it.Next() {
			k := it.Item().Key()
			wk, ok := parseAttemptKey(k)
			if ok && wk.store != "" {
				ok = r.targets[wk.store] != nil
			}
			found := false
			for p := High; ok && !found && p <= Low; p++ {
				if _, err := txn.Get(append([]byte{rawDerived}, queueKey(wk.kind, p, wk.id)...)); err == nil {
					found = true
				}
			}
			if !found {
				stale = append(stale, it.Item().KeyCopy(nil))
				continue
			}
			if a, err := r.loadAttempts(txn, wk); err == nil {
				r.mu.Lock()
				r.waiting[wk] = a.next
				r.mu.Unlock()
			}
		}
		return nil
	})
	for _, k := range stale {
		db.Update(func(txn *badger.Txn) error { return txn.Delete(k) })
		wk, _ := parseAttemptKey(k)
		r.mu.Lock()
		delete(r.waiting, wk)
		r.mu.Unlock()
	}
	now := r.s.now()
	r.mu.Lock()
	for id, t := range r.blocked {
		if !t.After(now) {
			delete(r.blocked, id)
		}
	}
	r.mu.Unlock()
}

// scan walks both queues in priority order and starts every job a free
// slot allows. It returns the earliest time a waiting entry is due (zero
// if none waits).
func (r *replicator) scan(ctx context.Context, jobs *sync.WaitGroup) time.Time {
	var due time.Time
	note := func(t time.Time) {
		if due.IsZero() || t.Before(due) {
			due = t
		}
	}
	now := r.s.now()
	for _, kind := range []byte{queueReplicate, queuePrefetch} {
		if kind == queuePrefetch && r.opts.Prefetch == nil {
			continue
		}
		var ids []fs.ID
		// Collect a batch of candidates in order, then dispatch outside
		// the read transaction (a job's commit must not wait on it).
		err := r.s.idx.Derived(ctx, index.DerivedOptions{Prefix: []byte{kind}}, func(k, _ []byte) error {
			var id fs.ID
			if len(k) != 2+len(id) {
				return nil
			}
			copy(id[:], k[2:])
			r.mu.Lock()
			busy := r.inflight[id]
			next := r.blocked[id]
			if kind == queuePrefetch {
				next = r.waiting[waitKey{kind, id, ""}]
			}
			r.mu.Unlock()
			if busy {
				return nil
			}
			if next.After(now) {
				note(next)
				return nil
			}
			ids = append(ids, id)
			if len(ids) >= 256 {
				return index.ErrStop
			}
			return nil
		})
		if err != nil && ctx.Err() == nil {
			r.s.log.Warn("scan replication queue", "err", err)
		}
		started := 0
		for _, id := range ids {
			if ctx.Err() != nil || r.allBusy(kind) {
				break // the end of a job pokes a new scan
			}
			ok, wait := r.dispatch(ctx, kind, id, jobs)
			if ok {
				started++
			}
			if !wait.IsZero() {
				note(wait)
			}
		}
		if len(ids) >= 256 && started > 0 && !r.allBusy(kind) {
			note(now) // more may wait beyond the batch
		}
	}
	return due
}

// allBusy reports whether every slot of the queue kind is taken.
func (r *replicator) allBusy(kind byte) bool {
	if kind == queuePrefetch {
		return len(r.prefSem) == cap(r.prefSem)
	}
	for _, t := range r.order {
		if len(t.sem) < cap(t.sem) {
			return false
		}
	}
	return true
}

// dispatch starts the job for id if a slot is free: for replication, on
// the first store in target order that lacks a copy, is healthy (or due
// for a probe) and is not backing off for this object; the share of a
// store that is unhealthy or backing off goes to the next one. It reports
// whether it started a job and, when the object waits for a store to
// recover or to be due again, when to look again.
func (r *replicator) dispatch(ctx context.Context, kind byte, id fs.ID, jobs *sync.WaitGroup) (started bool, wait time.Time) {
	o, err := r.s.idx.Get(ctx, id)
	if err != nil {
		return false, wait // deleted meanwhile
	}
	if kind == queuePrefetch {
		select {
		case r.prefSem <- struct{}{}:
		default:
			return false, wait
		}
		r.start(jobs, id, func() {
			defer func() { <-r.prefSem }()
			r.prefetch(ctx, o)
		})
		return true, wait
	}
	if !r.wants(o) {
		return false, wait
	}
	now := r.s.now()
	var retry time.Time // when the first store backing off for o is due
	unhealthy := false
	for _, t := range r.order {
		if slices.Contains(o.Stores, t.name) {
			continue
		}
		r.mu.Lock()
		next := r.waiting[waitKey{queueReplicate, id, t.name}]
		r.mu.Unlock()
		if next.After(now) {
			if retry.IsZero() || next.Before(retry) {
				retry = next
			}
			continue
		}
		select {
		case t.sem <- struct{}{}:
		default:
			if r.s.health.Healthy(t.name) {
				return false, time.Time{} // wait for this store rather than skip to a later one
			}
			continue
		}
		if !r.s.health.Usable(t.name) {
			<-t.sem
			unhealthy = true
			continue
		}
		r.start(jobs, id, func() {
			defer func() { <-t.sem }()
			r.replicate(ctx, o, t)
		})
		return true, time.Time{}
	}
	if unhealthy {
		// Look again when the unhealthy store may be probed.
		wait = now.Add(r.healthBase)
	}
	if !retry.IsZero() && (wait.IsZero() || retry.Before(wait)) {
		wait = retry
	}
	if !unhealthy && !retry.IsZero() {
		r.mu.Lock()
		r.blocked[id] = retry
		r.mu.Unlock()
	}
	return false, wait
}

func (r *replicator) start(jobs *sync.WaitGroup, id fs.ID, fn func()) {
	r.mu.Lock()
	r.inflight[id] = true
	r.mu.Unlock()
	jobs.Add(1)
	go func() {
		defer jobs.Done()
		defer r.wake()
		defer func() {
			r.mu.Lock()
			delete(r.inflight, id)
			r.mu.Unlock()
		}()
		fn()
	}()
}

// replicate copies o to t, verifies the copy and records it.
func (r *replicator) replicate(ctx context.Context, o *fs.Object, t *target) {
	s := r.s
	start := time.Now()
	t.st.inflight.Add(1)
	defer t.st.inflight.Add(-1)
	err := r.copyTo(ctx, o, t)
	var done bool
	if err == nil {
		done, err = r.record(ctx, o, t)
	}
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down: the entry stays queued
		}
		r.transferDone(o, t, start, err)
		next := r.failed(waitKey{queueReplicate, o.ID, t.name})
		s.log.Warn("replication failed", "id", o.ID, "store", t.name, "retry_at", next.Format(time.RFC3339), "err", err)
		return
	}
	r.transferDone(o, t, start, nil)
	if done {
		// No store is owed a copy any more: the back-off of those
		// that failed it goes too.
		r.succeeded(r.copyKeys(o.ID)...)
	} else {
		r.succeeded(waitKey{queueReplicate, o.ID, t.name})
	}
	s.log.Debug("replicated", "id", o.ID, "store", t.name, "size", o.Size, "took", time.Since(start))
}

// errCorrupt marks a copy that did not read back as written.
var errCorrupt = errors.New("copy does not match the recorded checksum")

// copyTo writes o's content to t and reads it back to check it. A copy
// that fails the check is deleted.
func (r *replicator) copyTo(ctx context.Context, o *fs.Object, t *target) error {
	s := r.s
	if len(o.SHA256) == 0 && len(o.MD5) == 0 {
		s.health.Release(t.name)
		return fmt.Errorf("no checksum recorded to verify a copy against")
	}
	src, err := s.OpenObject(ctx, o)
	if err != nil {
		s.health.Release(t.name) // t was not asked: no verdict on it
		return fmt.Errorf("read source: %w", err)
	}
	dst := copyPath(o)
	if fc, ok := t.w.(fileCopier); ok && kernelCopy {
		if f, ok := src.File(); ok {
			// Local file to local store: the kernel copies, and the
			// copy is read back while it is being flushed; a copy that
			// fails the check is never put in place.
			h, want := copySum(o)
			err = fc.PutFile(ctx, dst, f, o.Size, h, func() error {
				if !bytes.Equal(h.Sum(nil), want) {
					return fmt.Errorf("%s: %w", dst, errCorrupt)
				}
				return nil
			})
			src.Close()
			if errors.Is(err, errCorrupt) {
				s.health.Failure(t.name)
			} else {
				s.health.Report(t.name, err)
			}
			return err
		}
	}
	err = t.w.Put(ctx, dst, io.LimitReader(src, o.Size), o.Size)
	src.Close()
	if err != nil {
		s.health.Report(t.name, err)
		return err
	}
	if err := verifyCopy(ctx, t.w, dst, o); err != nil {
		if errors.Is(err, errCorrupt) {
			s.health.Failure(t.name)
		} else {
			s.health.Report(t.name, err)
		}
		if derr := t.w.Delete(context.WithoutCancel(ctx), dst); derr != nil {
			s.log.Warn("remove unverified copy", "store", t.name, "path", dst, "err", derr)
		}
		return err
	}
	s.health.Success(t.name)
	return nil
}

// fileCopier is a store that can take a copy of a local file from the
// kernel and check it before putting it in place (backends/local).
type fileCopier interface {
	PutFile(ctx context.Context, path string, src *os.File, size int64, h io.Writer, check func() error) error
}

// kernelCopy lets benchmarks compare the buffered copy with PutFile.
var kernelCopy = true

// verifyCopy reads the copy at p back and compares it with o's checksum:
// SHA-256 when recorded, else MD5. Stores' own checksums (S3 ETags) are
// not trusted: multipart uploads and encryption make them something else.
func verifyCopy(ctx context.Context, w backends.Writer, p string, o *fs.Object) error {
	rc, err := w.Open(ctx, p, 0, -1)
	if err != nil {
		return err
	}
	defer rc.Close()
	return checkCopy(ctx, rc, p, o)
}

// checkCopy reads a copy (at p) whole from r and compares its size and
// checksum with o's.
func checkCopy(ctx context.Context, r io.Reader, p string, o *fs.Object) error {
	h, want := copySum(o)
	if h == nil {
		return fmt.Errorf("verify copy %s: no checksum recorded", p)
	}
	n, err := io.CopyBuffer(h, &ctxReader{ctx: ctx, r: r}, make([]byte, 1<<20))
	if err != nil {
		return err
	}
	if n != o.Size {
		return fmt.Errorf("%s: %d bytes, want %d: %w", p, n, o.Size, errCorrupt)
	}
	if !bytes.Equal(h.Sum(nil), want) {
		return fmt.Errorf("%s: %w", p, errCorrupt)
	}
	return nil
}

// copySum returns the hash a copy of o is checked with and the sum it must
// give: SHA-256 when recorded, else MD5; nil when neither is.
func copySum(o *fs.Object) (hash.Hash, []byte) {
	switch {
	case len(o.SHA256) > 0:
		return sha256.New(), o.SHA256
	case len(o.MD5) > 0:
		return md5.New(), o.MD5
	}
	return nil, nil
}

// ctxReader stops a read-back when ctx is done (and hides the reader's
// WriteTo, so the caller's large buffer is used).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// record adds t to o's stores, unless o changed or went meanwhile: then
// the copy is of content no longer wanted and is removed. done reports
// that o has left the replication queue.
func (r *replicator) record(ctx context.Context, o *fs.Object, t *target) (done bool, err error) {
	n, err := r.s.idx.Update(context.WithoutCancel(ctx), o.ID, func(n *fs.Object) error {
		if n.Version != o.Version || n.State != o.State {
			return errSkip
		}
		if !slices.Contains(n.Stores, t.name) {
			n.Stores = append(n.Stores, t.name)
		}
		return nil
	})
	if err == nil {
		return !r.wants(n), nil
	}
	if errors.Is(err, errSkip) || fs.KindOf(err) == fs.NotExist {
		if derr := t.w.Delete(context.WithoutCancel(ctx), copyPath(o)); derr != nil {
			r.s.log.Warn("remove copy of changed object", "store", t.name, "id", o.ID, "err", derr)
		}
		return false, nil
	}
	return false, err
}

// prefetch reads o whole through the cache, which verifies it and marks
// it cached (dequeuing it); with keep_fetched that queues its copies.
func (r *replicator) prefetch(ctx context.Context, o *fs.Object) {
	s := r.s
	rd, err := s.OpenObject(ctx, o)
	if err == nil {
		_, err = io.Copy(io.Discard, rd)
		rd.Close()
	}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		next := r.failed(waitKey{queuePrefetch, o.ID, ""})
		s.log.Warn("prefetch failed", "id", o.ID, "retry_at", next.Format(time.RFC3339), "err", err)
		return
	}
	if n, err := s.idx.Get(ctx, o.ID); err == nil && n.State < fs.StateCached {
		// Checksums the source did not give are being computed in the
		// background; the entry leaves the queue when they are recorded.
		// Do not fetch it again meanwhile.
		r.failed(waitKey{queuePrefetch, o.ID, ""})
		return
	}
	r.succeeded(waitKey{queuePrefetch, o.ID, ""})
}

// QueueStats counts queued work.
type QueueStats struct {
	Replicate, Prefetch map[Priority]int
	Waiting             int // entries waiting for a retry (of a copy to any store)
}

// QueueStats counts the entries of the replication and prefetch queues.
func (s *Store) QueueStats(ctx context.Context) (QueueStats, error) {
	st := QueueStats{Replicate: map[Priority]int{}, Prefetch: map[Priority]int{}}
	for _, kind := range []byte{queueReplicate, queuePrefetch} {
		m := st.Replicate
		if kind == queuePrefetch {
			m = st.Prefetch
		}
		err := s.idx.Derived(ctx, index.DerivedOptions{Prefix: []byte{kind}}, func(k, _ []byte) error {
			if len(k) >= 2 {
				m[Priority(k[1])]++
			}
			return nil
		})
		if err != nil {
			return st, err
		}
	}
	err := s.idx.DB().View(func(txn *badger.Txn) error {
		// A copy's retry state is per store: count entries, not keys.
		// The keys of one entry are adjacent.
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{rawAttempts}, PrefetchValues: false})
		defer it.Close()
		var last []byte
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			entry := k[:min(len(k), 2+len(fs.ID{}))]
			if !bytes.Equal(entry, last) {
				st.Waiting++
				last = append(last[:0], entry...)
			}
		}
		return nil
	})
	return st, err
}

// RunReplication serves the replication and prefetch queues until ctx is
// done or the store closes: serve runs it in the background.
func (s *Store) RunReplication(ctx context.Context) {
	s.bg.Add(1)
	defer s.bg.Done()
	s.rep.run(ctx)
}

// dropCopies removes o's copies from the stores other than the primary's
// own file (dropContent removes that). Failures only cost space.
func (s *Store) dropCopies(ctx context.Context, o *fs.Object) {
	for _, name := range o.Stores {
		if name == PrimaryName && o.State == fs.StateStored {
			continue
		}
		w := s.storeWriter(name)
		if w == nil {
			continue
		}
		if err := w.Delete(ctx, copyPath(o)); err != nil && fs.KindOf(err) != fs.NotExist {
			s.log.Warn("drop store copy", "id", o.ID, "store", name, "err", err)
		}
	}
}

// sortedStores is o's stores in target order, unknown ones last.
func (r *replicator) sortedStores(names []string) []string {
	out := append([]string(nil), names...)
	pos := func(n string) int {
		for i, t := range r.order {
			if t.name == n {
				return i
			}
		}
		return len(r.order)
	}
	sort.SliceStable(out, func(i, j int) bool { return pos(out[i]) < pos(out[j]) })
	return out
}

// copiesToCheck returns what fsckCopies needs of o — a small stub, as
// Fsck holds one per object with copies — or nil when o has no copy
// beyond the primary file of a pushed object.
func copiesToCheck(o *fs.Object) *fs.Object {
	for _, name := range o.Stores {
		if name != PrimaryName || o.State != fs.StateStored {
			return &fs.Object{ID: o.ID, Version: o.Version, State: o.State, Size: o.Size, Stores: o.Stores}
		}
	}
	return nil
}

// fsckCopies checks that every store copy recorded in Object.Stores (the
// primary's own file of a pushed object aside: Fsck checks that) exists
// with the recorded size. Repair forgets a missing or wrong copy, which
// puts the object back in the replication queue.
func (s *Store) fsckCopies(ctx context.Context, objs []*fs.Object, opts CheckOptions, rep *CheckReport, report func(Damage)) error {
	for _, o := range objs {
		for _, name := range o.Stores {
			if name == PrimaryName && o.State == fs.StateStored {
				continue
			}
			if err := ctx.Err(); err != nil {
				return fs.Wrap("fsck", "", err)
			}
			problem := ""
			w := s.storeWriter(name)
			if w == nil {
				problem = fmt.Sprintf("copy recorded in store %q, which is not configured", name)
			} else {
				e, err := w.Stat(ctx, copyPath(o))
				switch {
				case fs.KindOf(err) == fs.NotExist:
					problem = fmt.Sprintf("copy recorded in store %q is missing", name)
				case err != nil:
					// Unreachable: say so, but nothing is known to be lost.
					problem = fmt.Sprintf("copy in store %q could not be checked: %v", name, err)
				case e.Size != o.Size:
					problem = fmt.Sprintf("copy in store %q has %d bytes, recorded %d", name, e.Size, o.Size)
				}
				if err != nil && fs.KindOf(err) != fs.NotExist {
					rep.add(Damage{Where: "stores", ID: o.ID, Path: name + ":" + copyPath(o), Problem: problem}, report)
					continue
				}
			}
			if problem == "" {
				continue
			}
			d := Damage{Where: "stores", ID: o.ID, Path: name + ":" + copyPath(o), Problem: problem}
			if opts.Repair {
				d.Repaired = s.forgetCopy(ctx, o, name) == nil
			}
			rep.add(d, report)
		}
	}
	return nil
}

// forgetCopy removes name from o's stores (queueing o for another copy).
func (s *Store) forgetCopy(ctx context.Context, o *fs.Object, name string) error {
	_, err := s.idx.Update(ctx, o.ID, func(n *fs.Object) error {
		if n.Version != o.Version {
			return errSkip
		}
		n.Stores = slices.DeleteFunc(n.Stores, func(x string) bool { return x == name })
		if len(n.Stores) == 0 {
			n.Stores = nil
		}
		return nil
	})
	if errors.Is(err, errSkip) || fs.KindOf(err) == fs.NotExist {
		return nil
	}
	return err
}

// repairPrimary copies a pushed object's lost or damaged primary file
// back from another store's verified copy. d says what is wrong; it is
// marked repaired, or told that there is nothing to repair from.
func (s *Store) repairPrimary(ctx context.Context, opts CheckOptions, d *Damage) {
	o, err := s.idx.Get(ctx, d.ID)
	if err != nil {
		return
	}
	if !s.hasOtherCopy(o) {
		d.Problem += "; no other copy to repair from"
		return
	}
	if !opts.Repair {
		d.Problem += "; repairable from another store"
		return
	}
	var src io.ReadCloser
	for _, name := range s.rep.sortedStores(o.Stores) {
		w := s.storeWriter(name)
		if name == PrimaryName || w == nil {
			continue
		}
		if src, err = w.Open(ctx, copyPath(o), 0, -1); err == nil {
			break
		}
	}
	if src == nil {
		d.Problem += fmt.Sprintf("; no other copy could be read: %v", err)
		return
	}
	err = s.primary.Put(ctx, primaryPath(o.ID), io.LimitReader(src, o.Size), o.Size)
	src.Close()
	if err == nil {
		err = verifyCopy(ctx, s.primary, primaryPath(o.ID), o)
	}
	if err != nil {
		d.Problem += fmt.Sprintf("; repair from another store failed: %v", err)
		return
	}
	s.stampPrimary(o) // verified just now
	s.dropQuarantined(o)
	d.Repaired = true
}

// isFetchedCopy reports whether p, a file of the primary store, is the
// copy of a fetched object's current version (keep_fetched), recorded or
// about to be (a crash between the copy and its record leaves one, which
// the queue will write again).
func (s *Store) isFetchedCopy(ctx context.Context, p string) bool {
	base := path.Base(p)
	idPart, _, ok := strings.Cut(base, "-")
	if !ok {
		return false
	}
	id, err := fs.ParseID(idPart)
	if err != nil {
		return false
	}
	o, err := s.idx.Get(ctx, id)
	return err == nil && o.State != fs.StateStored && copyPath(o) == p
}
