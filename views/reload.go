package views

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
	"github.com/datagate/datagate/fs/store"
)

// Changing the configured views while the server runs (a configuration
// reload) swaps the set's snapshot at once, so every write from then on
// derives path entries with the new definitions. Entries written under
// the old ones are then wrong: a changed template's old paths, a removed
// view's entries, a new view's objects indexed before it existed. They
// are put right in the background, one view at a time, with index
// transactions only (never the index's full Check, which must not race
// with writers):
//
//  1. stale entries: every key under the view's prefix is kept only if
//     its object, read afresh, still derives it; the others are deleted.
//  2. missing entries: every object now in the view (found through the
//     filter's equalities when it has some, else by a walk of the
//     catalogue) is re-derived by a no-op update, which writes its keys
//     in a transaction of its own.
//
// Step 1 reads objects outside its delete transaction, so it may drop the
// new entry of an object changed at that very moment; step 2, which
// starts after it, writes every current entry again. A write that derived
// its keys just before the swap cannot commit after it: the swap is
// followed by a fence (index.FenceDerivations) that sends such a write
// back to derive again, so step 1 finds every old entry. Until the rebuild ends, listings of the
// changed views can show old paths or miss new ones; reads of a path
// that is gone fail as for any missing file.
//
// The definitions the path index was built with (syncDefs) are saved
// only once every queued view is rebuilt: a server stopped before then
// rebuilds the whole path index at its next start, as after an edit made
// while it was down.

// rawDerived is fs/index's prefix byte of derived keys (see its package
// doc): stale entries are deleted through DB(), as fs/store does for its
// queue keys.
const rawDerived = 0x05

// rebuildGrace is how long the background rebuild waits after a swap,
// leaving the CPU to the writes the fence sent back (and covering them
// should the fence itself have failed).
var rebuildGrace = time.Second

// rebuildBatch bounds the keys or objects handled per transaction.
const rebuildBatch = 256

// rebuilder runs the background re-derivation of views; the zero value is
// ready. Lock order: Set.mu before rebuilder.mu.
type rebuilder struct {
	mu sync.Mutex
	// guarded by mu
	pending map[string]bool // queued for the next round
	current []string        // being rebuilt in this round
	running bool
	failed  bool          // a round failed: never save the definitions
	idle    chan struct{} // closed when no rebuild runs
	ctx     context.Context
	cancel  context.CancelFunc
	closed  bool

	wg sync.WaitGroup
}

// Reconfigure replaces the configured views (a configuration reload):
// views added, removed or whose definition changed take effect for every
// request from the return on; views created at run time are kept (a
// configured view hides one of the same name, as at start). It returns
// the names of the views whose path entries change, sorted, and
// re-derives those entries in the background (see above; WaitRebuilt
// waits for it). A definition that does not parse is an Invalid error
// naming the view, and nothing changes.
func (s *Set) Reconfigure(ctx context.Context, defs map[string]Def) ([]string, error) {
	views, err := parseDefs(defs)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cur.Load()
	if s.st != nil {
		// Runtime views come from the index, so that one a removed
		// configured view hid comes back.
		if err := s.st.Index().DB().View(func(txn *badger.Txn) error { return s.loadRuntime(txn, views) }); err != nil {
			return nil, fs.E(fs.Other, "reload views", "", err)
		}
	} else {
		for n, v := range old.views {
			if _, ok := views[n]; !ok && v.runtime {
				views[n] = v
			}
		}
	}
	var changed []string
	for n, v := range views {
		if o, ok := old.views[n]; !ok || !sameView(o, v) {
			changed = append(changed, n)
		}
	}
	for n := range old.views {
		if _, ok := views[n]; !ok {
			changed = append(changed, n)
		}
	}
	slices.Sort(changed)
	if len(changed) == 0 {
		return nil, nil
	}
	// Swapped under rb.mu: a rebuild round that finds nothing pending
	// knows the current definitions are all rebuilt.
	s.rb.mu.Lock()
	defer s.rb.mu.Unlock()
	s.cur.Store(newSnapshot(views))
	s.fence()
	if s.st != nil {
		s.queueRebuildLocked(s.st, changed)
	}
	return changed, nil
}

