package fuse

import (
	"context"
	"sync"
	"syscall"

	ffs "github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/datagate/datagate/views"
)

// dirPage is how many entries one Tree.ReadDir call fetches.
const dirPage = 1024

// dirStream lists a directory in pages of Tree.ReadDir, so a directory
// of any size streams in bounded memory. It is both the DirStream of
// Readdir and the directory handle go-fuse uses (OpendirHandle): as the
// handle it also answers READDIRPLUS lookups from the page it just
// listed, without a second trip to the index per entry.
type dirStream struct {
	// immutable after newDirStream
	n *node
	p string

	mu sync.Mutex
	// guarded by mu
	page  []*views.Info
	i     int    // next entry of page
	after string // last name listed, for the next page
	done  bool   // the last page was short
	off   uint64 // entries handed out, counting "." and ".."
	last  *views.Info
}

var (
	_ ffs.DirStream        = (*dirStream)(nil)
	_ ffs.FileReaddirenter = (*dirStream)(nil)
	_ ffs.FileLookuper     = (*dirStream)(nil)
	_ ffs.FileSeekdirer    = (*dirStream)(nil)
	_ ffs.FileReleasedirer = (*dirStream)(nil)
)

func (n *node) newDirStream() (*dirStream, syscall.Errno) {
	if !n.dir {
		return nil, syscall.ENOTDIR
	}
	p, ok := n.path()
	if !ok {
		return nil, syscall.ENOENT
	}
	return &dirStream{n: n, p: p}, 0
}

// Readdir lists directory n.
func (n *node) Readdir(ctx context.Context) (_ ffs.DirStream, e syscall.Errno) {
	defer n.fsys.guard("readdir", &e)
	d, e := n.newDirStream()
	if e != 0 {
		return nil, e
	}
	return d, 0
}

// OpendirHandle opens directory n for listing.
//
// With the change feed, the kernel keeps the listing (FOPEN_CACHE_DIR):
// a directory listed once is listed again from the page cache, with no
// request to us, until the feed reports a change under it and follow
// drops the directory's pages (NotifyContent). The index is then read
// only when the kernel asks for entries. Without the feed nothing is
// kept, and the first page is read here, so a directory the user may not
// list fails at opendir.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (_ ffs.FileHandle, _ uint32, e syscall.Errno) {
	defer n.fsys.guard("opendir", &e)
	d, e := n.newDirStream()
	if e != 0 {
		return nil, 0, e
	}
	if n.fsys.notified && !n.EmbeddedInode().IsRoot() {
		// Not the root: its listing changes with the view set too.
		return d, gofuse.FOPEN_CACHE_DIR | gofuse.FOPEN_KEEP_CACHE, 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if e := d.fill(ctx); e != 0 {
		return nil, 0, e
	}
	return d, 0, 0
}

// fill fetches the next page when the current one is used up.
func (d *dirStream) fill(ctx context.Context) syscall.Errno {
	if d.i < len(d.page) || d.done {
		return 0
	}
	ctx, cancel := d.n.fsys.opCtx(ctx, true)
	defer cancel()
	d.n.fsys.pages.Add(1)
	page, err := d.n.fsys.tree.ReadDir(ctx, d.p, d.after, dirPage)
	if err != nil {
		return d.n.fsys.errno(err)
	}
	d.page, d.i = page, 0
	d.done = len(page) < dirPage
	if len(page) > 0 {
		d.after = page[len(page)-1].Name()
	}
	return 0
}

// next returns the next entry, or nil at the end.
func (d *dirStream) next(ctx context.Context) (*gofuse.DirEntry, syscall.Errno) {
	if d.off < 2 {
		name := "."
		if d.off == 1 {
			name = ".."
		}
		d.off++
		return &gofuse.DirEntry{Name: name, Mode: syscall.S_IFDIR, Off: d.off}, 0
	}
	if e := d.fill(ctx); e != 0 {
		return nil, e
	}
	if d.i >= len(d.page) {
		return nil, 0
	}
	info := d.page[d.i]
	d.i++
	d.off++
	d.last = info
	mode := uint32(syscall.S_IFREG)
	if info.IsDir() {
		mode = syscall.S_IFDIR
	}
	return &gofuse.DirEntry{Name: info.Name(), Mode: mode, Off: d.off}, 0
}

// Readdirent is the handle's listing (go-fuse serialises calls per handle).
func (d *dirStream) Readdirent(ctx context.Context) (_ *gofuse.DirEntry, e syscall.Errno) {
	defer d.n.fsys.guard("readdir", &e)
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.next(ctx)
}

// HasNext and Next make dirStream a DirStream.
func (d *dirStream) HasNext() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.off < 2 {
		return true
	}
	if d.fill(d.n.fsys.life) != 0 {
		return true // Next reports the error
	}
	return d.i < len(d.page)
}

func (d *dirStream) Next() (gofuse.DirEntry, syscall.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	de, e := d.next(d.n.fsys.life)
	if de == nil {
		return gofuse.DirEntry{}, e
	}
	return *de, e
}

func (d *dirStream) Close() {}

// Lookup answers READDIRPLUS for the entry just listed from the page.
func (d *dirStream) Lookup(ctx context.Context, name string, out *gofuse.EntryOut) (_ *ffs.Inode, e syscall.Errno) {
	defer d.n.fsys.guard("lookup", &e)
	d.mu.Lock()
	last := d.last
	d.mu.Unlock()
	if last != nil && last.Name() == name {
		return d.n.child(ctx, name, last, out), 0
	}
	return d.n.Lookup(ctx, name, out)
}

// Seekdir restarts the listing and skips to entry off (telldir/seekdir,
// rewinddir). Offsets count entries, so seeking costs a re-listing.
func (d *dirStream) Seekdir(ctx context.Context, off uint64) (e syscall.Errno) {
	defer d.n.fsys.guard("seekdir", &e)
	d.mu.Lock()
	defer d.mu.Unlock()
	if off == d.off {
		return 0
	}
	d.page, d.i, d.after, d.done, d.off, d.last = nil, 0, "", false, 0, nil
	for d.off < off {
		de, e := d.next(ctx)
		if e != 0 {
			return e
		}
		if de == nil {
			break
		}
	}
	return 0
}

func (d *dirStream) Releasedir(ctx context.Context, flags uint32) {}
