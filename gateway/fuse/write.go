package fuse

import (
	"context"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	ffs "github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/datagate/datagate/backends/local"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/store"
	"github.com/datagate/datagate/views"
)

// writeHandle is a file open for writing. Writes (sequential or random)
// go to a spool file in the data directory, nameless (O_TMPFILE) where it
// can be; the whole content is pushed through Tree.Create at flush (every
// close) or fsync, and only then becomes visible, as a new version, at
// the file's path at that moment. A push that fails is the error of that
// close or fsync, and nothing of it is visible.
//
// Writers that open a file without truncating it (appends, edits in
// place) share the spool (content) of its newest writer, as processes
// share the one file of a local file system: processes appending to a
// file at once keep each other's lines. A truncating open (a rewrite of
// the whole file) starts a spool of its own, so concurrent rewriters
// each push a whole version of their own and never a mix (the last close
// wins). Every close pushes its whole content.
type writeHandle struct {
	// immutable after openWriter
	n    *node
	fsys *filesys
	c    *content

	// appending: opened with O_APPEND. Its writes go at the end of the
	// content: the offset the kernel gives them comes from its idea of
	// the size, which another writer of the content may have moved on.
	appending bool

	mu       sync.Mutex
	released bool // guarded by mu
}

// content is a file being written: the spool of the node's open write
// handles.
//
// The common case, a new or truncated file written from start to end (cp,
// dd, a program saving its output), is hashed as it is written (seqHash),
// so the push hands the store the spool with its SHA-256 and the store
// links the spool in place: nothing is copied nor read back, and close
// only waits for the tail of the hash and the flush. Any other write
// pattern (a seek, a rewrite, a read, truncate) drops the hash, and the
// push has the store copy the spool, hashing the copy.
type content struct {
	// immutable after openWriter
	n    *node
	fsys *filesys

	mu sync.Mutex
	// guarded by mu
	handles int // open write handles on it; none: closed for writing
	readers int // contentReaders on it: the spool stays open for them
	spool   *os.File
	size    int64
	dirty   bool      // written since the last push
	failed  bool      // the last push failed and was reported
	mtime   time.Time // set by utimes while open; zero: now
	// given: the spool went to the store with its hash and may be the
	// stored file now: it is copied before it is written again.
	given bool
	// streamable: written from offset 0 only, so far (see above)
	streamable bool
	// truncated: a rewrite's (or a new file's), begun empty (immutable)
	truncated bool
	seq       *seqHash // the hash of those writes, if any
	// spoolErr: a write a feeder could not put in the spool, which no
	// longer holds the file: any push of the spool fails.
	spoolErr error
}

// seqHash hashes sequential writes as they come. A WRITE waits neither
// for the spool nor for the hash: a copy is queued (streamQueue buffers at
// most) and a feeder goroutine writes it to the spool and hashes it, so
// the kernel sends the next write meanwhile.
type seqHash struct {
	spool *os.File
	sha   hash.Hash
	q     chan *[]byte  // to the feeder; closed by stop
	fed   chan struct{} // closed when the feeder has returned
	sent  int64         // bytes queued
	once  sync.Once
	// set by the feeder, read after fed is closed
	spoolErr error
}

// streamQueue bounds the writes queued per handle (of up to MaxWrite,
// 1 MiB, each).
const streamQueue = 8

var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1<<20); return &b }}

func newSeqHash(spool *os.File) *seqHash {
	s := &seqHash{spool: spool, sha: sha256.New(), q: make(chan *[]byte, streamQueue), fed: make(chan struct{})}
	go s.feeder()
	return s
}

// feeder writes the queued writes to the spool, in order, and hashes
// them.
func (s *seqHash) feeder() {
	defer close(s.fed)
	var off, clean int64
	for b := range s.q {
		if s.spoolErr == nil {
			if _, err := s.spool.WriteAt(*b, off); err != nil {
				s.spoolErr = err
			}
			s.sha.Write(*b)
		}
		off += int64(len(*b))
		writeBufs.Put(b)
		if off-clean >= spoolWriteback {
			local.StartWriteback(s.spool, clean, off-clean)
			clean = off
		}
	}
}

