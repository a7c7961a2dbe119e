package store

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"

	"github.com/datagate/datagate/backends/cache"
	"github.com/datagate/datagate/fs"
)

// Reader reads one object's content: io.Reader, io.ReaderAt and io.Seeker,
// safe for concurrent ReadAt. Close it.
type Reader struct {
	obj  *fs.Object
	ra   io.ReaderAt
	file *os.File    // the plain file, when the content is whole on local disk
	cf   *cache.File // set for cached content
	s    *Store

	unpin sync.Once // releases the pin OpenObject took

	mu  sync.Mutex // guards off
	off int64
}

// Object returns the object being read.
func (r *Reader) Object() *fs.Object { return r.obj }

// Size returns the content size.
func (r *Reader) Size() int64 { return r.obj.Size }

// File returns the plain local file holding the whole content, when there
// is one (stored content, or a complete cache entry), so front-ends can use
// sendfile or FUSE passthrough. The file belongs to the Reader.
func (r *Reader) File() (*os.File, bool) {
	if r.file != nil {
		return r.file, true
	}
	if r.cf != nil {
		return r.cf.DataFile()
	}
	return nil, false
}

// ReadAt reads len(p) bytes at off, fetching missing content as needed.
// A read that reaches the end of cached content waits for its checksum
// verdict, so wrong bytes never end a read without an error.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.ra.ReadAt(p, off)
	return r.atEndN(context.Background(), off, n, err)
}

// atEnd returns the verification error when end is the end of cached
// content that failed its checksum, and err otherwise.
func (r *Reader) atEnd(ctx context.Context, end int64, err error) error {
	if r.cf == nil || end < r.obj.Size || (err != nil && !errors.Is(err, io.EOF)) {
		return err
	}
	if verr := r.cf.Verified(ctx); verr != nil {
		return fs.Wrap("read", r.obj.ID.String(), verr)
	}
	return err
}

// atEndN is atEnd for a read of n bytes at off that returns them: when
// they end content that failed its checksum, none of them is returned,
// so a caller that uses the bytes before the error (io.Copy into an
// answer with a Content-Length) never hands the whole content out.
func (r *Reader) atEndN(ctx context.Context, off int64, n int, err error) (int, error) {
	if verr := r.atEnd(ctx, off+int64(n), err); verr != err {
		return 0, verr
	}
	return n, err
}

// ReadAtContext is ReadAt bounded by ctx for content not yet cached.
func (r *Reader) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if r.cf != nil {
		n, err := r.cf.ReadAtContext(ctx, p, off)
		return r.atEndN(ctx, off, n, err)
	}
	return r.ra.ReadAt(p, off)
}

// FileAt makes the n bytes at off readable from a local file and returns
// it with how many of them the content has (io.EOF with them when it ends
// within the range), so a front-end can splice them (FUSE ReadResultFd)
// instead of copying them through a buffer; read only that range of it.
// Like ReadAt, a range reaching the end of cached content waits for its
// checksum verdict. The file belongs to the Reader.
func (r *Reader) FileAt(ctx context.Context, off int64, n int) (*os.File, int, error) {
	if r.cf != nil {
		f, m, err := r.cf.ReadFile(ctx, off, n)
		if err = r.atEnd(ctx, off+int64(m), err); err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, err
		}
		return f, m, err
	}
	if r.file == nil {
		return nil, 0, fs.E(fs.Unsupported, "read", r.obj.ID.String(), errors.New("no local file"))
	}
	if off < 0 {
		return nil, 0, fs.E(fs.Invalid, "read", r.obj.ID.String(), errors.New("negative offset"))
	}
	if off >= r.obj.Size {
		return nil, 0, io.EOF
	}
	if rem := r.obj.Size - off; int64(n) > rem {
		return r.file, int(rem), io.EOF
	}
	return r.file, n, nil
}

func (r *Reader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.off >= r.obj.Size {
		return 0, io.EOF
	}
	if rem := r.obj.Size - r.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := r.ReadAt(p, r.off)
	r.off += int64(n)
	if errors.Is(err, io.EOF) && n > 0 {
		err = nil
	}
	return n, err
}

// Seek sets the offset of the next Read.
func (r *Reader) Seek(off int64, whence int) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += r.off
	case io.SeekEnd:
		off += r.obj.Size
	default:
		return 0, fs.E(fs.Invalid, "seek", r.obj.ID.String(), errors.New("bad whence"))
	}
	if off < 0 {
		return 0, fs.E(fs.Invalid, "seek", r.obj.ID.String(), errors.New("negative offset"))
	}
	r.off = off
	return off, nil
}

