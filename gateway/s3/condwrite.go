package s3

import (
	"sync"

	"github.com/datagate/datagate/fs"
)

// S3 conditional writes: a PutObject or CompleteMultipartUpload with
// If-None-Match: * stores only when the key holds no object, one with
// If-Match: <etag> only when the key's object has that ETag (else 412
// PreconditionFailed; If-Match on a missing key is NoSuchKey). Lock
// files (Terraform's use_lockfile, for one) rely on the first: ignoring
// it lets two clients both believe they took the lock. minio-go sends
// the conditions of a multipart upload with CreateMultipartUpload (MinIO
// checks them there): they are checked then too, kept with the upload
// and checked again at completion unless that request brings its own.
//
// The Tree has no "create if absent", so a conditional write holds a lock
// on its key from the check to the commit: conditional writers to one
// key are serialised and the second sees the first's object. A write
// without conditions (through S3 or another front-end) is not held back.

// keyLocks are mutexes by Tree path, kept while in use.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

func (k *keyLocks) lock(p string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyLock{}
	}
	l := k.m[p]
	if l == nil {
		l = &keyLock{}
		k.m[p] = l
	}
	l.refs++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.m, p)
		}
		k.mu.Unlock()
	}
}

// writeConditions checks write preconditions (If-None-Match, If-Match:
// "" for none) on the key's current object. With none it returns a no-op
// unlock at once; otherwise the key stays locked for conditional writers
// until unlock, which the caller defers past its commit. If-None-Match
// other than "*" is NotImplemented, as in S3.
func (s *Server) writeConditions(q *req, noneMatch, match string) (unlock func(), err error) {
	if noneMatch == "" && match == "" {
		return func() {}, nil
	}
	if noneMatch != "" && noneMatch != "*" {
		return nil, withMessage(ErrNotImplemented, "If-None-Match on a write takes only *")
	}
	ctx := q.r.Context()
	p := objectPath(ctx, q.tree, q.bucket, q.key)
	unlock = s.condLocks.lock(p)
	info, err := q.tree.Stat(ctx, p)
	exists := err == nil && !info.IsDir()
	if k := fs.KindOf(err); err != nil && k != fs.NotExist && k != fs.NotDir {
		unlock()
		return nil, err
	}
	err = nil
	switch {
	case noneMatch != "" && exists:
		err = ErrPreconditionFailed
	case match != "" && !exists:
		err = ErrNoSuchKey
	case match != "":
		o, gerr := s.opts.Store.Get(ctx, info.ID()) // waits for a pending MD5
		switch {
		case fs.KindOf(gerr) == fs.NotExist:
			err = ErrNoSuchKey
		case gerr != nil:
			err = gerr
		case !etagMatch(match, etagOf(o)):
			err = ErrPreconditionFailed
		}
	}
	if err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}