// spoolWriteback is how much a feeder writes to the spool between two
// starts of its writeback. The spool's dirty pages pile up for the whole
// file otherwise: the kernel then makes the writer reclaim room for each
// new page, which cost ~2.5 ms of CPU a MiB here, more than the rest of a
// WRITE; and the push's fsync would wait for all of them. Pages under way
// to the disk are cheap to drop (the store's own files are written back
// the same way).
const spoolWriteback = 8 << 20

// stop closes the queue and waits until the feeder has written and
// hashed all of it.
func (s *seqHash) stop() {
	s.once.Do(func() { close(s.q) })
	<-s.fed
}

var (
	_ ffs.FileReader   = (*writeHandle)(nil)
	_ ffs.FileWriter   = (*writeHandle)(nil)
	_ ffs.FileFlusher  = (*writeHandle)(nil)
	_ ffs.FileFsyncer  = (*writeHandle)(nil)
	_ ffs.FileReleaser = (*writeHandle)(nil)
)

func (f *filesys) newSpool() (*os.File, error) { return store.NewSpool(f.spool) }

// openWriter opens file n for writing: when trunc on a new, empty spool;
// else on the content its newest writer has open, if any, else on a new
// spool holding a copy of the current content (so a partial overwrite
// keeps the rest).
func (n *node) openWriter(ctx context.Context, trunc bool) (*writeHandle, syscall.Errno) {
	n.wmu.Lock() // one opener at a time decides whether to share
	defer n.wmu.Unlock()
	n.mu.Lock()
	c := n.content
	n.mu.Unlock()
	if trunc || c == nil || !c.join() {
		var e syscall.Errno
		if c, e = n.newContent(ctx, trunc); e != 0 {
			return nil, e
		}
	}
	w := &writeHandle{n: n, fsys: n.fsys, c: c}
	n.mu.Lock()
	if n.writers == nil {
		n.writers = map[*writeHandle]bool{}
	}
	n.writers[w] = true
	n.content = c
	n.cachedOpens++ // no passthrough beside it (release.go)
	n.mu.Unlock()
	return w, 0
}

// newContent makes the content of n's first writer.
func (n *node) newContent(ctx context.Context, trunc bool) (*content, syscall.Errno) {
	sp, err := n.fsys.newSpool()
	if err != nil {
		n.fsys.log.Error("spool", "err", err)
		return nil, errno(err)
	}
	c := &content{n: n, fsys: n.fsys, handles: 1, spool: sp, dirty: trunc, streamable: trunc, truncated: trunc}
	if !trunc && !n.pending() {
		if e := c.copyCurrent(ctx); e != 0 {
			sp.Close()
			return nil, e
		}
	}
	n.mu.Lock()
	n.wsize = c.size
	n.mu.Unlock()
	return c, 0
}

// join adds a handle to c; false when c has been closed meanwhile.
func (c *content) join() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.handles == 0 {
		return false
	}
	c.handles++
	return true
}

// copyCurrent fills the spool with the file's current content. It holds
// the path as a push does (lockPath): an open racing a rename of the file
// looked the object up at its old name, moved in the store already but
// not yet in go-fuse's tree, and failed ENOENT (an `echo >>` during log
// rotation).
func (c *content) copyCurrent(ctx context.Context) syscall.Errno {
	defer c.n.lockPath()()
	p, ok := c.n.path()
	if !ok {
		return syscall.ENOENT
	}
	ctx, cancel := c.fsys.opCtx(ctx, true)
	defer cancel()
	f, err := c.fsys.tree.Open(ctx, p)
	if err != nil {
		return c.fsys.errno(err)
	}
	defer f.Close()
	sr := io.NewSectionReader(readerAtCtx{ctx, f}, 0, f.Stat().Size())
	n, err := io.Copy(c.spool, sr)
	if err != nil {
		return c.fsys.errno(err)
	}
	c.size = n
	return 0
}

type readerAtCtx struct {
	ctx context.Context
	f   *views.File
}

func (r readerAtCtx) ReadAt(p []byte, off int64) (int, error) {
	return r.f.ReadAtContext(r.ctx, p, off)
}