// WriteTo copies the rest of the content to w (io.Copy uses it). Whole
// local content is handed over as a limited *os.File, so a network
// destination can use sendfile; anything else is read in 1 MiB steps rather
// than through the destination's small ReadFrom buffer.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.File(); ok && r.off < r.obj.Size {
		if _, err := f.Seek(r.off, io.SeekStart); err != nil {
			return 0, err
		}
		n, err := io.Copy(w, io.LimitReader(f, r.obj.Size-r.off))
		r.off += n
		return n, err
	}
	buf := make([]byte, stepFor(r.obj.Size-r.off))
	var total int64
	for r.off < r.obj.Size {
		p := buf
		if rem := r.obj.Size - r.off; rem < int64(len(p)) {
			p = p[:rem]
		}
		n, err := r.ReadAt(p, r.off)
		if n > 0 {
			m, werr := w.Write(p[:n])
			r.off += int64(m)
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err != nil && !(errors.Is(err, io.EOF) && r.off >= r.obj.Size) {
			return total, err
		}
	}
	return total, nil
}

// Close releases the content. A registered object read for the first time
// is marked partly cached.
func (r *Reader) Close() error {
	var err error
	if r.file != nil {
		err = r.file.Close()
	}
	if r.cf != nil {
		if r.obj.State == fs.StateRegistered && !r.cf.Complete() {
			if info, ok := r.s.cache.Lookup(r.obj.ContentKey()); ok && info.Present > 0 {
				r.s.setState(r.obj, fs.StatePartial, nil, nil)
			}
		}
		err = errors.Join(err, r.cf.Close())
		r.unpin.Do(func() { r.s.pins.release(r.obj.ID) })
	}
	return err
}

// Open opens an object's content for reading. Stored content is read from
// the primary store's file; registered content lazily through the cache.
func (s *Store) Open(ctx context.Context, id fs.ID) (*Reader, error) {
	o, err := s.idx.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.OpenObject(ctx, o)
}

// OpenObject opens the content of an object record already looked up.
func (s *Store) OpenObject(ctx context.Context, o *fs.Object) (*Reader, error) {
	if o.State == fs.StateStored {
		// Checked against its sentinel mtime, hashed again if it moved
		// (integrity.go).
		f, err := s.openStored(ctx, o)
		if err == nil {
			return &Reader{obj: o, ra: f, file: f, s: s}, nil
		}
		// The primary copy is missing, unreadable or corrupt (then set
		// aside): read another store's copy through the cache
		// (fallback.go), or fail if there is none.
		if !s.hasOtherCopy(o) {
			return nil, err
		}
		s.log.Warn("primary copy unreadable, reading a replica", "id", o.ID, "err", err)
	} else if _, ok := s.providers.get(o.Source.Provider); !ok {
		return nil, fs.E(fs.Unavailable, "open", o.ID.String(), fmt.Errorf("unknown provider %q", o.Source.Provider))
	}
	if o.Size < 0 {
		if o, err := s.learnSize(ctx, o); err != nil {
			return nil, err
		} else {
			return s.OpenObject(ctx, o)
		}
	}
	obj := o
	s.pins.hold(o.ID)
	cf, err := s.cache.Open(ctx, cache.Source{
		Key:  o.ContentKey(),
		Size: o.Size,
		Fetch: func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
			// Healthy stores holding a copy first, then the provider.
			return s.fetchRange(ctx, obj, off, n)
		},
		Verify:    func(ctx context.Context, f *os.File) error { return s.verify(ctx, obj, f) },
		NewDigest: s.newDigest(obj),
	})
	if err != nil {
		s.pins.release(o.ID)
		return nil, fs.Wrap("open", o.ID.String(), err)
	}
	return &Reader{obj: o, ra: cf, cf: cf, s: s}, nil
}

// learnSize asks the provider for the size of an object registered
// without one, and records it.
func (s *Store) learnSize(ctx context.Context, o *fs.Object) (*fs.Object, error) {
	prov, ok := s.providers.get(o.Source.Provider)
	if !ok {
		return nil, fs.E(fs.Unavailable, "stat", o.ID.String(), fmt.Errorf("unknown provider %q", o.Source.Provider))
	}
	e, err := prov.Stat(ctx, o.Source.Path)
	if err != nil {
		return nil, fs.Wrap("stat", o.Source.Provider+":"+o.Source.Path, err)
	}
	size := e.Size - o.Source.Offset
	if o.Source.Length > 0 {
		size = o.Source.Length
	}
	if size < 0 || o.Source.Offset+size > e.Size {
		return nil, fs.E(fs.Invalid, "open", o.ID.String(), fmt.Errorf("range [%d,+%d) beyond the end of %s (%d bytes)", o.Source.Offset, size, o.Source.Path, e.Size))
	}
	return s.idx.Update(ctx, o.ID, func(n *fs.Object) error {
		if n.Version != o.Version {
			return fs.E(fs.Unavailable, "open", o.ID.String(), errors.New("object changed while opening"))
		}
		n.Size = size
		if n.ModTime.IsZero() {
			n.ModTime = e.ModTime
		}
		if n.ETag == "" {
			n.ETag = e.ETag
		}
		return nil
	})
}

