package store

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"os"
	"sync"
	"time"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
)

// A pushed object's MD5 is for clients that compare it (WebDAV
// checksums, user.datagate.md5, md5sum over SSH), not for the store,
// whose integrity rests on SHA-256. MD5 is the slowest of the hashes (one
// stream cannot be split), so Put leaves it out of the acknowledged path
// when nobody needs it in the answer and it is computed here, once the
// object is indexed, from the stored file.

// An object waiting for its MD5 has a derived key in the catalogue,
// written in the commit that indexes it and dropped by the one that
// records the sum, so a crash in between leaves a trace: Open after an
// unclean shutdown resumes those jobs instead of leaving the objects
// without an MD5 for good.
const md5Pending = 0x08 // derived-key prefix of the objects owed an MD5

// deriveMD5Pending wraps next with the md5Pending key of a stored object
// that has no MD5 yet.
func deriveMD5Pending(next index.Deriver) index.Deriver {
	return func(o *fs.Object) []index.Derived {
		out := next(o)
		if o.State == fs.StateStored && len(o.MD5) == 0 {
			out = append(out, index.Derived{Key: append([]byte{md5Pending}, o.ID[:]...)})
		}
		return out
	}
}

// resumeMD5s starts the MD5 jobs a crash interrupted. The md5Pending keys
// are few (objects pushed in the last moments before it), so they are
// read at once.
func (s *Store) resumeMD5s(ctx context.Context) {
	var ids []fs.ID
	err := s.idx.Derived(ctx, index.DerivedOptions{Prefix: []byte{md5Pending}}, func(k, _ []byte) error {
		var id fs.ID
		if len(k) == 1+len(id) {
			copy(id[:], k[1:])
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		s.log.Warn("list objects owed an MD5", "err", err)
	}
	for _, id := range ids {
		o, err := s.idx.Get(ctx, id)
		if err != nil || o.State != fs.StateStored || len(o.MD5) > 0 {
			continue
		}
		s.computeMD5(o, s.md5s.add(id))
	}
	if len(ids) > 0 {
		s.log.Info("resumed MD5s interrupted by an unclean shutdown", "objects", len(ids))
	}
}

// The MD5 of an object with an ETag of its own (S3 multipart) is
// wanted by nobody waiting (awaitMD5), so its job does not compete with
// uploads for the CPU: it waits until no upload has been in flight for
// md5IdleDelay (the gaps between one upload's end and the next one's
// start are shorter), but no longer than md5MaxDefer after it was queued,
// so sustained uploads cannot starve it. Other objects' MD5s, which
// readers wait for, are not deferred. Close ends the deferral.
const (
	md5IdleDelay = 200 * time.Millisecond
	md5MaxDefer  = 30 * time.Second
)

// md5Jobs are the objects whose MD5 is still being computed.
// The zero value is ready to use.
type md5Jobs struct {
	mu      sync.Mutex
	pending map[fs.ID]*md5Job
	run     sync.Mutex // one job hashes at a time

	uploads    int       // in flight (Store.Uploading)
	lastUpload time.Time // when the last one ended
	// idle and maxDefer: md5IdleDelay and md5MaxDefer when zero (tests
	// set them before the store is used).
	idle, maxDefer time.Duration
}

// Uploading marks an upload as in progress until the function returned
// is called: deferrable background MD5s wait meanwhile (see md5IdleDelay).
// Put counts itself; front-ends that receive content before they call it
// (S3 multipart parts) tell the store here.
func (s *Store) Uploading() (done func()) {
	j := &s.md5s
	j.mu.Lock()
	j.uploads++
	j.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			j.mu.Lock()
			j.uploads--
			j.lastUpload = time.Now()
			j.mu.Unlock()
		})
	}
}

// busyFor is how long a deferred job should still wait for uploads to
// pause, at now; <= 0: go.
func (j *md5Jobs) busyFor(now time.Time) time.Duration {
	j.mu.Lock()
	defer j.mu.Unlock()
	idle := j.idle
	if idle <= 0 {
		idle = md5IdleDelay
	}
	if j.uploads > 0 {
		return idle
	}
	return idle - now.Sub(j.lastUpload)
}

