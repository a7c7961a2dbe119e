package index

import (
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// Readers share one read-only transaction instead of opening their own.
//
// Opening a Badger transaction waits until every commit already given a
// timestamp is applied (oracle.readTs → txnMark.WaitForMark), so a stat
// would wait behind whatever the collector or a big registration is
// writing: a batch's skiplist inserts plus two goroutine hand-offs, which a
// loaded machine stretches to tens of milliseconds. The shared snapshot is
// opened by the writers instead, after each of their commits (refresh), so
// the waiting is theirs. A reader sees everything whose write call has
// returned (the writer refreshed before returning) and never waits;
// commits still in progress are not visible yet, as with any concurrent
// write. A snapshot stays open while a reader uses it (Find and Walk may
// take long) and is discarded by the last one once replaced.
//
// Writes through DB() do not move the snapshot on (Sync does): the keys
// read from it (records, postings, sources, expiry order) are written by
// the index's own transactions only. Derived keys are also written
// through DB() by other packages, so Derived reads in a transaction of its
// own unless asked for the snapshot (DerivedOptions.Snapshot).
type snapshots struct {
	mu     sync.Mutex
	cur    *snapshot // nil once closed
	closed bool
}

type snapshot struct {
	txn  *badger.Txn
	refs int // readers using it, guarded by snapshots.mu
}

// view runs fn in the current snapshot, or in a transaction of its own
// when there is none (before the first refresh, after Close).
func (ix *Index) view(fn func(txn *badger.Txn) error) error {
	ss := &ix.snaps
	ss.mu.Lock()
	s := ss.cur
	if s != nil {
		s.refs++
	}
	ss.mu.Unlock()
	if s == nil {
		return ix.db.View(fn)
	}
	defer ix.release(s)
	return fn(s.txn)
}

func (ix *Index) release(s *snapshot) {
	ss := &ix.snaps
	ss.mu.Lock()
	s.refs--
	done := s.refs == 0 && s != ss.cur && !ss.closed
	ss.mu.Unlock()
	if done {
		s.txn.Discard()
	}
}

// refresh makes every commit applied so far visible to readers. Called by
// writers after their commit, it waits for the commits in flight (those
// of other writers): Badger's wait, taken off the readers.
func (ix *Index) refresh() {
	ss := &ix.snaps
	ss.mu.Lock()
	closed := ss.closed
	ss.mu.Unlock()
	if closed {
		return
	}
	txn := ix.db.NewTransaction(false)
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		txn.Discard()
		return
	}
	old := ss.cur
	if old != nil && old.txn.ReadTs() >= txn.ReadTs() {
		// A concurrent refresh got as far or further.
		ss.mu.Unlock()
		txn.Discard()
		return
	}
	ss.cur = &snapshot{txn: txn}
	drop := old != nil && old.refs == 0
	ss.mu.Unlock()
	if drop {
		old.txn.Discard()
	}
}

// closeSnapshots discards the current snapshot; readers still inside one
// finish with it, and later ones open their own (and fail: the database
// is closing).
func (ix *Index) closeSnapshots() {
	ss := &ix.snaps
	ss.mu.Lock()
	ss.closed = true
	old := ss.cur
	ss.cur = nil
	drop := old != nil && old.refs == 0
	ss.mu.Unlock()
	if drop {
		old.txn.Discard()
	}
}
