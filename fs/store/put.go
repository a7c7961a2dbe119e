package store

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
)

// PutRequest describes an object to push.
type PutRequest struct {
	Name        string
	Meta        map[string]string
	ContentType string
	ModTime     time.Time // zero: now
	Expires     time.Time
	Size        int64 // expected size, or -1 when unknown (e.g. chunked uploads)
	// Expected checksums (e.g. S3 Content-MD5): a mismatch fails the put
	// and nothing is kept.
	MD5, SHA256 []byte
	// Replace lists objects this one supersedes (an overwrite): they are
	// deleted in the same transaction that indexes the new object.
	Replace []fs.ID
	// ETag, when set, is kept as the object's ETag instead of the hex
	// MD5 (an S3 multipart upload's md5-of-md5s-N).
	ETag string
}

// Put streams r into the primary store and indexes the object once its
// content is durable. The content is hashed on the way (MD5 and SHA-256).
// On any failure — a reader error, cancellation, a full disk, a checksum
// or size mismatch — nothing is left behind and the error says why.
func (s *Store) Put(ctx context.Context, req PutRequest, r io.Reader) (*fs.Object, error) {
	now := s.now().UTC()
	o := &fs.Object{
		ID: s.ids.New(now), Name: req.Name, Size: 0, ModTime: req.ModTime.UTC(),
		ContentType: req.ContentType, Meta: req.Meta, Expires: req.Expires.UTC(),
		State: fs.StateStored, Stores: []string{PrimaryName}, Created: now,
	}
	if o.ModTime.IsZero() {
		o.ModTime = now
	}
	s.applyRetention(o, now)
	if o.Name == "" {
		return nil, fs.E(fs.Invalid, "put", "", errors.New("object has no name"))
	}
	if err := index.Validate(o); err != nil {
		return nil, err
	}
	hp := newHashPipe(ctx, r, req.Size)
	dst := primaryPath(o.ID)
	err := s.primary.Put(ctx, dst, hp, req.Size)
	var endErr error
	if err == nil {
		endErr = hp.end()
	}
	hp.finish() // r is not read any more
	if err != nil {
		if ctx.Err() != nil {
			return nil, fs.E(fs.Invalid, "put", o.Name, fmt.Errorf("cancelled: %w", ctx.Err()))
		}
		return nil, fs.Wrap("put", o.Name, err)
	}
	fail := func(err error) (*fs.Object, error) {
		// The content is durable but not indexed: remove it so nothing
		// unreachable stays behind.
		if derr := s.primary.Delete(context.WithoutCancel(ctx), dst); derr != nil {
			s.log.Error("remove unindexed content", "path", dst, "err", derr)
		}
		return nil, err
	}
	switch {
	case errors.Is(endErr, errLonger):
		return fail(fs.E(fs.Invalid, "put", o.Name, endErr))
	case endErr != nil:
		return fail(fs.Wrap("put", o.Name, endErr))
	}
	o.Size = hp.n
	o.MD5, o.SHA256 = hp.sums()
	o.ETag = hex.EncodeToString(o.MD5)
	if req.ETag != "" {
		o.ETag = req.ETag
	}
	switch {
	case req.Size >= 0 && hp.n != req.Size:
		return fail(fs.E(fs.Invalid, "put", o.Name, fmt.Errorf("got %d bytes, expected %d", hp.n, req.Size)))
	case len(req.MD5) > 0 && !bytes.Equal(req.MD5, o.MD5):
		return fail(fs.E(fs.Invalid, "put", o.Name, errors.New("content MD5 does not match the expected checksum")))
	case len(req.SHA256) > 0 && !bytes.Equal(req.SHA256, o.SHA256):
		return fail(fs.E(fs.Invalid, "put", o.Name, errors.New("content SHA-256 does not match the expected checksum")))
	}
	s.stampPrimary(o) // verified content: sentinel mtime (integrity.go)
	var replaced []*fs.Object
	for _, id := range req.Replace {
		if old, err := s.idx.Get(ctx, id); err == nil {
			replaced = append(replaced, old)
		}
	}
	// The commit must not be abandoned half-way by a cancelled request
	// once the content is safely stored.
	if err := s.idx.Swap(context.WithoutCancel(ctx), req.Replace, []*fs.Object{o}); err != nil {
		return fail(err)
	}
	for _, old := range replaced {
		s.dropContent(ctx, old)
	}
	return o, nil
}