// waitIdle waits until uploads pause, at most maxDefer, or stop closes.
func (j *md5Jobs) waitIdle(stop <-chan struct{}) {
	j.mu.Lock()
	maxDefer := j.maxDefer
	j.mu.Unlock()
	if maxDefer <= 0 {
		maxDefer = md5MaxDefer
	}
	deadline := time.Now().Add(maxDefer)
	for {
		now := time.Now()
		wait := min(j.busyFor(now), deadline.Sub(now))
		if wait <= 0 {
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

type md5Job struct{ done chan struct{} }

// add marks id's MD5 as pending.
func (j *md5Jobs) add(id fs.ID) *md5Job {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.pending == nil {
		j.pending = map[fs.ID]*md5Job{}
	}
	job := &md5Job{done: make(chan struct{})}
	j.pending[id] = job
	return job
}

// done ends job, recorded or not, and releases its waiters.
func (j *md5Jobs) done(id fs.ID, job *md5Job) {
	j.mu.Lock()
	if j.pending[id] == job {
		delete(j.pending, id)
	}
	j.mu.Unlock()
	close(job.done)
}

// wait waits for id's pending MD5, if any, until ctx ends. It reports
// whether there was one and it ended.
func (j *md5Jobs) wait(ctx context.Context, id fs.ID) bool {
	j.mu.Lock()
	job := j.pending[id]
	j.mu.Unlock()
	if job == nil {
		return false
	}
	select {
	case <-job.done:
		return true
	case <-ctx.Done():
		return false
	}
}

// awaitMD5 returns o, or its record again once a pending MD5 computation
// for it ends (ctx permitting), so that a reader of a fresh push gets its
// MD5 and the ETag made of it rather than none. An object with an ETag of
// its own (S3 multipart) is not waited for: S3 HEADs and listings, which
// want only the ETag, follow uploads closely.
func (s *Store) awaitMD5(ctx context.Context, o *fs.Object) *fs.Object {
	if len(o.MD5) > 0 || o.ETag != "" || o.State != fs.StateStored || !s.md5s.wait(ctx, o.ID) {
		return o
	}
	if n, err := s.idx.Get(ctx, o.ID); err == nil {
		return n
	}
	return o
}

// computeMD5 hashes o's stored file in the background, at low priority
// and one object at a time, and records the MD5 (and the ETag, when o has
// none) unless o changed meanwhile. With an ETag of its own, o waits for
// uploads to pause first (md5IdleDelay). The sum is of verified content only:
// the file must carry its sentinel (integrity.go) before and after, or
// match o's SHA-256. Store.Close waits for the jobs, so only a crash
// leaves an object without its MD5 (listed without one, never a wrong one).
func (s *Store) computeMD5(o *fs.Object, job *md5Job) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		defer s.md5s.done(o.ID, job)
		if o.ETag != "" {
			s.md5s.waitIdle(s.closed)
		}
		s.md5s.run.Lock()
		defer s.md5s.run.Unlock()
		lowPriority()
		sum, err := s.storedMD5(o)
		if err != nil {
			s.log.Debug("background MD5 not recorded", "id", o.ID, "err", err)
			return
		}
		_, err = s.idx.Update(context.Background(), o.ID, func(n *fs.Object) error {
			if n.Version != o.Version || n.State != fs.StateStored || len(n.MD5) > 0 {
				return errSkip
			}
			n.MD5 = sum
			if n.ETag == "" {
				n.ETag = hex.EncodeToString(sum)
			}
			return nil
		})
		if err != nil && !errors.Is(err, errSkip) && fs.KindOf(err) != fs.NotExist {
			s.log.Warn("record background MD5", "id", o.ID, "err", err)
		}
	}()
}

// storedMD5 hashes o's primary file.
func (s *Store) storedMD5(o *fs.Object) ([]byte, error) {
	p, err := s.primaryFS.LocalPath(primaryPath(o.ID))
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err // replaced or deleted meanwhile
	}
	defer f.Close()
	stamped := func() bool {
		fi, err := f.Stat()
		return err == nil && fi.Size() == o.Size && fi.ModTime().Equal(sentinel(o))
	}
	m := md5.New()
	hs := []hash.Hash{m}
	var sh hash.Hash
	verified := stamped()
	if !verified {
		sh = sha256.New()
		hs = append(hs, sh)
	}
	if err := hashSerial(context.Background(), f, o.Size, hs...); err != nil {
		return nil, err
	}
	switch {
	case verified && !stamped():
		return nil, errors.New("stored file changed while hashed")
	case !verified && !bytes.Equal(sh.Sum(nil), o.SHA256):
		return nil, errCorruptStored
	}
	return m.Sum(nil), nil
}
