package index

import (
	"bytes"
	"context"
	"encoding/binary"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/datagate/datagate/fs"
)

// Cond is one metadata equality.
type Cond struct{ Key, Value string }

// FindOptions page a Find.
type FindOptions struct {
	After fs.ID // start after this id (zero: from the start)
	Limit int   // stop after this many results (0: no limit)
}

// Find calls fn, in id order, for every object whose metadata satisfies all
// conds. It merges the sorted posting lists of the conditions, so its cost
// grows with the shortest list's length, not the catalogue's size.
func (ix *Index) Find(ctx context.Context, conds []Cond, opts FindOptions, fn func(*fs.Object) error) error {
	if len(conds) == 0 {
		return fs.E(fs.Invalid, "find", "", errNoConds)
	}
	if len(conds) == 1 {
		return ix.findOne(ctx, conds[0], opts, fn)
	}
	return ix.view(func(txn *badger.Txn) error {
		its := make([]*badger.Iterator, len(conds))
		prefixes := make([][]byte, len(conds))
		for i, c := range conds {
			prefixes[i] = metaPrefix(c.Key, c.Value)
			its[i] = txn.NewIterator(badger.IteratorOptions{Prefix: prefixes[i]})
			defer its[i].Close()
		}
		var cur fs.ID
		seek := func(i int, id fs.ID) (fs.ID, bool) {
			it := its[i]
			it.Seek(append(append([]byte(nil), prefixes[i]...), id[:]...))
			if !it.Valid() {
				return fs.ID{}, false
			}
			var got fs.ID
			copy(got[:], it.Item().Key()[len(prefixes[i]):])
			return got, true
		}
		// Start at After+1 (ids are 16 bytes; seeking to After itself and
		// skipping it is simpler than incrementing).
		cur = opts.After
		n := 0
		skipEqual := opts.After != (fs.ID{})
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			// Leapfrog: raise cur to the largest head until all agree.
			agreed := true
			for i := range its {
				got, ok := seek(i, cur)
				if !ok {
					return nil
				}
				if got != cur {
					cur = got
					agreed = false
					skipEqual = false
					break
				}
			}
			if !agreed {
				continue
			}
			if skipEqual {
				skipEqual = false
			} else {
				o, err := getObject(txn, cur)
				if err != nil {
					return err
				}
				if err := fn(o); err != nil {
					return err
				}
				n++
				if opts.Limit > 0 && n >= opts.Limit {
					return nil
				}
			}
			cur = nextID(cur)
			if cur == (fs.ID{}) {
				return nil
			}
		}
	})
}

// findOne serves the common single-equality Find by walking one posting
// list with Next, which is several times cheaper than a Seek per result.
func (ix *Index) findOne(ctx context.Context, c Cond, opts FindOptions, fn func(*fs.Object) error) error {
	prefix := metaPrefix(c.Key, c.Value)
	return ix.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		start := prefix
		if opts.After != (fs.ID{}) {
			next := nextID(opts.After)
			start = append(append([]byte(nil), prefix...), next[:]...)
		}
		n := 0
		for it.Seek(start); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			var id fs.ID
			copy(id[:], it.Item().Key()[len(prefix):])
			o, err := getObject(txn, id)
			if err != nil {
				return err
			}
			if err := fn(o); err != nil {
				return err
			}
			n++
			if opts.Limit > 0 && n >= opts.Limit {
				return nil
			}
		}
		return nil
	})
}

// nextID returns id+1, or the zero id on overflow.
func nextID(id fs.ID) fs.ID {
	for i := len(id) - 1; i >= 0; i-- {
		id[i]++
		if id[i] != 0 {
			return id
		}
	}
	return fs.ID{}
}

// DerivedOptions select a range of derived keys.
type DerivedOptions struct {
	Prefix []byte // only keys with this prefix
	// Start: first key to visit (inclusive) in forward order; in reverse
	// order, the last key to visit. nil: from the prefix's edge.
	Start   []byte
	Reverse bool
	// Snapshot reads the readers' shared snapshot (snapshot.go), which
	// never waits for commits being applied. Only for keys written by the
	// index's own transactions (a Deriver's, such as views' paths): a
	// write through DB() is not in it until the next Sync or index write.
	Snapshot bool
}

// Derived calls fn for derived keys in key order (or reverse), with the
// key (without the index's own prefix byte) and value. The slices are only
// valid during the call. Returning ErrStop ends the walk without error.
func (ix *Index) Derived(ctx context.Context, opts DerivedOptions, fn func(key, value []byte) error) error {
	prefix := derivedKey(opts.Prefix)
	// Not from the shared snapshot by default: sibling packages also write
	// derived keys through DB() (the replication queue), which does not
	// move the snapshot on, and read them back here.
	view := ix.db.View
	if opts.Snapshot {
		view = ix.view
	}
	err := view(func(txn *badger.Txn) error {
		io := badger.IteratorOptions{Prefix: prefix, Reverse: opts.Reverse, PrefetchValues: false}
		it := txn.NewIterator(io)
		defer it.Close()
		var start []byte
		switch {
		case opts.Start != nil:
			start = derivedKey(opts.Start)
		case opts.Reverse:
			// Seek in reverse goes to the largest key <= start.
			start = append(append([]byte(nil), prefix...), bytes.Repeat([]byte{0xff}, 8)...)
		default:
			start = prefix
		}
		for it.Seek(start); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			item := it.Item()
			var err error
			verr := item.Value(func(v []byte) error {
				err = fn(item.Key()[1:], v)
				return nil
			})
			if verr != nil {
				return verr
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err == ErrStop {
		return nil
	}
	return err
}

// Expiring calls fn, in expiry order, for objects whose expiry time is at
// or before t.
func (ix *Index) Expiring(ctx context.Context, t time.Time, fn func(id fs.ID, at time.Time) error) error {
	err := ix.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pExpiry}})
		defer it.Close()
		limit := uint64(t.UnixNano())
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			k := it.Item().Key()
			ns := binary.BigEndian.Uint64(k[1:9])
			if ns > limit {
				return nil
			}
			var id fs.ID
			copy(id[:], k[9:])
			if err := fn(id, time.Unix(0, int64(ns)).UTC()); err != nil {
				return err
			}
		}
		return nil
	})
	if err == ErrStop {
		return nil
	}
	return err
}