// verify checks whole content against the registered checksums by
// reading it (the cache uses newDigest instead while it fetches). Checksums
// that were not registered are computed in the background and recorded, so
// a first read does not pay for hashing it did not need.
func (s *Store) verify(ctx context.Context, o *fs.Object, f *os.File) error {
	nd := s.newDigest(o)
	if nd == nil {
		s.backgroundChecksums(o, f.Name())
		return nil
	}
	d := nd().(*contentDigest)
	if err := hashFile(ctx, f, o.Size, d.hs...); err != nil {
		return fs.Wrap("verify", o.ID.String(), err)
	}
	return d.Verify(ctx)
}

// newDigest returns the cache's incremental check of o's content against
// its registered checksums, or nil when none were registered.
func (s *Store) newDigest(o *fs.Object) func() cache.Digest {
	if len(o.SHA256) == 0 && len(o.MD5) == 0 {
		return nil
	}
	return func() cache.Digest {
		d := &contentDigest{s: s, o: o}
		if len(o.SHA256) > 0 {
			d.hs, d.want = append(d.hs, sha256.New()), append(d.want, o.SHA256)
		}
		if len(o.MD5) > 0 {
			d.hs, d.want = append(d.hs, md5.New()), append(d.want, o.MD5)
		}
		return d
	}
}

// contentDigest hashes content with the algorithms of o's registered
// checksums and judges it against them.
type contentDigest struct {
	s    *Store
	o    *fs.Object
	hs   []hash.Hash
	want [][]byte
}

// Write feeds every hash, each on its own goroutine when there are two:
// MD5 alone is slower than most transfers.
func (d *contentDigest) Write(p []byte) (int, error) {
	var wg sync.WaitGroup
	for _, h := range d.hs[1:] {
		wg.Go(func() { h.Write(p) })
	}
	d.hs[0].Write(p)
	wg.Wait()
	return len(p), nil
}

// Verify compares the sums and records the outcome: the Cached state, or
// the background job computing the checksum that was not registered.
func (d *contentDigest) Verify(ctx context.Context) error {
	o := d.o
	for i, h := range d.hs {
		if !bytes.Equal(h.Sum(nil), d.want[i]) {
			return fs.E(fs.Unavailable, "verify", o.ID.String(), fmt.Errorf("content from %s:%s does not match its registered checksum", o.Source.Provider, o.Source.Path))
		}
	}
	if len(o.MD5) == 0 || len(o.SHA256) == 0 {
		if info, ok := d.s.cache.Lookup(o.ContentKey()); ok {
			d.s.backgroundChecksums(o, info.Path)
		}
		return nil
	}
	d.s.setState(o, fs.StateCached, nil, nil)
	return nil
}

// maxChecksumBacklog bounds the background checksum jobs waiting for
// their turn. Each records its sums with an index commit of its own (a
// few hundred a second), while cold reads of small objects fill the cache
// far faster: unbounded, the jobs waited as goroutines holding their
// object, without end under a sustained load (4,000 cold reads in 1.7 s
// left 3,910 waiting, drained in 15 s). A job left out leaves the object
// as it was (not Cached, no sums recorded) until a later fill of its
// entry, after an eviction, queues one again.
const maxChecksumBacklog = 1024

