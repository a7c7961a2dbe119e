package fuse

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	ffs "github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"github.com/hanwen/go-fuse/v2/splice"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/views"
)

// readHandle reads an object through the store: lazily fetched content
// through the cache, or, when the content is whole on local disk, the
// plain file — spliced to the kernel, or handed to it for passthrough so
// reads bypass this process entirely.
type readHandle struct {
	// immutable after Open
	fsys *filesys
	node *node

	mu sync.Mutex
	// guarded by mu (set at Open, moved by follow)
	p  string // where the object was opened, for its rights
	id fs.ID
	// guarded by mu (set at Open, by the first Read, or by follow)
	f     *views.File
	local *os.File // the whole content, owned by f; nil while not cached
	// cached: the kernel reads this open through its page cache or our
	// READs (counted in node.cachedOpens until Release)
	cached bool
	// buffered: opened without direct I/O (set once, at Open)
	buffered bool
}

var (
	_ ffs.NodeReader          = (*node)(nil)
	_ ffs.NodeFlusher         = (*node)(nil)
	_ ffs.FileReader          = (*readHandle)(nil)
	_ ffs.FileReleaser        = (*readHandle)(nil)
	_ ffs.FilePassthroughFder = (*readHandle)(nil)
)

// Open opens file n: for reading through the store, or for writing into
// a spool that is pushed when the file is closed.
func (n *node) Open(ctx context.Context, flags uint32) (_ ffs.FileHandle, _ uint32, e syscall.Errno) {
	defer n.fsys.guard("open", &e)
	if n.dir {
		return nil, 0, syscall.EISDIR
	}
	if n.fsys.noOpen && flags&syscall.O_ACCMODE == syscall.O_RDONLY {
		return nil, 0, syscall.ENOSYS // from now on the kernel does not ask
	}
	if writeFlags(flags) {
		if n.fsys.ro {
			return nil, 0, syscall.EROFS
		}
		if n.writerElsewhere(ctx) {
			// A new inode for the name, where the kernel's retry of the
			// open (ESTALE, LOOKUP_REVAL) finds no reader; they keep
			// theirs.
			n.supersede()
			return nil, 0, syscall.ESTALE
		}
		w, e := n.openWriter(ctx, flags&syscall.O_TRUNC != 0)
		if e != 0 {
			return nil, 0, e
		}
		w.appending = flags&syscall.O_APPEND != 0
		return w, gofuse.FOPEN_DIRECT_IO, 0
	}
	p, ok := n.path()
	if !ok {
		return nil, 0, syscall.ENOENT
	}
	if n.pending() {
		// Not in the store yet: what its writers have written so far.
		if c := n.openContent(); c != nil {
			if r, ok := c.openReader(); ok {
				return r, gofuse.FOPEN_DIRECT_IO | gofuse.FOPEN_NOFLUSH, 0
			}
		}
		return nil, 0, syscall.EBUSY // its writers have just closed it
	}
	if h, fl, ok := n.quickOpen(p); ok {
		return h, fl, 0
	}
	octx, cancel := n.fsys.opCtx(ctx, true)
	defer cancel()
	f, err := n.fsys.tree.Open(octx, p)
	for try := 0; try < 3 && fs.KindOf(err) == fs.NotExist; try++ {
		// Replaced between the index read and the open of its content
		// (a push, another front-end): the path's new object, if any.
		f, err = n.fsys.tree.Open(octx, p)
	}
	if err != nil {
		return nil, 0, n.fsys.errno(err)
	}
	h := &readHandle{fsys: n.fsys, node: n, p: p, id: f.Stat().ID(), f: f}
	h.local, _ = f.File()
	// Content is immutable per object id (the change feed flushes the
	// pages of a re-crawled version), so the kernel may keep its pages
	// across opens. When the path now holds another object than this
	// inode's, or the size was unknown, bypass the page cache instead.
	var fl uint32 = gofuse.FOPEN_KEEP_CACHE | gofuse.FOPEN_NOFLUSH
	n.mu.Lock()
	if n.cachedID != f.Stat().ID() {
		// Pages of another version (written here, or replaced):
		// without KEEP_CACHE the kernel drops them at this open.
		fl = gofuse.FOPEN_NOFLUSH
		n.cachedID = f.Stat().ID()
	}
	n.mu.Unlock()
	if n.writing() {
		// The kernel's size is the writers' (a read through the page
		// cache stops there): the last pushed version, read meanwhile,
		// bypasses it.
		fl = gofuse.FOPEN_DIRECT_IO
		h.local = nil
	} else if old := n.getInfo(); old == nil || old.ID() != f.Stat().ID() || old.Size() != f.Stat().Size() {
		fl = gofuse.FOPEN_DIRECT_IO
		h.local = nil // no passthrough for an inode whose attributes lie
		if old != nil && old.ID() == f.Stat().ID() {
			n.setInfo(f.Stat()) // the size, learnt at open
		}
	}
	h.opened(fl)
	return h, fl, 0
}

