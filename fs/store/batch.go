package store

import (
	"context"

	"github.com/datagate/datagate/fs"
)

// UpdateMany is Update over several objects in one index transaction, also
// deleting the objects in del (what a rename overwrites): all or nothing
// (see index.UpdateMany). Content fields are not fn's to change: they are
// restored. The content of deleted objects is dropped after the commit.
func (s *Store) UpdateMany(ctx context.Context, ids []fs.ID, fn func(o *fs.Object) error, del []fs.ID) ([]*fs.Object, error) {
	updated, deleted, err := s.idx.UpdateMany(ctx, ids, func(o *fs.Object) error {
		keep := *o
		if err := fn(o); err != nil {
			return err
		}
		o.Size, o.MD5, o.SHA256, o.ETag = keep.Size, keep.MD5, keep.SHA256, keep.ETag
		o.Source, o.State, o.Stores, o.Version, o.Created = keep.Source, keep.State, keep.Stores, keep.Version, keep.Created
		return nil
	}, del)
	if err != nil {
		return nil, err
	}
	for _, o := range deleted {
		s.dropContent(ctx, o)
	}
	return updated, nil
}