// Create makes a new file open for writing. It is in the store only once
// closed (or fsynced); until then only this mount sees it.
func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *gofuse.EntryOut) (_ *ffs.Inode, _ ffs.FileHandle, _ uint32, e syscall.Errno) {
	defer n.fsys.guard("create", &e)
	if n.fsys.ro {
		return nil, nil, 0, syscall.EROFS
	}
	p, e := n.childPath(name)
	if e != 0 {
		return nil, nil, 0, e
	}
	octx, cancel := n.fsys.opCtx(ctx, false)
	defer cancel()
	if dinfo := n.getInfo(); dinfo != nil && dinfo.Mode().Perm()&0o200 == 0 {
		return nil, nil, 0, syscall.EACCES
	}
	if info, err := n.fsys.tree.Stat(octx, p); err == nil {
		switch {
		case info.IsDir():
			return nil, nil, 0, syscall.EISDIR
		case flags&syscall.O_EXCL != 0:
			return nil, nil, 0, syscall.EEXIST
		}
	} else if fs.KindOf(err) != fs.NotExist {
		return nil, nil, 0, n.fsys.errno(err)
	}
	// A path the view's template or filter refuses fails here, not at
	// close (which shell redirections do not check).
	if err := n.fsys.tree.CheckCreate(octx, p); err != nil {
		return nil, nil, 0, n.fsys.errno(err)
	}
	cn := &node{fsys: n.fsys}
	w, e := cn.openWriter(ctx, true)
	if e != 0 {
		return nil, nil, 0, e
	}
	w.appending = flags&syscall.O_APPEND != 0
	cn.fill(&out.Attr)
	in := n.NewInode(ctx, cn, ffs.StableAttr{Mode: syscall.S_IFREG})
	return in, w, gofuse.FOPEN_DIRECT_IO, 0
}

// fill reports the attributes of the file as written so far.
func (w *writeHandle) fill(out *gofuse.Attr) {
	c := w.c
	c.mu.Lock()
	size := c.size
	c.mu.Unlock()
	w.n.mu.Lock()
	w.n.wsize = size
	w.n.mu.Unlock()
	w.n.fill(out)
	out.Size = uint64(size)
	out.Blocks = (uint64(size) + 511) / 512
}

func (w *writeHandle) Write(ctx context.Context, data []byte, off int64) (_ uint32, e syscall.Errno) {
	defer w.fsys.guard("write", &e)
	c := w.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.own(); err != nil {
		return 0, errno(err)
	}
	if w.appending {
		off = c.size
	}
	n, err := len(data), error(nil)
	if !c.feed(data, off) {
		n, err = c.spool.WriteAt(data, off)
	}
	if end := off + int64(n); end > c.size {
		c.size = end
	}
	c.dirty, c.failed = true, false
	c.mtime = time.Time{} // written after a utimes: now, as on a local file system
	c.n.mu.Lock()
	c.n.wsize = c.size
	c.n.wmtime = c.mtime
	c.n.mu.Unlock()
	if err != nil {
		return uint32(n), errno(err)
	}
	return uint32(n), 0
}

func (w *writeHandle) Read(ctx context.Context, dest []byte, off int64) (_ gofuse.ReadResult, e syscall.Errno) {
	defer w.fsys.guard("read", &e)
	return w.c.read(dest, off)
}

// read reads the content written so far at off.
func (c *content) read(dest []byte, off int64) (gofuse.ReadResult, syscall.Errno) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.abandon() // the spool then has every write
	n, err := c.spool.ReadAt(dest[:max(0, min(int64(len(dest)), c.size-off))], off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, errno(err)
	}
	return gofuse.ReadResultData(dest[:n]), 0
}

// readLive reads c at off as read does while it has writers; false once
// they are gone (its content is then the node's object, or on its way).
func (c *content) readLive(dest []byte, off int64) (gofuse.ReadResult, bool) {
	c.mu.Lock()
	live := c.handles > 0
	c.mu.Unlock()
	if !live {
		return nil, false
	}
	r, e := c.read(dest, off)
	return r, e == 0
}