// backgroundChecksums hashes a complete cache file and records the sums and
// the Cached state. One job at a time, at most maxChecksumBacklog waiting;
// it gives up if the store closes.
func (s *Store) backgroundChecksums(o *fs.Object, name string) {
	if s.sumsWaiting.Add(1) > maxChecksumBacklog {
		s.sumsWaiting.Add(-1)
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		select {
		case s.bgSem <- struct{}{}:
			s.sumsWaiting.Add(-1)
		case <-s.closed:
			s.sumsWaiting.Add(-1)
			return
		}
		defer func() { <-s.bgSem }()
		ctx, cancel := s.untilClosed()
		defer cancel()
		f, err := os.Open(name)
		if err != nil {
			// Evicted or removed meanwhile: the next complete read retries.
			return
		}
		defer f.Close()
		// The job may start long after it was queued: the entry it was
		// for may have been evicted since, and a new one for the same
		// key begun at the same path, half fetched. Hashing that one
		// recorded the sums of holes as the object's, and every later
		// fetch of it then failed verification for good (the soak
		// test). Hash only a file that is the entry's now and whole;
		// else the entry's own verification queues the job again.
		if !s.wholeEntry(o, name, f) {
			return
		}
		// Both sums, at the lowest CPU priority, in one pass: they are
		// for later, the reads going on now come first. A registered
		// sum is checked again, so that a sum of a cache file damaged
		// since its verification is never recorded.
		m, h := md5.New(), sha256.New()
		lowPriority()
		if err := hashSerial(ctx, f, o.Size, m, h); err != nil {
			return
		}
		if s.afterChecksums != nil {
			s.afterChecksums()
		}
		if len(o.MD5) > 0 && !bytes.Equal(m.Sum(nil), o.MD5) || len(o.SHA256) > 0 && !bytes.Equal(h.Sum(nil), o.SHA256) {
			s.log.Warn("cached content changed since it was verified; checksums not recorded", "id", o.ID, "file", name)
			return
		}
		if !s.wholeEntry(o, name, f) {
			return // dropped meanwhile (a scrub found it damaged): not Cached
		}
		s.setState(o, fs.StateCached, m.Sum(nil), h.Sum(nil))
	}()
}

// wholeEntry reports whether f, opened at name, is the data file of o's
// cache entry as it is now, with every byte present. f was opened before
// the entry was looked up, so when the path still leads to f's file, that
// file is the one the entry whole at the lookup writes to, not a newer one.
func (s *Store) wholeEntry(o *fs.Object, name string, f *os.File) bool {
	info, ok := s.cache.Lookup(o.ContentKey())
	if !ok || info.Present != o.Size || info.Path != name {
		return false
	}
	held, err := f.Stat()
	if err != nil {
		return false
	}
	now, err := os.Stat(name)
	return err == nil && os.SameFile(held, now)
}

// setState records a content state (and computed checksums) unless the
// object changed version meanwhile.
func (s *Store) setState(o *fs.Object, st fs.State, md5sum, sha []byte) {
	_, err := s.idx.Update(context.Background(), o.ID, func(n *fs.Object) error {
		if n.Version != o.Version || n.State == fs.StateStored {
			return errSkip
		}
		if n.State < st {
			n.State = st
		}
		if len(n.MD5) == 0 && md5sum != nil {
			n.MD5 = md5sum
		}
		if len(n.SHA256) == 0 && sha != nil {
			n.SHA256 = sha
		}
		return nil
	})
	if err != nil && !errors.Is(err, errSkip) && fs.KindOf(err) != fs.NotExist {
		s.log.Warn("record content state", "id", o.ID, "state", st, "err", err)
	}
}

var errSkip = errors.New("skip")

// stepFor is the buffer for reading n bytes: 1 MiB steps, or n itself
// when smaller. Most objects are a few KiB, and every cold read of one
// hashes it: 1 MiB each was two thirds of all the bytes the server
// allocated under the soak test's load (a heap profile), for nothing.
func stepFor(n int64) int {
	return int(max(1, min(n, 1<<20)))
}

// hashSerial feeds size bytes of f to every hash in one pass.
func hashSerial(ctx context.Context, f *os.File, size int64, hs ...hash.Hash) error {
	sr := io.NewSectionReader(f, 0, size)
	buf := make([]byte, stepFor(size))
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := sr.Read(buf)
		for _, h := range hs {
			h.Write(buf[:n])
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// hashFile feeds size bytes of f to every hash, one goroutine per hash so
// MD5 and SHA-256 run on separate cores.
func hashFile(ctx context.Context, f *os.File, size int64, hs ...hash.Hash) error {
	errs := make(chan error, len(hs))
	for _, h := range hs {
		go func(h hash.Hash) {
			sr := io.NewSectionReader(f, 0, size)
			buf := make([]byte, stepFor(size))
			for {
				if err := ctx.Err(); err != nil {
					errs <- err
					return
				}
				n, err := sr.Read(buf)
				h.Write(buf[:n])
				if errors.Is(err, io.EOF) {
					errs <- nil
					return
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}(h)
	}
	var err error
	for range hs {
		err = errors.Join(err, <-errs)
	}
	return err
}
