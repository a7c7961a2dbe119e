package fuse

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	ffs "github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/views"
)

// writeHandle is a file open for writing. Writes (sequential or random)
// go to a spool file in the data directory, unlinked at once; the whole
// content is pushed through Tree.Create at flush (every close) or fsync,
// and only then becomes visible, as a new version, at the file's path at
// that moment. A push that fails is the error of that close or fsync, and
// nothing of it is visible.
//
// The common case, a new or truncated file written from start to end (cp,
// dd, a program saving its output), is also streamed into Tree.Create as
// it is written, so hashing and storing overlap the writing and close
// only waits for the tail. The upload commits when the stream ends, at
// flush; any other write pattern (a seek, a rewrite, a read, truncate,
// utimes, a rename) abandons it — a cancelled upload leaves nothing — and
// the spool is pushed instead. While a stream goes on, its writes reach
// the spool from the stream's feeder, off the WRITE's path; abandoning
// the stream waits until the spool has them all.
type writeHandle struct {
	// immutable after openWriter
	n    *node
	fsys *filesys

	mu sync.Mutex
	// guarded by mu
	spool    *os.File
	size     int64
	dirty    bool      // written since the last push
	failed   bool      // the last push failed and was reported
	mtime    time.Time // set by utimes while open; zero: now
	released bool
	// streamable: written from offset 0 only, so far (see above)
	streamable bool
	stream     *stream // the upload being streamed, if any
	// spoolErr: a write a stream's feeder could not put in the spool,
	// which no longer holds the file: any push of the spool fails.
	spoolErr error
}

// stream is an upload fed by sequential writes. A WRITE does not wait
// for the upload to take its data, nor for the spool to: a copy is queued
// (streamQueue buffers at most) and a feeder goroutine pipes it into
// Tree.Create and then writes it to the spool, so the kernel sends the
// next write while the store hashes and stores this one.
type stream struct {
	path   string
	pw     *io.PipeWriter
	spool  *os.File
	cancel context.CancelFunc
	q      chan *[]byte  // to the feeder; closed by stop
	fed    chan struct{} // closed when the feeder has returned
	failed atomic.Bool   // the upload stopped taking data
	done   chan struct{} // closed when Create returned
	sent   int64         // bytes queued
	once   sync.Once
	// set before done is closed
	info *views.Info
	err  error
	// set by the feeder, read after fed is closed
	spoolErr error
}

// streamQueue bounds the writes queued per stream (of up to MaxWrite,
// 1 MiB, each).
const streamQueue = 8

var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1<<20); return &b }}

// feeder pipes the queued writes into the upload, and writes each to the
// spool, in order, even once the upload has failed: the spool is then
// what is pushed.
func (s *stream) feeder() {
	defer close(s.fed)
	var off, clean int64
	for b := range s.q {
		if !s.failed.Load() {
			if _, err := s.pw.Write(*b); err != nil {
				s.failed.Store(true)
			}
		}
		if s.spoolErr == nil {
			if _, err := s.spool.WriteAt(*b, off); err != nil {
				s.spoolErr = err
			}
		}
		off += int64(len(*b))
		writeBufs.Put(b)
		if off-clean >= spoolWriteback {
			startWriteback(s.spool, clean, off-clean)
			clean = off
		}
	}
}

// spoolWriteback is how much a stream writes to the spool between two
// starts of its writeback. The spool is rarely read, but its dirty pages
// pile up for the whole file: the kernel then makes the writer reclaim
// room for each new page, which cost ~2.5 ms of CPU a MiB here, more than
// the rest of a WRITE. Pages under way to the disk are cheap to drop (the
// store's own files are written back the same way).
const spoolWriteback = 8 << 20

// startWriteback starts writing n bytes at off of f to the disk, without
// waiting for it (sync_file_range, SYNC_FILE_RANGE_WRITE).
func startWriteback(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.SyncFileRange(int(fd), off, n, 2)
	})
}

