package index

import (
	"context"
	"encoding/binary"
	"errors"

	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/datagate/datagate/fs"
)

// DeleteExpired removes, in one transaction, up to limit objects whose
// expiry time is at or before now, with all their secondary and derived
// keys, and returns their records (limit <= 0: 10,000). Each record is
// re-read inside the transaction, so an object whose expiry was moved
// later since it was listed is kept. An expiry key that names no object,
// or a time its object no longer has, is stale and removed (otherwise it
// would head the expiry order for ever). more reports that expired
// entries remain beyond limit.
//
// A batch too large for one Badger transaction is split in halves until
// it fits: the collector's batch size is a ceiling, not a promise.
func (ix *Index) DeleteExpired(ctx context.Context, now time.Time, limit int) (deleted []*fs.Object, more bool, err error) {
	if limit <= 0 {
		limit = 10000
	}
	for {
		deleted, more, err = ix.deleteExpired(ctx, now, limit)
		if err != nil && errors.Is(err, badger.ErrTxnTooBig) && limit > 1 {
			limit /= 2
			more = true
			continue
		}
		return deleted, more, err
	}
}

func (ix *Index) deleteExpired(ctx context.Context, now time.Time, limit int) (deleted []*fs.Object, more bool, err error) {
	type entry struct {
		key []byte
		id  fs.ID
		ns  uint64
	}
	lim := uint64(now.UnixNano())
	err = ix.update(ctx, "expire", func(txn *badger.Txn) ([]Change, error) {
		deleted, more = deleted[:0], false
		var found []entry
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pExpiry}})
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) != 25 {
				continue // not ours to judge here; fsck reports it
			}
			ns := binary.BigEndian.Uint64(k[1:9])
			if ns > lim {
				break
			}
			if len(found) == limit {
				more = true
				break
			}
			e := entry{key: append([]byte(nil), k...), ns: ns}
			copy(e.id[:], k[9:])
			found = append(found, e)
		}
		it.Close()
		changes := make([]Change, 0, len(found))
		for _, e := range found {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			o, err := getObject(txn, e.id)
			if fs.KindOf(err) == fs.NotExist {
				ix.log.Warn("index: removing stale expiry key", "id", e.id)
				if err := txn.Delete(e.key); err != nil {
					return nil, err
				}
				continue
			}
			if err != nil {
				return nil, err
			}
			if o.Expires.IsZero() || uint64(o.Expires.UnixNano()) != e.ns {
				ix.log.Warn("index: removing stale expiry key", "id", e.id, "expires", o.Expires)
				if err := txn.Delete(e.key); err != nil {
					return nil, err
				}
				continue
			}
			if err := ix.deleteKeys(txn, o); err != nil {
				return nil, err
			}
			deleted = append(deleted, o)
			changes = append(changes, Change{Op: OpDelete, Old: o})
		}
		return changes, nil
	})
	if err != nil {
		return nil, false, err
	}
	return deleted, more, nil
}

// SourceRefs counts the objects registered at any byte range of the file
// path of provider: the collector deletes a provider's file only when no
// object still refers to it. It reads a prefix of the source index, never
// the catalogue.
func (ix *Index) SourceRefs(ctx context.Context, provider, path string) (int, error) {
	prefix := make([]byte, 0, 3+len(provider)+len(path))
	prefix = append(prefix, pSource)
	prefix = append(prefix, provider...)
	prefix = append(prefix, 0)
	prefix = append(prefix, path...)
	prefix = append(prefix, 0)
	n := 0
	err := ix.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			// Exactly the offset and length follow the prefix; a longer
			// key belongs to a path that merely starts the same way
			// (impossible: paths hold no NUL), kept for clarity.
			if len(it.Item().Key()) == len(prefix)+16 {
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, fs.E(fs.Other, "source refs", provider+":"+path, err)
	}
	return n, nil
}