// writerElsewhere tells whether a writer opening n must be sent to a new
// inode, away from its readers: when they are passed through (the kernel
// fails an open of such an inode in any other mode, EIO, and a writer
// cannot share their backing file, the stored content itself). Readers
// through the page cache share the inode with writers, as on a local file
// system, and read what they write (readHandle.Read).
func (n *node) writerElsewhere(ctx context.Context) bool {
	s := n.fsys.settler
	return s != nil && s.passedThrough(ctx)
}

// opened notes whether h reads through the page cache (no direct I/O).
func (h *readHandle) opened(fl uint32) {
	h.buffered = fl&gofuse.FOPEN_DIRECT_IO == 0
}

// writeFlags tells whether an open with flags writes (O_TRUNC too).
func writeFlags(flags uint32) bool {
	return flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0
}

// Read reads through the handle the file was opened with, or, on a
// read-only mount whose files the kernel opens without asking (noOpen),
// by the node's object.
func (n *node) Read(ctx context.Context, f ffs.FileHandle, dest []byte, off int64) (gofuse.ReadResult, syscall.Errno) {
	if r, ok := f.(ffs.FileReader); ok {
		return r.Read(ctx, dest, off)
	}
	return n.noOpenRead(ctx, dest, off)
}

// noOpenRead answers a READ with no handle: a read-only mount answers
// OPEN with ENOSYS (FUSE's no_open), so that opening and closing a file
// costs no round trip at all — a cat of a cached small file is served by
// the kernel alone (its pages are kept: no_open implies KEEP_CACHE, and
// the change feed drops them when the object changes; a replaced object
// is a new inode). The price: no passthrough there, and each READ the
// page cache cannot serve opens the object by id and copies the bytes
// (a splice from a file closed before go-fuse sends the reply would read
// a closed descriptor). Writable mounts keep OPEN: a writer's close is
// what pushes its file.
func (n *node) noOpenRead(ctx context.Context, dest []byte, off int64) (_ gofuse.ReadResult, e syscall.Errno) {
	defer n.fsys.guard("read", &e)
	p, ok := n.path()
	if !ok {
		return nil, syscall.ENOENT
	}
	ctx, cancel := n.fsys.opCtx(ctx, true)
	defer cancel()
	f, err := n.fsys.tree.OpenID(ctx, p, n.id())
	if err != nil {
		return nil, n.fsys.errno(err)
	}
	defer f.Close()
	m, err := f.ReadAtContext(ctx, dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		n.fsys.log.Warn("read failed", "id", n.id(), "off", off, "err", err)
		return nil, n.fsys.errno(err)
	}
	return gofuse.ReadResultData(dest[:m]), 0
}

// Flush flushes the handle; with none (noOpen) it answers ENOSYS, so the
// kernel sends no FLUSH at close again (the mount is read-only).
func (n *node) Flush(ctx context.Context, f ffs.FileHandle) syscall.Errno {
	if fl, ok := f.(ffs.FileFlusher); ok {
		return fl.Flush(ctx)
	}
	if f == nil && n.fsys.noOpen {
		return syscall.ENOSYS
	}
	return 0
}

