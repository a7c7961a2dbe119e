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
// content is durable. The content is hashed on the way: SHA-256, the
// object's identity, always; MD5 too when the content fits in one
// pipeline buffer, when req.MD5 is to be checked or when r comes from
// MD5Now. Otherwise the MD5 is computed in the background once the object
// is indexed (md5job.go): Get waits for it, listings lack it meanwhile.
// A reader from a LocalFiles source is copied by the kernel when the
// primary store can (an S3 multipart upload's parts).
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
	mn, md5Wanted := r.(md5Now)
	if md5Wanted {
		r = mn.Reader
	}
	mayDefer := len(req.MD5) == 0 && !md5Wanted
	dst := primaryPath(o.ID)
	var n int64
	var err, endErr error
	if lf, ok := r.(LocalFiles); ok && req.Size >= 0 && s.filesPutter() != nil {
		n, o.MD5, o.SHA256, err = s.putFiles(ctx, dst, lf.LocalFiles(), req.Size, mayDefer && req.Size > pipeBufSize)
	} else {
		hp := newHashPipe(ctx, r, req.Size, mayDefer)
		err = s.primary.Put(ctx, dst, hp, req.Size)
		if err == nil {
			endErr = hp.end()
		}
		hp.finish() // r is not read any more
		n = hp.n
		o.MD5, o.SHA256 = hp.sums()
	}
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
	o.Size = n
	if o.MD5 != nil {
		o.ETag = hex.EncodeToString(o.MD5)
	}
	if req.ETag != "" {
		o.ETag = req.ETag
	}
	switch {
	case req.Size >= 0 && n != req.Size:
		return fail(fs.E(fs.Invalid, "put", o.Name, fmt.Errorf("got %d bytes, expected %d", n, req.Size)))
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
	// A deferred MD5 is pending before anyone can see the object, so
	// Get never misses it.
	var job *md5Job
	if o.MD5 == nil {
		job = s.md5s.add(o.ID)
	}
	// The commit must not be abandoned half-way by a cancelled request
	// once the content is safely stored.
	if err := s.idx.Swap(context.WithoutCancel(ctx), req.Replace, []*fs.Object{o}); err != nil {
		if job != nil {
			s.md5s.done(o.ID, job)
		}
		return fail(err)
	}
	if job != nil {
		s.computeMD5(o.Clone(), job)
	}
	for _, old := range replaced {
		s.dropContent(ctx, old)
	}
	return o, nil
}

// MD5Now marks content whose MD5 the caller needs in its answer (an S3
// ETag): Put computes it on the way, as it does SHA-256, rather than in
// the background.
func MD5Now(r io.Reader) io.Reader { return md5Now{r} }

type md5Now struct{ io.Reader }

// LocalFiles is a reader whose content is whole local files, one after
// the other (an S3 multipart upload's spooled parts). Put has the kernel
// copy them into the primary store when it can (copy_file_range), hashing
// the copy as it is written, instead of reading them through a buffer.
type LocalFiles interface {
	io.Reader
	LocalFiles() []string // file names, in content order
}

// filesPutter is a primary store that copies local files by the kernel,
// feeding h the copy (backends/local).
type filesPutter interface {
	PutFiles(ctx context.Context, path string, names []string, size int64, h io.Writer, check func() error) error
}

func (s *Store) filesPutter() filesPutter {
	fp, _ := s.primary.(filesPutter)
	return fp
}

// putFiles copies the files named into the primary store at dst and
// hashes the copy: SHA-256, and MD5 unless deferred.
func (s *Store) putFiles(ctx context.Context, dst string, names []string, size int64, deferMD5 bool) (n int64, md5sum, sha []byte, err error) {
	sh := sha256.New()
	var mh hash.Hash
	h := io.Writer(sh)
	if !deferMD5 {
		mh = md5.New()
		h = io.MultiWriter(sh, mh)
	}
	if err := s.filesPutter().PutFiles(ctx, dst, names, size, h, nil); err != nil {
		return 0, nil, nil, err
	}
	if mh != nil {
		md5sum = mh.Sum(nil)
	}
	return size, md5sum, sh.Sum(nil), nil
}
