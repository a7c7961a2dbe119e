package store

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
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
	h := newHasher()
	cr := &countingReader{ctx: ctx, r: r, h: h}
	dst := primaryPath(o.ID)
	if err := s.primary.Put(ctx, dst, cr, req.Size); err != nil {
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
	o.Size = cr.n
	o.MD5, o.SHA256 = h.sums()
	o.ETag = hex.EncodeToString(o.MD5)
	if req.ETag != "" {
		o.ETag = req.ETag
	}
	switch {
	case req.Size >= 0 && cr.n != req.Size:
		return fail(fs.E(fs.Invalid, "put", o.Name, fmt.Errorf("got %d bytes, expected %d", cr.n, req.Size)))
	case len(req.MD5) > 0 && !bytes.Equal(req.MD5, o.MD5):
		return fail(fs.E(fs.Invalid, "put", o.Name, errors.New("content MD5 does not match the expected checksum")))
	case len(req.SHA256) > 0 && !bytes.Equal(req.SHA256, o.SHA256):
		return fail(fs.E(fs.Invalid, "put", o.Name, errors.New("content SHA-256 does not match the expected checksum")))
	}
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

// countingReader hashes and counts what it passes on, and stops with the
// context's error once the context is done.
type countingReader struct {
	ctx context.Context
	r   io.Reader
	h   *hasher
	n   int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	if n > 0 {
		c.h.Write(p[:n])
		c.n += int64(n)
	}
	return n, err
}

// hasher computes MD5 and SHA-256 together.
type hasher struct{ md5, sha hash.Hash }

func newHasher() *hasher { return &hasher{md5: md5.New(), sha: sha256.New()} }

func (h *hasher) Write(p []byte) (int, error) {
	h.md5.Write(p)
	h.sha.Write(p)
	return len(p), nil
}

func (h *hasher) sums() (md5sum, sha []byte) { return h.md5.Sum(nil), h.sha.Sum(nil) }
