package index

import (
	"bytes"
	"errors"
	"runtime"
	"slices"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/datagate/datagate/fs"
)

// Register's batch preparation.
//
// Most records of a batch are new: each costs a lookup of its source
// location (a miss, in every memtable and level) and the building of its
// keys and record. That work reads the transaction and writes nothing, so
// it is done for the whole batch before the first write, in source-key
// order (a lookup walks the skiplist nodes and table blocks its neighbour
// just brought into cache) and, for a large batch, split among goroutines
// (a Badger transaction serves concurrent Gets while nothing writes to
// it). The writes then hand Badger entries built in a few large buffers
// instead of two allocations per key.
//
// A record whose source an earlier record of the same batch also names
// must see that record's write, so it is looked up after it, during the
// writes (deferred): a batch reads and writes exactly as if its records
// were registered one after the other.
//
// A batch is prepared and written in rounds of regRound records, so that
// one too large for a transaction fails after at most one round prepared
// in vain, holding no more than a round's entries beside Badger's.

// regMinChunk is the fewest records worth a goroutine of their own.
const regMinChunk = 256

// regRound is the most records prepared before their writes (a variable
// for tests).
var regRound = 4096

// regPlan is what a batch's preparation needs from its records alone, the
// same for every attempt of the transaction.
type regPlan struct {
	srcKeys  [][]byte // source key of each record; nil without a source
	deferred []bool   // an earlier record of the batch has the same source
	// rounds[r] holds records r*regRound up to the next round's, by
	// source key (ties in batch order): the order of their lookups.
	rounds [][]int
}

func planRegister(objs []*fs.Object) *regPlan {
	p := &regPlan{srcKeys: make([][]byte, len(objs)), deferred: make([]bool, len(objs))}
	order := make([]int, len(objs))
	for i, o := range objs {
		if !o.Source.IsZero() {
			p.srcKeys[i] = sourceKey(o.Source)
		}
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := bytes.Compare(p.srcKeys[a], p.srcKeys[b]); c != 0 {
			return c
		}
		return a - b
	})
	for j := 1; j < len(order); j++ {
		a, b := order[j-1], order[j]
		if p.srcKeys[b] != nil && bytes.Equal(p.srcKeys[a], p.srcKeys[b]) {
			p.deferred[b] = true
		}
	}
	if len(objs) <= regRound {
		p.rounds = [][]int{order}
		return p
	}
	p.rounds = make([][]int, (len(objs)+regRound-1)/regRound)
	for r := range p.rounds {
		p.rounds[r] = make([]int, 0, min(regRound, len(objs)-r*regRound))
	}
	for _, i := range order {
		p.rounds[i/regRound] = append(p.rounds[i/regRound], i)
	}
	return p
}

// regPrep is one record's preparation: the object its source names, or
// the entries that add it.
type regPrep struct {
	old    *fs.Object // registered at the record's source
	w      *regWorker // holder of the entries, for a new record
	lo, hi int        // its entries: w.ents[lo:hi]
}

// regWorker builds the entries of the new records of one chunk.
type regWorker struct {
	buf  []byte // keys and records; slices of it are handed to Badger
	ents []badger.Entry
	err  error
}

// hold returns the buffer's last n bytes as a slice that later appends
// never write into (a grown buffer leaves the old array to the slices
// already taken).
func (w *regWorker) hold(n int) []byte {
	return w.buf[len(w.buf)-n : len(w.buf) : len(w.buf)]
}

func (w *regWorker) set(k, v []byte) {
	w.ents = append(w.ents, badger.Entry{Key: k, Value: v})
}

// add builds the entries putKeys writes for a new object.
func (w *regWorker) add(ix *Index, o *fs.Object, srcKey []byte) {
	n := len(w.buf)
	w.buf = append(w.buf, pObject)
	w.buf = append(w.buf, o.ID[:]...)
	k := w.hold(len(w.buf) - n)
	n = len(w.buf)
	w.buf = encodeObject(w.buf, o)
	w.set(k, w.hold(len(w.buf)-n))
	for mk, mv := range o.Meta {
		n = len(w.buf)
		w.buf = append(w.buf, pMeta)
		w.buf = append(w.buf, mk...)
		w.buf = append(w.buf, 0)
		w.buf = append(w.buf, mv...)
		w.buf = append(w.buf, 0)
		w.buf = append(w.buf, o.ID[:]...)
		w.set(w.hold(len(w.buf)-n), nil)
	}
	if srcKey != nil {
		w.set(srcKey, o.ID[:])
	}
	if !o.Expires.IsZero() {
		w.set(expiryKey(o.Expires, o.ID), nil)
	}
	for _, d := range ix.derive(o) {
		n = len(w.buf)
		w.buf = append(w.buf, pDerived)
		w.buf = append(w.buf, d.Key...)
		w.set(w.hold(len(w.buf)-n), d.Value)
	}
}