// truncate sets the size of the file open on w (ftruncate, O_TRUNC): it
// is pushed at close.
func (w *writeHandle) truncate(size int64) syscall.Errno {
	e, _, _ := w.c.truncateSpool(size, true)
	return e
}

// truncateSpool cuts or extends the spool to size. A truncate(2) by path
// (own false) reaches the writers of the node, and leaves content with no
// unpushed writes clean: the store's content is what gets truncated, not
// a copy that may be older. dirty tells whether c holds writes to push.
// A closed writer's RELEASE is asynchronous, so a truncate by path may
// race it: closed content is skipped (live false).
func (c *content) truncateSpool(size int64, own bool) (_ syscall.Errno, live, dirty bool) {
	if size < 0 {
		return syscall.EINVAL, true, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.handles == 0 {
		return 0, false, false
	}
	c.abandon() // first: the feeder may still be writing the spool
	if err := c.own(); err != nil {
		return errno(err), true, c.dirty
	}
	if err := c.spool.Truncate(size); err != nil {
		return errno(err), true, c.dirty
	}
	// Emptied (O_TRUNC arrives as a separate truncate): a fresh stream
	// from offset 0 may start.
	c.streamable = size == 0
	c.size = size
	if own || c.dirty {
		c.dirty, c.failed = true, false
	}
	c.n.mu.Lock()
	c.n.wsize = size
	c.n.mu.Unlock()
	return 0, true, c.dirty
}

// setMtime sets the time the next push gives the file: utimes while it
// is written or before its push (cp -p and tar set it after writing, by
// descriptor or by path; either way the kernel sends no handle). Content
// with nothing to push answers false: the store's object, which it
// matches, takes the time instead.
func (c *content) setMtime(t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.handles == 0 || !c.dirty {
		return false
	}
	c.mtime = t
	c.n.mu.Lock()
	c.n.wmtime = t
	c.n.mu.Unlock()
	return true
}

// Flush pushes on close(2). Every close of a duplicated descriptor
// flushes; only the first after a write pushes.
func (w *writeHandle) Flush(ctx context.Context) (e syscall.Errno) {
	defer w.fsys.guard("flush", &e)
	return w.c.flush(ctx)
}

func (w *writeHandle) Fsync(ctx context.Context, flags uint32) (e syscall.Errno) {
	defer w.fsys.guard("fsync", &e)
	return w.c.flush(ctx)
}

// flush pushes c if it changed.
func (c *content) flush(ctx context.Context) syscall.Errno {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.push(ctx)
}

// push sends the spool to the store if it changed. Called with c.mu held.
func (c *content) push(ctx context.Context) syscall.Errno {
	if !c.dirty {
		return 0
	}
	defer c.n.lockPath()()
	p, ok := c.n.path()
	if !ok {
		// Unlinked while open: the content goes nowhere, as on a
		// local file system.
		c.abandon()
		c.dirty = false
		return 0
	}
	var sum []byte
	if s := c.seq; s != nil && s.sent == c.size {
		// Later writes are pushed again, by a copy (own).
		c.seq, c.streamable = nil, false
		s.stop()
		c.noteSpool(s)
		sum = s.sha.Sum(nil)
	}
	c.abandon()
	if c.spoolErr != nil {
		c.failed = true
		c.fsys.log.Warn("push failed: the spool lost a write", "path", p, "err", c.spoolErr)
		return errno(c.spoolErr)
	}
	// A push reads the local spool: bounded by the mount's life, not by
	// the per-call timeout meant for providers (a big file takes time).
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	defer context.AfterFunc(c.fsys.life, cancel)()
	defer c.fsys.pinPath(ctx, p)() // readers of the version this one replaces
	var r io.Reader = io.NewSectionReader(c.spool, 0, c.size)
	if sum != nil {
		r = store.HashedSpool(c.spool, c.size, sum)
	}
	info, err := c.fsys.tree.Create(ctx, p, r, views.CreateOptions{Size: c.size, ModTime: c.mtime})
	if err != nil {
		c.failed = true
		c.fsys.log.Warn("push failed", "path", p, "size", c.size, "err", err)
		if c.n.id() == (fs.ID{}) {
			c.n.vanish() // a new file that never reached the store
		}
		return c.fsys.errno(err)
	}
	c.dirty, c.failed = false, false
	c.given = c.given || sum != nil
	c.n.setInfo(info)
	return 0
}

// own makes the spool c's own again after a push gave it to the store: a
// copy of it replaces it. Called with c.mu held, before the spool is
// written or cut.
func (c *content) own() error {
	if !c.given {
		return nil
	}
	sp, err := c.fsys.newSpool()
	if err != nil {
		return err
	}
	if _, err := io.Copy(sp, io.NewSectionReader(c.spool, 0, c.size)); err != nil {
		sp.Close()
		return err
	}
	c.spool.Close()
	c.spool, c.given = sp, false
	return nil
}

// Release closes the handle. The last handle of the content pushes what
// was written after the last flush (rare: through a mapping), unless a
// push failed and was reported, and closes the spool.
func (w *writeHandle) Release(ctx context.Context) (e syscall.Errno) {
	defer w.fsys.guard("release", &e)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.released {
		return 0
	}
	w.released = true
	c := w.c
	c.mu.Lock()
	c.handles--
	closed := c.handles == 0
	if closed {
		if c.dirty && !c.failed {
			c.push(ctx)
		}
		c.abandon()
		if c.readers == 0 {
			c.spool.Close()
		}
	}
	c.mu.Unlock()
	w.n.mu.Lock()
	delete(w.n.writers, w)
	if closed && w.n.content == c {
		w.n.content = nil
	}
	w.n.mu.Unlock()
	w.fsys.afterRelease(ctx, w.n.settled)
	return 0
}

// contentReader is a file opened for reading while it is being written
// and not in the store yet: it reads what the writers have written so
// far (a program reading back its output, tail -f of a new log), and
// never pushes. A file the store has is read as its last pushed version
// meanwhile: readers never see half of a rewrite.
type contentReader struct {
	c    *content
	fsys *filesys
	once sync.Once
}

var (
	_ ffs.FileReader   = (*contentReader)(nil)
	_ ffs.FileReleaser = (*contentReader)(nil)
)

// openReader opens c for reading; false when its writers have closed it.
func (c *content) openReader() (*contentReader, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.handles == 0 {
		return nil, false
	}
	c.readers++
	return &contentReader{c: c, fsys: c.fsys}, true
}

func (r *contentReader) Read(ctx context.Context, dest []byte, off int64) (_ gofuse.ReadResult, e syscall.Errno) {
	defer r.fsys.guard("read", &e)
	return r.c.read(dest, off)
}

func (r *contentReader) Release(ctx context.Context) syscall.Errno {
	r.once.Do(func() {
		c := r.c
		c.mu.Lock()
		if c.readers--; c.readers == 0 && c.handles == 0 {
			c.spool.Close()
		}
		c.mu.Unlock()
	})
	return 0
}

// feed queues a write that continues the sequence from offset 0 for the
// feeder, starting it at the first write at offset 0, and reports whether
// it did: the feeder then writes it to the spool, else the caller does.
// Called with c.mu held.
func (c *content) feed(data []byte, off int64) bool {
	if !c.streamable {
		return false
	}
	if c.seq == nil {
		if off != 0 {
			c.abandon()
			return false
		}
		c.seq = newSeqHash(c.spool)
	}
	if off != c.seq.sent {
		c.abandon()
		return false
	}
	b := writeBufs.Get().(*[]byte)
	*b = append((*b)[:0], data...)
	c.seq.q <- b
	c.seq.sent += int64(len(data))
	return true
}

// abandon drops the sequence's hash, if any, once the feeder has written
// all it was given: the spool then holds every write. Called with c.mu
// held.
func (c *content) abandon() {
	c.streamable = false
	if s := c.seq; s != nil {
		c.seq = nil
		s.stop()
		c.noteSpool(s)
	}
}

// noteSpool keeps the error of a feeder's spool writes. Called with c.mu
// held, after the feeder has returned.
func (c *content) noteSpool(s *seqHash) {
	if s.spoolErr != nil && c.spoolErr == nil {
		c.spoolErr = s.spoolErr
	}
}