// stop closes the queue and waits until the feeder has sent all of it.
func (s *stream) stop() {
	s.once.Do(func() { close(s.q) })
	<-s.fed
}

var errStreamAbandoned = errors.New("fuse: streamed upload abandoned")

var (
	_ ffs.FileReader   = (*writeHandle)(nil)
	_ ffs.FileWriter   = (*writeHandle)(nil)
	_ ffs.FileFlusher  = (*writeHandle)(nil)
	_ ffs.FileFsyncer  = (*writeHandle)(nil)
	_ ffs.FileReleaser = (*writeHandle)(nil)
)

func (f *filesys) newSpool() (*os.File, error) {
	sp, err := os.CreateTemp(f.spool, "write-*")
	if err != nil {
		return nil, err
	}
	os.Remove(sp.Name())
	return sp, nil
}

// openWriter opens file n for writing: empty when trunc, else holding a
// copy of the current content (so a partial overwrite keeps the rest).
func (n *node) openWriter(ctx context.Context, trunc bool) (*writeHandle, syscall.Errno) {
	sp, err := n.fsys.newSpool()
	if err != nil {
		n.fsys.log.Error("spool", "err", err)
		return nil, errno(err)
	}
	w := &writeHandle{n: n, fsys: n.fsys, spool: sp, dirty: trunc, streamable: trunc}
	if !trunc && !n.pending() {
		if e := w.copyCurrent(ctx); e != 0 {
			sp.Close()
			return nil, e
		}
	}
	n.mu.Lock()
	if n.writers == nil {
		n.writers = map[*writeHandle]bool{}
	}
	n.writers[w] = true
	n.wsize = w.size
	n.cachedOpens++ // no passthrough beside it (release.go)
	n.mu.Unlock()
	return w, 0
}

// copyCurrent fills the spool with the file's current content.
func (w *writeHandle) copyCurrent(ctx context.Context) syscall.Errno {
	p, ok := w.n.path()
	if !ok {
		return syscall.ENOENT
	}
	ctx, cancel := w.fsys.opCtx(ctx, true)
	defer cancel()
	f, err := w.fsys.tree.Open(ctx, p)
	if err != nil {
		return w.fsys.errno(err)
	}
	defer f.Close()
	sr := io.NewSectionReader(readerAtCtx{ctx, f}, 0, f.Stat().Size())
	n, err := io.Copy(w.spool, sr)
	if err != nil {
		return w.fsys.errno(err)
	}
	w.size = n
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
	cn := &node{fsys: n.fsys}
	w, e := cn.openWriter(ctx, true)
	if e != 0 {
		return nil, nil, 0, e
	}
	cn.fill(&out.Attr)
	in := n.NewInode(ctx, cn, ffs.StableAttr{Mode: syscall.S_IFREG})
	return in, w, gofuse.FOPEN_DIRECT_IO, 0
}

// fill reports the attributes of the file as written so far.
func (w *writeHandle) fill(out *gofuse.Attr) {
	w.mu.Lock()
	size := w.size
	w.mu.Unlock()
	w.n.mu.Lock()
	w.n.wsize = size
	w.n.mu.Unlock()
	w.n.fill(out)
	out.Size = uint64(size)
	out.Blocks = (uint64(size) + 511) / 512
}

func (w *writeHandle) Write(ctx context.Context, data []byte, off int64) (_ uint32, e syscall.Errno) {
	defer w.fsys.guard("write", &e)
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := len(data), error(nil)
	if !w.feed(ctx, data, off) {
		n, err = w.spool.WriteAt(data, off)
	}
	if end := off + int64(n); end > w.size {
		w.size = end
	}
	w.dirty, w.failed = true, false
	w.n.mu.Lock()
	w.n.wsize = w.size
	w.n.mu.Unlock()
	if err != nil {
		return uint32(n), errno(err)
	}
	return uint32(n), 0
}