// quickOpen opens a small file for reading without asking the store:
// with the change feed, the node's Info is the truth about its object,
// and the kernel serves a cached file's reads from its pages, so most
// opens of small files never read (cat of a file read before). The
// object is opened by the first READ, by id, so the handle reads the
// object it was opened on even if its path has been taken since. Read-only
// handles need no FLUSH (FOPEN_NOFLUSH: one request less per close).
// Large files open eagerly, for passthrough.
func (n *node) quickOpen(p string) (*readHandle, uint32, bool) {
	if !n.fsys.notified {
		return nil, 0, false
	}
	info := n.getInfo()
	if info == nil || info.ID() == (fs.ID{}) || info.Size() < 0 || info.Size() >= passthroughMin || info.Rights()&views.Read == 0 || n.writing() {
		return nil, 0, false
	}
	h := &readHandle{fsys: n.fsys, node: n, p: p, id: info.ID()}
	if !n.fsys.pins.add(h) {
		return nil, 0, false // being dropped by this mount: open it now
	}
	var fl uint32 = gofuse.FOPEN_KEEP_CACHE | gofuse.FOPEN_NOFLUSH
	n.mu.Lock()
	if n.cachedID != info.ID() {
		fl = gofuse.FOPEN_NOFLUSH // drop another version's pages
		n.cachedID = info.ID()
	}
	n.mu.Unlock()
	h.opened(fl)
	return h, fl, true
}

// follow moves h to its node's object when a writer of the node pushed
// a new one since h opened. The new object is opened first: one already
// replaced again (the next push has dropped it, its node not told yet)
// leaves h where it is, on the object it holds open or has pinned.
func (h *readHandle) follow(ctx context.Context) {
	cur := h.node.id()
	h.mu.Lock()
	same := cur == h.id || cur == (fs.ID{})
	h.mu.Unlock()
	if same {
		return
	}
	p, ok := h.node.path()
	if !ok {
		return
	}
	f, err := h.fsys.tree.OpenID(ctx, p, cur)
	if err != nil {
		return
	}
	h.mu.Lock()
	if h.id == cur { // another READ of h followed first
		h.mu.Unlock()
		f.Close()
		return
	}
	old := h.f
	if old == nil {
		h.fsys.pins.remove(h) // a quick open not yet read: pinned by the id it leaves
	}
	h.id, h.f, h.p = cur, f, p
	h.local, _ = f.File()
	h.mu.Unlock()
	if old != nil {
		// Closed a little later: a READ answered just before may still
		// be spliced from its descriptor once its callback has returned.
		time.AfterFunc(replacedGrace, func() { old.Close() })
	}
}

// replacedGrace is how long an object a handle no longer reads stays open
// for replies in flight (follow).
const replacedGrace = 2 * time.Second

// file returns the open object, opening it on first use.
func (h *readHandle) file(ctx context.Context) (*views.File, *os.File, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f == nil {
		f, err := h.fsys.tree.OpenID(ctx, h.p, h.id)
		if err != nil {
			if fs.KindOf(err) == fs.NotExist {
				return nil, nil, syscall.ESTALE // dropped since the open
			}
			return nil, nil, h.fsys.errno(err)
		}
		h.f = f
		h.local, _ = f.File()
		h.fsys.pins.remove(h)
	}
	return h.f, h.local, 0
}

