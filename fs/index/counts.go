package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/datagate/datagate/fs"
)

// Counts of the catalogue, kept incrementally so that asking costs no scan.
//
// Every commit that adds, removes or changes an object applies the
// difference its changes make (the Change list it publishes): one object
// and its size more or less, and the differences of the named tallies the
// owner computes from each object (Options.Tally: copies per store, queue
// depths). The counts live in memory; Close writes them to a checkpoint key
// and Open takes it back and deletes it, so only a clean shutdown leaves
// one. After an unclean shutdown (no checkpoint) Open marks the counts
// inexact and RebuildCounts recomputes them from a scan of the records,
// while commits go on.
//
// A rebuild must count every object exactly once although commits keep
// landing: it opens its snapshot while no commit is between its Badger
// commit and the application of its differences (gate), and zeroes the
// counts at that instant. A commit applied before is in the snapshot; one
// applied after is not, and its differences land on the zeroed counts. The
// scan's totals are then added on top.

// pCounts is the key of the counts' checkpoint.
const pCounts = 0x0e

// Tally adds an object's contributions to named counts: add(name, n) for
// each. It must be a pure function of the object under rules fixed for the
// life of the Index (the index calls it on the old version with the sign
// reversed); Options.TallySig names those rules, so that a checkpoint made
// under other rules is not trusted.
type Tally func(o *fs.Object, add func(name string, n int64))

// Counts is a point-in-time summary of the catalogue.
type Counts struct {
	Objects int64 // objects in the catalogue
	Bytes   int64 // sum of their sizes (unknown sizes count 0)
	// Tallies are the named counts of Options.Tally; absent names are 0.
	Tallies map[string]int64
	// Exact is false while the counts are rebuilt after an unclean
	// shutdown: they then grow towards the true values.
	Exact bool
}

// counter holds the counts. Lock order: gate before mu.
type counter struct {
	// gate is held shared by a commit from its Badger commit until its
	// differences are applied, and exclusively by a rebuild while it opens
	// its snapshot and zeroes the counts.
	gate    sync.RWMutex
	objects atomic.Int64
	bytes   atomic.Int64
	exact   atomic.Bool
	tally   Tally  // immutable after Open
	sig     string // immutable after Open
	rebuild sync.Mutex

	mu      sync.Mutex
	tallies map[string]int64 // guarded by mu
}

// checkpoint is the persisted form of the counts.
type checkpoint struct {
	V       int              `json:"v"`
	Sig     string           `json:"sig"`
	Objects int64            `json:"objects"`
	Bytes   int64            `json:"bytes"`
	Tallies map[string]int64 `json:"tallies,omitempty"`
}

func sizeOf(o *fs.Object) int64 {
	if o == nil || o.Size < 0 {
		return 0
	}
	return o.Size
}

// tallyBuf collects an object's tally contributions with a sign.
type tallyBuf struct {
	kv   []tallyKV
	sign int64
	buf  [8]tallyKV // kv's first backing array: no growth for a small change
}

type tallyKV struct {
	name string
	n    int64
}

func (t *tallyBuf) add(name string, n int64) { t.kv = append(t.kv, tallyKV{name, t.sign * n}) }

// apply adds the differences changes make. Caller holds gate shared.
func (c *counter) apply(changes []Change) {
	var dn, db int64
	tb := &tallyBuf{}
	tb.kv = tb.buf[:0]
	add := tb.add
	for _, ch := range changes {
		var old, new *fs.Object
		switch ch.Op {
		case OpPut:
			old, new = ch.Old, ch.New
		case OpDelete:
			old = ch.Old
		default:
			continue
		}
		if old != nil {
			dn--
			db -= sizeOf(old)
			if c.tally != nil {
				tb.sign = -1
				c.tally(old, add)
			}
		}
		if new != nil {
			dn++
			db += sizeOf(new)
			if c.tally != nil {
				tb.sign = 1
				c.tally(new, add)
			}
		}
	}
	c.addKV(dn, db, tb.kv)
}

// addKV adds to the counts; kv may name a tally several times.
func (c *counter) addKV(dn, db int64, kv []tallyKV) {
	if dn != 0 {
		c.objects.Add(dn)
	}
	if db != 0 {
		c.bytes.Add(db)
	}
	if len(kv) == 0 {
		return
	}
	c.mu.Lock()
	for _, e := range kv {
		if e.n == 0 {
			continue
		}
		if c.tallies[e.name] += e.n; c.tallies[e.name] == 0 {
			delete(c.tallies, e.name)
		}
	}
	c.mu.Unlock()
}

