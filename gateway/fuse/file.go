package fuse

import (
	"context"
	"errors"
	"io"
	"os"
	"syscall"

	ffs "github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/views"
)

// readHandle reads an object through the store: lazily fetched content
// through the cache, or, when the content is whole on local disk, the
// plain file — spliced to the kernel, or handed to it for passthrough so
// reads bypass this process entirely.
type readHandle struct {
	// immutable after Open
	fsys  *filesys
	f     *views.File
	local *os.File // the whole content, owned by f; nil while not cached
}

var (
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
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		if n.fsys.ro {
			return nil, 0, syscall.EROFS
		}
		w, e := n.openWriter(ctx, flags&syscall.O_TRUNC != 0)
		if e != 0 {
			return nil, 0, e
		}
		return w, gofuse.FOPEN_DIRECT_IO, 0
	}
	p, ok := n.path()
	if !ok {
		return nil, 0, syscall.ENOENT
	}
	if n.pending() {
		return nil, 0, syscall.EBUSY // not in the store until its writer closes
	}
	octx, cancel := n.fsys.opCtx(ctx, true)
	defer cancel()
	f, err := n.fsys.tree.Open(octx, p)
	if err != nil {
		return nil, 0, n.fsys.errno(err)
	}
	h := &readHandle{fsys: n.fsys, f: f}
	h.local, _ = f.File()
	// Content is immutable per object id (the change feed flushes the
	// pages of a re-crawled version), so the kernel may keep its pages
	// across opens. When the path now holds another object than this
	// inode's, or the size was unknown, bypass the page cache instead.
	var fl uint32 = gofuse.FOPEN_KEEP_CACHE
	n.mu.Lock()
	if n.cachedID != f.Stat().ID() {
		// Pages of another version (written here, or replaced):
		// without KEEP_CACHE the kernel drops them at this open.
		fl = 0
		n.cachedID = f.Stat().ID()
	}
	n.mu.Unlock()
	if old := n.getInfo(); old == nil || old.ID() != f.Stat().ID() || old.Size() != f.Stat().Size() {
		fl = gofuse.FOPEN_DIRECT_IO
		h.local = nil // no passthrough for an inode whose attributes lie
		if old != nil && old.ID() == f.Stat().ID() {
			n.setInfo(f.Stat()) // the size, learnt at open
		}
	}
	return h, fl, 0
}

// Read reads at off: spliced from the local file when whole, else through
// the store, bounded by the operation timeout.
func (h *readHandle) Read(ctx context.Context, dest []byte, off int64) (_ gofuse.ReadResult, e syscall.Errno) {
	defer h.fsys.guard("read", &e)
	if h.local != nil {
		return gofuse.ReadResultFd(h.local.Fd(), off, len(dest)), 0
	}
	ctx, cancel := h.fsys.opCtx(ctx, true)
	defer cancel()
	n, err := h.f.ReadAtContext(ctx, dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		h.fsys.log.Warn("read failed", "id", h.f.Stat().ID(), "off", off, "err", err)
		return nil, h.fsys.errno(err)
	}
	return gofuse.ReadResultData(dest[:n]), 0
}

// passthroughMin is the smallest object handed to the kernel for
// passthrough: below it, registering the backing file (two ioctls per
// open and close) costs more than the reads it saves, and the page cache
// (KEEP_CACHE) serves repeated reads without asking us at all.
const passthroughMin = 1 << 20

// PassthroughFd gives the kernel the cached file to read directly.
func (h *readHandle) PassthroughFd() (int, bool) {
	if h.local == nil || h.f.Stat().Size() < passthroughMin {
		return -1, false
	}
	return int(h.local.Fd()), true
}

func (h *readHandle) Release(ctx context.Context) (e syscall.Errno) {
	defer h.fsys.guard("release", &e)
	if err := h.f.Close(); err != nil && fs.KindOf(err) != fs.Other {
		h.fsys.log.Debug("close", "err", err)
	}
	return 0
}