// Read reads at off: spliced from the local file when whole, else through
// the store, bounded by the operation timeout.
//
// A handle reads what its inode holds now, as on a local file system:
// the object this mount's writers pushed last, and, through the page
// cache, what they have written so far while they write (a handle with
// direct I/O, opened during a rewrite, reads the last pushed version
// whole). The kernel takes a short READ through the page cache for the
// end of the file and cuts the inode's size there, so a reader of an
// older, shorter version (tail -f after an append) would make the next
// O_APPEND write land over the appended bytes, and other readers see the
// file cut short.
func (h *readHandle) Read(ctx context.Context, dest []byte, off int64) (_ gofuse.ReadResult, e syscall.Errno) {
	defer h.fsys.guard("read", &e)
	if h.buffered {
		// Not a rewrite's: it starts empty, and a READ the kernel sent
		// before the truncation, answered short from it, would leave a
		// page of zeros in the cache. Readers get the last pushed
		// version meanwhile.
		if c := h.node.openContent(); c != nil && !c.truncated {
			if r, ok := c.readLive(dest, off); ok {
				return r, 0
			}
		}
	}
	ctx, cancel := h.fsys.opCtx(ctx, true)
	defer cancel()
	h.follow(ctx)
	f, local, e := h.file(ctx)
	if e != 0 {
		return nil, e
	}
	if local != nil {
		return h.fromFile(local, dest, off, len(dest))
	}
	// Content still being fetched: wait for the range in the cache file,
	// then read it from there.
	cf, n, err := f.FileAt(ctx, off, len(dest))
	if err != nil && !errors.Is(err, io.EOF) {
		h.fsys.log.Warn("read failed", "id", f.Stat().ID(), "off", off, "err", err)
		return nil, h.fsys.errno(err)
	}
	if n == 0 {
		return gofuse.ReadResultData(nil), 0
	}
	return h.fromFile(cf, dest, off, n)
}

// fromFile answers a read with n bytes at off of a local file: spliced to
// the kernel (the bytes cross no buffer of ours) when the reply fits in a
// pipe, which the mount's max_read makes every READ's do (maxRead), else
// read into dest — go-fuse would try the splice, fail and log it.
func (h *readHandle) fromFile(f *os.File, dest []byte, off int64, n int) (gofuse.ReadResult, syscall.Errno) {
	if n+spliceSlack <= splice.MaxPipeSize() {
		return gofuse.ReadResultFd(f.Fd(), off, n), 0
	}
	m, err := f.ReadAt(dest[:n], off)
	if err != nil && !errors.Is(err, io.EOF) {
		h.fsys.log.Warn("read failed", "file", f.Name(), "off", off, "err", err)
		return nil, syscall.EIO
	}
	return gofuse.ReadResultData(dest[:m]), 0
}

// spliceSlack is what a spliced reply needs in the pipe besides its data:
// the reply's header and a page go-fuse keeps free.
const spliceSlack = 8 << 10

// passthroughMin is the smallest object handed to the kernel for
// passthrough: below it, registering the backing file (two ioctls per
// open and close) costs more than the reads it saves, and the page cache
// (KEEP_CACHE) serves repeated reads without asking us at all.
const passthroughMin = 1 << 20

// PassthroughFd gives the kernel the cached file to read directly.
//
// The kernel wants every open of an inode in one mode: an OPEN reply asking
// for passthrough while another open of the inode reads through the page
// cache (or the reverse) fails the open with EIO. go-fuse asks this of the
// first open only (under its lock, while no backing file is registered for
// the inode) and gives later opens the same backing file, so the other
// direction is ours: no passthrough while an open of the inode is cached —
// say readers that opened it cold, before the content was all here — or
// open for writing, until go-fuse has released it (release.go).
func (h *readHandle) PassthroughFd() (int, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.node
	n.mu.Lock()
	defer n.mu.Unlock()
	if h.local != nil && h.f.Stat().Size() >= passthroughMin && n.cachedOpens == 0 {
		return int(h.local.Fd()), true
	}
	n.cachedOpens++
	h.cached = true
	return -1, false
}

// settled ends the count of a handle without passthrough (cachedOpens).
func (n *node) settled() {
	n.mu.Lock()
	n.cachedOpens--
	n.mu.Unlock()
}

func (h *readHandle) Release(ctx context.Context) (e syscall.Errno) {
	defer h.fsys.guard("release", &e)
	h.mu.Lock()
	f, cached := h.f, h.cached
	h.cached = false
	h.mu.Unlock()
	if cached {
		h.fsys.afterRelease(ctx, h.node.settled)
	}
	h.mu.Lock()
	h.fsys.pins.remove(h)
	h.mu.Unlock()
	if f == nil {
		return 0 // never read: never opened
	}
	if err := f.Close(); err != nil && fs.KindOf(err) != fs.Other {
		h.fsys.log.Debug("close", "err", err)
	}
	return 0
}