func (w *writeHandle) Read(ctx context.Context, dest []byte, off int64) (_ gofuse.ReadResult, e syscall.Errno) {
	defer w.fsys.guard("read", &e)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.abandon() // the spool then has every write
	n, err := w.spool.ReadAt(dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, errno(err)
	}
	return gofuse.ReadResultData(dest[:n]), 0
}

// truncate sets the size of the file open on w (ftruncate, O_TRUNC): w
// pushes it at close.
func (w *writeHandle) truncate(size int64) syscall.Errno {
	e, _, _ := w.truncateSpool(size, true)
	return e
}

// truncateSpool cuts or extends the spool to size. A truncate(2) by path
// (own false) reaches every writer of the node, and leaves one with no
// unpushed writes clean: the store's content is what gets truncated, not
// a copy that may be older. dirty tells whether w holds writes to push.
// A closed writer's RELEASE is asynchronous, so a truncate by path may
// race it: a released handle is skipped (live false).
func (w *writeHandle) truncateSpool(size int64, own bool) (_ syscall.Errno, live, dirty bool) {
	if size < 0 {
		return syscall.EINVAL, true, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.released {
		return 0, false, false
	}
	w.abandon() // first: the feeder may still be writing the spool
	if err := w.spool.Truncate(size); err != nil {
		return errno(err), true, w.dirty
	}
	// Emptied (O_TRUNC arrives as a separate truncate): a fresh stream
	// from offset 0 may start.
	w.streamable = size == 0
	w.size = size
	if own || w.dirty {
		w.dirty, w.failed = true, false
	}
	w.n.mu.Lock()
	w.n.wsize = size
	w.n.mu.Unlock()
	return 0, true, w.dirty
}

func (w *writeHandle) setMtime(t time.Time) {
	w.mu.Lock()
	w.mtime = t
	w.dirty = true
	w.abandon()
	w.mu.Unlock()
}

// Flush pushes on close(2). Every close of a duplicated descriptor
// flushes; only the first after a write pushes.
func (w *writeHandle) Flush(ctx context.Context) (e syscall.Errno) {
	defer w.fsys.guard("flush", &e)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.push(ctx)
}

func (w *writeHandle) Fsync(ctx context.Context, flags uint32) (e syscall.Errno) {
	defer w.fsys.guard("fsync", &e)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.push(ctx)
}

// push sends the spool to the store if it changed. Called with w.mu held.
func (w *writeHandle) push(ctx context.Context) syscall.Errno {
	if !w.dirty {
		return 0
	}
	p, ok := w.n.path()
	if !ok {
		// Unlinked while open: the content goes nowhere, as on a
		// local file system.
		w.abandon()
		w.dirty = false
		return 0
	}
	if info, ok := w.finishStream(p); ok {
		w.dirty, w.failed = false, false
		w.n.setInfo(info)
		return 0
	}
	if w.spoolErr != nil {
		w.failed = true
		w.fsys.log.Warn("push failed: the spool lost a write", "path", p, "err", w.spoolErr)
		return errno(w.spoolErr)
	}
	// A push reads the local spool: bounded by the mount's life, not by
	// the per-call timeout meant for providers (a big file takes time).
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	defer context.AfterFunc(w.fsys.life, cancel)()
	info, err := w.fsys.tree.Create(ctx, p, io.NewSectionReader(w.spool, 0, w.size), views.CreateOptions{Size: w.size, ModTime: w.mtime})
	if err != nil {
		w.failed = true
		w.fsys.log.Warn("push failed", "path", p, "size", w.size, "err", err)
		if w.n.id() == (fs.ID{}) {
			w.n.vanish() // a new file that never reached the store
		}
		return w.fsys.errno(err)
	}
	w.dirty, w.failed = false, false
	w.n.setInfo(info)
	return 0
}

// Release closes the handle. Content written after the last flush (rare:
// through a mapping) is pushed, unless a push failed and was reported.
func (w *writeHandle) Release(ctx context.Context) (e syscall.Errno) {
	defer w.fsys.guard("release", &e)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.released {
		return 0
	}
	w.released = true
	if w.dirty && !w.failed {
		w.push(ctx)
	}
	w.abandon()
	w.spool.Close()
	w.n.mu.Lock()
	delete(w.n.writers, w)
	w.n.mu.Unlock()
	w.fsys.afterRelease(ctx, w.n.settled)
	return 0
}

// feed sends a write that continues the stream to the upload, starting
// it at the first write at offset 0, and reports whether it did: the
// stream's feeder then writes it to the spool too, else the caller does.
// Called with w.mu held.
func (w *writeHandle) feed(ctx context.Context, data []byte, off int64) bool {
	if !w.streamable {
		return false
	}
	if w.stream == nil {
		p, ok := w.n.path()
		if off != 0 || !ok {
			w.abandon()
			return false
		}
		w.startStream(ctx, p)
	}
	if off != w.stream.sent || w.stream.failed.Load() {
		// Out of sequence, or Create gave up (e.g. a bad path): the
		// spool push does the work, and reports why.
		w.abandon()
		return false
	}
	b := writeBufs.Get().(*[]byte)
	*b = append((*b)[:0], data...)
	w.stream.q <- b
	w.stream.sent += int64(len(data))
	return true
}

// The upload outlives the first WRITE (caller) but is recorded as the
// writing process's (withCaller, audit.go).
func (w *writeHandle) startStream(caller context.Context, p string) {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(withCaller(w.fsys.life, caller))
	s := &stream{path: p, pw: pw, spool: w.spool, cancel: cancel, done: make(chan struct{}), q: make(chan *[]byte, streamQueue), fed: make(chan struct{})}
	go s.feeder()
	id := w.fsys.tree.NewID() // the upload's place among those to its path
	go func() {
		defer close(s.done)
		s.info, s.err = w.fsys.tree.Create(ctx, p, pr, views.CreateOptions{Size: -1, ID: id})
		pr.CloseWithError(errStreamAbandoned) // a writer blocked on a Create that returned early
	}()
	w.stream = s
}

// abandon cancels the streamed upload, if any (it leaves nothing), and
// stops streaming for this handle; the spool then holds every write.
// Called with w.mu held.
func (w *writeHandle) abandon() {
	w.streamable = false
	if s := w.stream; s != nil {
		w.stream = nil
		s.cancel()
		s.pw.CloseWithError(errStreamAbandoned) // the feeder's writes fail: it drains the queue
		s.stop()
		<-s.done
		w.noteSpool(s)
	}
}

// noteSpool keeps the error of a stream's spool writes. Called with w.mu
// held, after the feeder has returned.
func (w *writeHandle) noteSpool(s *stream) {
	if s.spoolErr != nil && w.spoolErr == nil {
		w.spoolErr = s.spoolErr
	}
}

// finishStream ends the stream and waits for its upload to commit. false
// when there is no stream, it does not hold exactly the file at path p,
// or it failed: the caller pushes the spool. Called with w.mu held.
func (w *writeHandle) finishStream(p string) (*views.Info, bool) {
	s := w.stream
	if s == nil {
		return nil, false
	}
	if s.path != p || s.sent != w.size || w.mtime != (time.Time{}) {
		w.abandon()
		return nil, false
	}
	w.stream, w.streamable = nil, false
	s.stop()
	w.noteSpool(s)
	if s.failed.Load() {
		s.cancel()
		s.pw.CloseWithError(errStreamAbandoned)
		<-s.done
		w.fsys.log.Debug("streamed upload failed; pushing the spool", "path", p, "err", s.err)
		return nil, false
	}
	s.pw.Close()
	<-s.done
	s.cancel()
	if s.err != nil {
		w.fsys.log.Debug("streamed upload failed; pushing the spool", "path", p, "err", s.err)
		return nil, false
	}
	return s.info, true
}