// sameView reports whether two views derive the same entries.
func sameView(a, b *View) bool {
	if a.runtime != b.runtime || a.owner != b.owner {
		return false
	}
	ja, _ := json.Marshal(a.def)
	jb, _ := json.Marshal(b.def)
	return string(ja) == string(jb)
}

// Rebuilding returns the views whose path entries are being re-derived
// after a Reconfigure, sorted; nil when none.
func (s *Set) Rebuilding() []string {
	s.rb.mu.Lock()
	defer s.rb.mu.Unlock()
	var out []string
	for n := range s.rb.pending {
		out = append(out, n)
	}
	for _, n := range s.rb.current {
		if !s.rb.pending[n] {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// WaitRebuilt waits until no re-derivation queued by Reconfigure runs.
func (s *Set) WaitRebuilt(ctx context.Context) error {
	s.rb.mu.Lock()
	idle, running := s.rb.idle, s.rb.running
	s.rb.mu.Unlock()
	if !running {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops a background re-derivation and waits for it. Call it before
// closing the store. The set stays usable, without rebuilds.
func (s *Set) Close() error {
	s.rb.mu.Lock()
	s.rb.closed = true
	if s.rb.cancel != nil {
		s.rb.cancel()
	}
	s.rb.mu.Unlock()
	s.rb.wg.Wait()
	return nil
}

// queueRebuildLocked queues names for rebuilding; rb.mu is held.
func (s *Set) queueRebuildLocked(st *store.Store, names []string) {
	rb := &s.rb
	if rb.closed {
		return
	}
	if rb.pending == nil {
		rb.pending = map[string]bool{}
	}
	for _, n := range names {
		rb.pending[n] = true
	}
	if rb.running {
		return
	}
	if rb.ctx == nil {
		rb.ctx, rb.cancel = context.WithCancel(context.Background())
	}
	rb.running, rb.idle = true, make(chan struct{})
	rb.wg.Add(1)
	go s.rebuildLoop(rb.ctx, st)
}

// rebuildLoop rebuilds the pending views, round after round, until none
// is left (a view queued again during a round, its definition swapped
// once more, gets another round); then it saves the definitions, unless
// a round failed.
func (s *Set) rebuildLoop(ctx context.Context, st *store.Store) {
	rb := &s.rb
	defer rb.wg.Done()
	for {
		rb.mu.Lock()
		names := make([]string, 0, len(rb.pending))
		for n := range rb.pending {
			names = append(names, n)
		}
		clear(rb.pending)
		rb.current = names
		if len(names) == 0 || ctx.Err() != nil {
			rb.running, rb.current = false, nil
			if len(names) == 0 && !rb.failed && ctx.Err() == nil {
				if err := storeDefs(st, configuredDefs(s.cur.Load())); err != nil {
					s.log.Warn("save view definitions", "err", err)
				}
			}
			close(rb.idle)
			rb.mu.Unlock()
			return
		}
		rb.mu.Unlock()
		slices.Sort(names)
		if err := s.rebuild(ctx, st, names); err != nil {
			rb.mu.Lock()
			rb.failed = true
			rb.mu.Unlock()
			if ctx.Err() == nil {
				s.log.Error("re-deriving view paths failed; the path index is rebuilt at the next start", "views", names, "err", err)
			}
		}
	}
}

// rebuild re-derives the entries of names, after the grace period.
func (s *Set) rebuild(ctx context.Context, st *store.Store, names []string) error {
	select {
	case <-time.After(rebuildGrace):
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, name := range names {
		start := time.Now()
		s.log.Info("re-deriving view paths after a configuration change", "view", name)
		dropped, err := s.dropStale(ctx, st, name)
		if err != nil {
			return fs.Wrap("rebuild view", name, err)
		}
		added, err := s.rederive(ctx, st, name)
		if err != nil {
			return fs.Wrap("rebuild view", name, err)
		}
		s.log.Info("view paths re-derived", "view", name, "stale_removed", dropped, "objects", added, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// dropStale deletes the keys under the view's prefix that their object no
// longer derives.
func (s *Set) dropStale(ctx context.Context, st *store.Store, name string) (int, error) {
	base := viewBase(name)
	var start []byte
	dropped := 0
	for {
		var keys [][]byte
		err := st.Index().Derived(ctx, index.DerivedOptions{Prefix: base, Start: start}, func(k, _ []byte) error {
			keys = append(keys, append([]byte(nil), k...))
			if len(keys) == rebuildBatch {
				return index.ErrStop
			}
			return nil
		})
		if err != nil || len(keys) == 0 {
			return dropped, err
		}
		derived := map[fs.ID]map[string]bool{}
		var stale [][]byte
		for _, k := range keys {
			_, id, _, ok := keyPath(base, k)
			if !ok {
				stale = append(stale, k)
				continue
			}
			want, seen := derived[id]
			if !seen {
				want = map[string]bool{}
				o, err := st.Get(ctx, id)
				switch {
				case err == nil:
					for _, d := range s.Derive(o) {
						want[string(d.Key)] = true
					}
				case fs.KindOf(err) != fs.NotExist:
					return dropped, err
				}
				derived[id] = want
			}
			if !want[string(k)] {
				stale = append(stale, k)
			}
		}
		if len(stale) > 0 {
			err := st.Index().DB().Update(func(txn *badger.Txn) error {
				for _, k := range stale {
					if err := txn.Delete(append([]byte{rawDerived}, k...)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return dropped, fs.E(fs.Other, "drop stale view paths", name, err)
			}
			// Moves the readers' snapshot on, too.
			if err := st.Index().Sync(); err != nil {
				return dropped, err
			}
			dropped += len(stale)
		}
		if len(keys) < rebuildBatch {
			return dropped, nil
		}
		start = append(keys[len(keys)-1], 0) // just after the last key
	}
}

// rederive re-writes the entries of every object in the view (and its
// directory markers) with no-op updates, rebuildBatch per transaction.
func (s *Set) rederive(ctx context.Context, st *store.Store, name string) (int, error) {
	v, ok := s.View(name)
	if !ok {
		return 0, nil // removed: nothing to add
	}
	n := 0
	flush := func(ids []fs.ID) error {
		if len(ids) == 0 {
			return nil
		}
		noop := func(*fs.Object) error { return nil }
		_, _, err := st.Index().UpdateMany(ctx, ids, noop, nil)
		if fs.KindOf(err) == fs.NotExist {
			// One was deleted meanwhile: one at a time.
			err = nil
			for _, id := range ids {
				if _, e := st.Index().Update(ctx, id, noop); e != nil && fs.KindOf(e) != fs.NotExist {
					err = e
					break
				}
			}
		}
		n += len(ids)
		return err
	}
	// find pages through the objects conds select (nil: every object).
	find := func(conds []index.Cond, keep func(*fs.Object) bool) error {
		var after fs.ID
		for {
			var ids []fs.ID
			full := false
			fn := func(o *fs.Object) error {
				after = o.ID
				if keep(o) {
					ids = append(ids, o.ID)
				}
				if len(ids) == rebuildBatch {
					full = true
					return index.ErrStop
				}
				return nil
			}
			var err error
			if conds != nil {
				err = st.Find(ctx, conds, index.FindOptions{After: after}, fn)
			} else {
				err = st.Index().Walk(ctx, after, fn)
			}
			if errors.Is(err, index.ErrStop) {
				err = nil
			}
			if err != nil {
				return err
			}
			if err := flush(ids); err != nil {
				return err
			}
			if !full {
				return nil
			}
		}
	}
	in := func(o *fs.Object) bool {
		if _, dir := o.Meta[MetaDirPath]; dir {
			return false
		}
		_, ok := v.PathOf(o)
		return ok
	}
	if err := find(v.filter.Equalities(), in); err != nil {
		return n, err
	}
	marker := func(o *fs.Object) bool { _, ok := o.Meta[MetaDirPath]; return ok }
	err := find([]index.Cond{{Key: MetaDirView, Value: name}}, marker)
	return n, err
}
