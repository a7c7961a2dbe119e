package index

import (
	"context"
	"errors"

	"github.com/dgraph-io/badger/v4"

	"github.com/datagate/datagate/fs"
)

// UpdateMany applies fn to every object in ids and deletes every object in
// del, all in one transaction: either every change is made or none is. A
// view's directory rename uses it (every object under the directory gets
// new metadata, and what the rename overwrites goes). fn receives a copy
// it may modify; it must not change the ID; an error from fn aborts the
// whole batch and is returned. A missing id in either list is a NotExist
// error; an id in both lists is Invalid. A batch too large for one Badger
// transaction is an Invalid error and nothing is written.
func (ix *Index) UpdateMany(ctx context.Context, ids []fs.ID, fn func(o *fs.Object) error, del []fs.ID) (updated, deleted []*fs.Object, err error) {
	seen := make(map[fs.ID]bool, len(ids))
	for _, id := range ids {
		seen[id] = true
	}
	for _, id := range del {
		if seen[id] {
			return nil, nil, fs.E(fs.Invalid, "update many", id.String(), errors.New("id both updated and deleted"))
		}
	}
	if err := ix.roomFor("update many"); err != nil {
		return nil, nil, err
	}
	err = ix.update(ctx, "update many", durable, func(txn *badger.Txn) ([]Change, error) {
		updated, deleted = updated[:0], deleted[:0]
		changes := make([]Change, 0, len(ids)+len(del))
		for _, id := range del {
			old, err := getObject(txn, id)
			if err != nil {
				return nil, err
			}
			if err := ix.deleteKeys(txn, old); err != nil {
				return nil, err
			}
			deleted = append(deleted, old)
			changes = append(changes, Change{Op: OpDelete, Old: old})
		}
		for _, id := range ids {
			ch, err := ix.updateIn(txn, id, fn)
			if err != nil {
				return nil, err
			}
			updated = append(updated, ch.New)
			changes = append(changes, ch)
		}
		return changes, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return updated, deleted, nil
}