// Counts returns the catalogue's counts. It reads memory only.
func (ix *Index) Counts() Counts {
	c := &ix.cnt
	out := Counts{Objects: c.objects.Load(), Bytes: c.bytes.Load(), Exact: c.exact.Load()}
	c.mu.Lock()
	out.Tallies = make(map[string]int64, len(c.tallies))
	for k, v := range c.tallies {
		out.Tallies[k] = v
	}
	c.mu.Unlock()
	if !out.Exact {
		// Mid-rebuild, deletions of objects the scan has not reached
		// yet may lead.
		out.Objects, out.Bytes = max(out.Objects, 0), max(out.Bytes, 0)
		for k, v := range out.Tallies {
			out.Tallies[k] = max(v, 0)
		}
	}
	return out
}

// Size returns the bytes of Badger's LSM tree and value log (Badger
// refreshes them about once a minute).
func (ix *Index) Size() (lsm, vlog int64) { return ix.db.Size() }

// loadCounts takes the checkpoint a clean Close left, if any, and deletes
// it durably, so that a crash in this run cannot find it. Without one the
// counts are exact only for an empty catalogue.
func (ix *Index) loadCounts(tally Tally, sig string) error {
	c := &ix.cnt
	c.tally, c.sig = tally, sig
	c.tallies = make(map[string]int64)
	var cp *checkpoint
	empty := true
	err := ix.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pObject}})
		it.Rewind()
		empty = !it.Valid()
		it.Close()
		item, err := txn.Get([]byte{pCounts})
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			var p checkpoint
			if err := json.Unmarshal(v, &p); err != nil || p.V != 1 {
				ix.log.Warn("index: unreadable counts checkpoint, counting again", "err", err)
				return nil
			}
			cp = &p
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("index: read counts: %w", err)
	}
	switch {
	case empty:
		c.exact.Store(true)
	case cp != nil && cp.Sig == sig:
		c.objects.Store(cp.Objects)
		c.bytes.Store(cp.Bytes)
		for k, v := range cp.Tallies {
			c.tallies[k] = v
		}
		c.exact.Store(true)
	case cp != nil:
		ix.log.Info("index: counts were kept under other rules, counting again")
	}
	if cp == nil {
		return nil
	}
	if err := ix.db.Update(func(txn *badger.Txn) error { return txn.Delete([]byte{pCounts}) }); err != nil {
		return fmt.Errorf("index: take counts checkpoint: %w", err)
	}
	if err := ix.syncDisk(); err != nil {
		return fmt.Errorf("index: take counts checkpoint: %w", err)
	}
	return nil
}

// saveCounts writes the checkpoint, at Close, when the counts are exact.
// Caller holds the gate exclusively until Badger is closed, so that no
// commit lands after the checkpoint unaccounted (a late one fails on the
// closed database instead).
func (ix *Index) saveCounts() error {
	c := &ix.cnt
	if !c.exact.Load() {
		return nil // a rebuild was cut short: the next Open counts again
	}
	cp := checkpoint{V: 1, Sig: c.sig, Objects: c.objects.Load(), Bytes: c.bytes.Load()}
	c.mu.Lock()
	if len(c.tallies) > 0 {
		cp.Tallies = make(map[string]int64, len(c.tallies))
		for k, v := range c.tallies {
			cp.Tallies[k] = v
		}
	}
	c.mu.Unlock()
	b, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	return ix.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte{pCounts}, b) })
}

// RebuildCounts recomputes inexact counts from a scan of every record, at
// whatever pace the caller's goroutine gets (the store runs it at low
// priority). Commits go on meanwhile and are counted exactly once. The
// counts become exact when it returns nil; on error or cancellation they
// stay inexact (and Close leaves no checkpoint, so the next Open counts
// again). A call while the counts are exact returns at once.
func (ix *Index) RebuildCounts(ctx context.Context) error {
	c := &ix.cnt
	c.rebuild.Lock()
	defer c.rebuild.Unlock()
	if c.exact.Load() {
		return nil
	}
	start := time.Now()
	c.gate.Lock()
	txn := ix.db.NewTransaction(false)
	c.objects.Store(0)
	c.bytes.Store(0)
	c.mu.Lock()
	c.tallies = make(map[string]int64)
	c.mu.Unlock()
	c.gate.Unlock()
	defer txn.Discard()

	var dn, db int64
	tb := &tallyBuf{sign: 1}
	add := tb.add
	flush := func() {
		c.addKV(dn, db, tb.kv)
		dn, db = 0, 0
		tb.kv = tb.kv[:0]
	}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pObject}, PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var o *fs.Object
		err := it.Item().Value(func(v []byte) error {
			var derr error
			o, derr = decodeObject(v)
			return derr
		})
		if err != nil {
			continue // not an object (Check reports it)
		}
		dn++
		db += sizeOf(o)
		if c.tally != nil {
			c.tally(o, add)
		}
		if dn == 1024 {
			flush()
			if err := ctx.Err(); err != nil {
				return fs.E(fs.Other, "count objects", "", err)
			}
		}
	}
	flush()
	c.exact.Store(true)
	n := c.objects.Load()
	ix.log.Info("index: counted the catalogue after an unclean shutdown", "objects", n, "bytes", c.bytes.Load(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}