// sizeHint is about the bytes add appends for o, so that a chunk's buffer
// is allocated once.
func sizeHint(o *fs.Object) int {
	n := 64 + 2*len(o.Name) + len(o.ContentType) + len(o.ETag) + len(o.MD5) + len(o.SHA256) +
		len(o.Source.Provider) + len(o.Source.Path)
	for k, v := range o.Meta {
		n += 2*(len(k)+len(v)) + 24
	}
	return n
}

// prepare looks up the sources of the records order names, in that order,
// and builds the entries of those that are new.
func (w *regWorker) prepare(ix *Index, txn *badger.Txn, objs []*fs.Object, plan *regPlan, order []int, preps []regPrep) {
	size, ents := 0, 0
	for _, i := range order {
		size += sizeHint(objs[i])
		ents += 3 + len(objs[i].Meta)
	}
	w.buf = make([]byte, 0, size)
	w.ents = make([]badger.Entry, 0, ents)
	for _, i := range order {
		if plan.deferred[i] {
			continue
		}
		o, p := objs[i], &preps[i]
		if k := plan.srcKeys[i]; k != nil {
			id, found, err := lookupSource(txn, k)
			if err != nil {
				w.err = err
				return
			}
			if found {
				if p.old, err = getObject(txn, id); err != nil {
					w.err = err
					return
				}
				continue
			}
		}
		p.w, p.lo = w, len(w.ents)
		w.add(ix, o, plan.srcKeys[i])
		p.hi = len(w.ents)
	}
}

// lookupSource reads the id registered at the source key k.
func lookupSource(txn *badger.Txn, k []byte) (id fs.ID, found bool, err error) {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return id, false, nil
	}
	if err != nil {
		return id, false, err
	}
	err = item.Value(func(v []byte) error { copy(id[:], v); return nil })
	return id, err == nil, err
}

// prepareRegister prepares the records of a round, given in lookup
// order (into preps), on as many goroutines as the round has chunks of
// regMinChunk records, up to GOMAXPROCS.
func (ix *Index) prepareRegister(txn *badger.Txn, objs []*fs.Object, plan *regPlan, round []int, preps []regPrep) error {
	n := max(1, min(runtime.GOMAXPROCS(0), len(round)/regMinChunk))
	ws := make([]regWorker, n)
	var wg sync.WaitGroup
	for c := range ws {
		order := round[c*len(round)/n : (c+1)*len(round)/n]
		if c == n-1 {
			ws[c].prepare(ix, txn, objs, plan, order, preps)
			break
		}
		wg.Go(func() { ws[c].prepare(ix, txn, objs, plan, order, preps) })
	}
	wg.Wait()
	for c := range ws {
		if ws[c].err != nil {
			return ws[c].err
		}
	}
	return nil
}

// registerIn writes the prepared batch to txn, in batch order, and
// reports what became of each record.
func (ix *Index) registerIn(txn *badger.Txn, objs []*fs.Object, plan *regPlan, out []Outcome) ([]Change, error) {
	preps := make([]regPrep, len(objs))
	changes := make([]Change, 0, len(objs))
	for r, round := range plan.rounds {
		if err := ix.prepareRegister(txn, objs, plan, round, preps); err != nil {
			return nil, err
		}
		var err error
		lo := r * regRound
		if changes, err = ix.registerRound(txn, objs[lo:lo+len(round)], plan, preps[lo:lo+len(round)], lo, out, changes); err != nil {
			return nil, err
		}
	}
	return changes, nil
}

// registerRound writes a prepared round to txn, objs being the batch's
// records from lo.
func (ix *Index) registerRound(txn *badger.Txn, objs []*fs.Object, plan *regPlan, preps []regPrep, lo int, out []Outcome, changes []Change) ([]Change, error) {
	for k, o := range objs {
		i, p := lo+k, &preps[k]
		out[i] = Added
		if plan.deferred[i] {
			id, found, err := lookupSource(txn, plan.srcKeys[i])
			if err != nil {
				return nil, err
			}
			if !found { // as without the earlier record (cannot happen)
				if err := ix.putKeys(txn, o); err != nil {
					return nil, err
				}
				changes = append(changes, Change{Op: OpPut, New: o})
				continue
			}
			if p.old, err = getObject(txn, id); err != nil {
				return nil, err
			}
		}
		if old := p.old; old != nil {
			outcome, ch, err := ix.reregister(txn, old, o)
			if err != nil {
				return nil, err
			}
			out[i] = outcome
			if ch != nil {
				changes = append(changes, *ch)
			}
			continue
		}
		for j := p.lo; j < p.hi; j++ {
			if err := txn.SetEntry(&p.w.ents[j]); err != nil {
				return nil, err
			}
		}
		changes = append(changes, Change{Op: OpPut, New: o})
	}
	return changes, nil
}
