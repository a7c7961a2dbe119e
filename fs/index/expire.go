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
	err = ix.update(ctx, "expire", lazy, func(txn *badger.Txn) ([]Change, error) {
		b, err := ix.prepareExpired(ctx, txn, now, []byte{pExpiry}, limit)
		if err != nil {
			return nil, err
		}
		deleted, more = b.deleted, b.more
		return b.changes, nil
	})
	if err != nil {
		return nil, false, err
	}
	return deleted, more, nil
}

// expiredBatch is one transaction's worth of expired objects.
type expiredBatch struct {
	deleted []*fs.Object
	changes []Change
	next    []byte // seek key after the last expiry key taken
	more    bool   // expired entries remain from next on
}

// prepareExpired deletes, in txn, up to limit expired objects whose expiry
// keys sort at or after from, and stale expiry keys (see DeleteExpired).
func (ix *Index) prepareExpired(ctx context.Context, txn *badger.Txn, now time.Time, from []byte, limit int) (expiredBatch, error) {
	type entry struct {
		key []byte
		id  fs.ID
		ns  uint64
	}
	var b expiredBatch
	lim := uint64(now.UnixNano())
	var found []entry
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pExpiry}})
	for it.Seek(from); it.Valid(); it.Next() {
		k := it.Item().Key()
		if len(k) != 25 {
			continue // not ours to judge here; fsck reports it
		}
		ns := binary.BigEndian.Uint64(k[1:9])
		if ns > lim {
			break
		}
		if len(found) == limit {
			b.more = true
			break
		}
		e := entry{key: append([]byte(nil), k...), ns: ns}
		copy(e.id[:], k[9:])
		found = append(found, e)
	}
	it.Close()
	if len(found) > 0 {
		// The successor of the last key: the next batch must not even
		// read it, or a pipelined commit of this batch would conflict.
		b.next = append(found[len(found)-1].key, 0)
	}
	b.changes = make([]Change, 0, len(found))
	for _, e := range found {
		if err := ctx.Err(); err != nil {
			return b, err
		}
		o, err := getObject(txn, e.id)
		if fs.KindOf(err) == fs.NotExist {
			ix.log.Warn("index: removing stale expiry key", "id", e.id)
			if err := txn.Delete(e.key); err != nil {
				return b, err
			}
			continue
		}
		if err != nil {
			return b, err
		}
		if o.Expires.IsZero() || uint64(o.Expires.UnixNano()) != e.ns {
			ix.log.Warn("index: removing stale expiry key", "id", e.id, "expires", o.Expires)
			if err := txn.Delete(e.key); err != nil {
				return b, err
			}
			continue
		}
		if err := ix.deleteKeys(txn, o); err != nil {
			return b, err
		}
		b.deleted = append(b.deleted, o)
		b.changes = append(b.changes, Change{Op: OpDelete, Old: o})
	}
	return b, nil
}

// CollectExpired deletes every object expired at or before now, as
// DeleteExpired does, in transactions of at most limit objects, and calls
// fn with the records of each batch once it is committed (and published).
// It returns the number of committed batches. While one batch commits (the
// write and its fsync) the next is prepared in a transaction opened before
// that commit; batches touch disjoint keys, so they do not conflict with
// each other. A batch that conflicts with another writer (an object's
// expiry moved meanwhile) is prepared again, a bounded number of times.
// On error or cancellation, batches already committed stay committed.
// Readers never wait for a batch (they read the shared snapshot, see
// snapshot.go); each batch is made visible to them before fn runs. The
// commits are not synced: a batch lost in a crash is collected again.
// limit bounds how long a concurrent writer's refresh waits behind a batch.
func (ix *Index) CollectExpired(ctx context.Context, now time.Time, limit int, fn func(deleted []*fs.Object)) (batches int, err error) {
	if limit <= 0 {
		limit = 10000
	}
	type inflight struct {
		done  chan error
		from  []byte
		batch expiredBatch
	}
	var prev *inflight
	conflicts := 0 // in a row, for the batch being retried
	// wait finishes prev; on a conflict it returns the key to resume at.
	wait := func() (resume []byte, err error) {
		p := prev
		prev = nil
		if p == nil {
			return nil, nil
		}
		err = <-p.done
		if err == nil {
			ix.cnt.apply(p.batch.changes)
		}
		ix.cnt.gate.RUnlock() // taken before its commit
		if err != nil {
			if errors.Is(err, badger.ErrConflict) {
				return p.from, nil
			}
			return nil, fs.E(fs.Other, "expire", "", err)
		}
		// Readers stop seeing the batch before its content is dropped.
		ix.refresh()
		ix.publish(p.batch.changes)
		batches++
		conflicts = 0
		if len(p.batch.deleted) > 0 {
			fn(p.batch.deleted)
		}
		return nil, nil
	}
	// backoff bounds the retries of one batch that keeps conflicting.
	backoff := func() error {
		if conflicts++; conflicts > 10 {
			return fs.E(fs.Unavailable, "expire", "", errors.New("too many conflicts with other writers"))
		}
		time.Sleep(time.Duration(conflicts) * time.Millisecond)
		return nil
	}
	from := []byte{pExpiry}
	txn := ix.newWriteTxn()
	defer func() { txn.Discard() }()
	for {
		if err := ctx.Err(); err != nil {
			wait()
			return batches, fs.E(fs.Other, "expire", "", err)
		}
		b, err := ix.prepareExpired(ctx, txn, now, from, limit)
		if errors.Is(err, badger.ErrTxnTooBig) && limit > 1 {
			limit /= 2
			txn.Discard()
			resume, err := wait()
			if err != nil {
				return batches, err
			}
			if resume != nil {
				from = resume
			}
			txn = ix.newWriteTxn()
			continue
		}
		if err != nil {
			wait()
			return batches, fs.E(fs.Other, "expire", "", err)
		}
		// Open the next transaction before this one commits, so that its
		// reads do not wait for this commit to be applied.
		next := ix.newWriteTxn()
		resume, err := wait()
		if err != nil {
			next.Discard()
			return batches, err
		}
		if resume != nil {
			// The previous batch lost a conflict: this one was prepared
			// after it; drop it and redo both from the previous start.
			if err := backoff(); err != nil {
				next.Discard()
				return batches, err
			}
			txn.Discard()
			txn, from = next, resume
			continue
		}
		cur := &inflight{done: make(chan error, 1), from: from, batch: b}
		ix.cnt.gate.RLock() // until its counts are applied (wait)
		txn.CommitWith(func(err error) { cur.done <- err })
		prev, txn = cur, next
		if !b.more {
			resume, err := wait()
			if err != nil || resume == nil {
				return batches, err
			}
			if err := backoff(); err != nil {
				return batches, err
			}
			from = resume
			continue
		}
		from = b.next
	}
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
	err := ix.view(func(txn *badger.Txn) error {
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
