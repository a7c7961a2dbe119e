package fuse

import (
	"context"
	"strings"
	"sync"
	"syscall"
	"time"

	ffs "github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/pathtmpl"
	"github.com/datagate/datagate/views"
)

// maxName is the longest file name the tree accepts (views' limit).
const maxName = 255

// node is a file or directory of the mounted tree. Its path is not kept:
// it is computed from the go-fuse inode tree, which go-fuse updates on
// rename, so a node follows its object when it moves.
type node struct {
	ffs.Inode

	// immutable after creation
	fsys *filesys
	dir  bool

	wmu sync.Mutex // held while a writer opens (openWriter)
	// pathMu: a push holds it (read) on the node and its ancestors from
	// computing its path to the object's creation there; a rename or an
	// unlink holds it on the node it moves or drops until go-fuse's tree
	// has the change (holdPath).
	pathMu sync.RWMutex

	mu sync.Mutex
	// guarded by mu
	info        *views.Info           // last known attributes; nil for the root
	writers     map[*writeHandle]bool // open write handles
	content     *content              // what they write, shared (write.go)
	wsize       int64                 // size of the newest write handle's spool
	wmtime      time.Time             // the time the writers' next push sets; zero: now
	cachedID    fs.ID                 // the object whose pages the kernel may keep
	cachedOpens int                   // handles without passthrough, until go-fuse released them (release.go)
	superseded  bool                  // its name gets a new inode at the next lookup (file.go, Open)
	xattr       map[string]string     // extended attributes, read at xattrAt
	xattrAt     time.Time
	xattrGen    int64 // filesys.xattrGen when xattr was read
}

var (
	_ ffs.InodeEmbedder      = (*node)(nil)
	_ ffs.NodeLookuper       = (*node)(nil)
	_ ffs.NodeGetattrer      = (*node)(nil)
	_ ffs.NodeReaddirer      = (*node)(nil)
	_ ffs.NodeOpendirHandler = (*node)(nil)
	_ ffs.NodeOpener         = (*node)(nil)
	_ ffs.NodeCreater        = (*node)(nil)
	_ ffs.NodeSetattrer      = (*node)(nil)
	_ ffs.NodeMkdirer        = (*node)(nil)
	_ ffs.NodeRmdirer        = (*node)(nil)
	_ ffs.NodeUnlinker       = (*node)(nil)
	_ ffs.NodeRenamer        = (*node)(nil)
	_ ffs.NodeStatfser       = (*node)(nil)
	_ ffs.NodeGetxattrer     = (*node)(nil)
	_ ffs.NodeListxattrer    = (*node)(nil)
	_ ffs.NodeSetxattrer     = (*node)(nil)
	_ ffs.NodeRemovexattrer  = (*node)(nil)
)

// path returns the node's path in the tree ("/"-rooted), or false for a
// node no longer in the tree (removed while open).
func (n *node) path() (string, bool) {
	in := n.EmbeddedInode()
	var segs []string
	for !in.IsRoot() {
		name, parent := in.Parent()
		if parent == nil {
			return "", false
		}
		segs = append(segs, name)
		in = parent
	}
	if len(segs) == 0 {
		return "/", true
	}
	var b strings.Builder
	for i := len(segs) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(segs[i])
	}
	return b.String(), true
}

// lockPath holds n's path as it is (pathMu): a rename or unlink of n or
// of a directory above it waits. A push computes its path and creates the
// object there under it; without it, a close racing `mv` pushed to the old
// name after the object had moved away (two objects), and one racing `rm`
// brought the file back.
func (n *node) lockPath() (unlock func()) {
	var held []*node
	for in := n.EmbeddedInode(); in != nil && !in.IsRoot(); {
		if cn, ok := in.Operations().(*node); ok {
			cn.pathMu.RLock()
			held = append(held, cn)
		}
		_, in = in.Parent()
	}
	return func() {
		for _, cn := range held {
			cn.pathMu.RUnlock()
		}
	}
}

// holdPath takes name's path (pathMu) in directory n until the RENAME or
// UNLINK request whose callback got ctx is done, go-fuse's tree included.
func (n *node) holdPath(ctx context.Context, name string) {
	ch := n.GetChild(name)
	if ch == nil {
		return
	}
	cn, ok := ch.Operations().(*node)
	if !ok {
		return
	}
	cn.pathMu.Lock()
	n.fsys.afterRelease(ctx, cn.pathMu.Unlock)
}

// childPath is the path of name in directory n.
func (n *node) childPath(name string) (string, syscall.Errno) {
	if len(name) > maxName {
		return "", syscall.ENAMETOOLONG
	}
	if _, err := pathtmpl.UnescapeSegment(name); err != nil {
		// No object can have this name ("50%.txt": a path segment's %
		// is an escape, README "Paths"): EINVAL now, at lookup, rather
		// than a file that takes writes and fails at close.
		return "", syscall.EINVAL
	}
	p, ok := n.path()
	if !ok {
		return "", syscall.ENOENT
	}
	if p == "/" {
		return "/" + name, 0
	}
	return p + "/" + name, 0
}

func (n *node) setInfo(i *views.Info) {
	n.mu.Lock()
	n.info = i
	n.mu.Unlock()
}

func (n *node) getInfo() *views.Info {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.info
}

// id is the object the node stands for (zero for directories).
func (n *node) id() fs.ID {
	if i := n.getInfo(); i != nil {
		return i.ID()
	}
	return fs.ID{}
}

// writing reports whether the node has open write handles: this mount's
// writer is then the truth about it.
func (n *node) writing() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.writers) > 0
}

// openContent returns what the node's open writers write, if any.
func (n *node) openContent() *content {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.content
}

// supersede makes the next lookup of n's name give a new inode.
func (n *node) supersede() {
	n.mu.Lock()
	n.superseded = true
	n.mu.Unlock()
}

func (n *node) isSuperseded() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.superseded
}

// pending reports whether the node is a file being written that the
// store does not have yet (created, not yet closed).
func (n *node) pending() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.writers) > 0 && (n.info == nil || n.info.ID() == (fs.ID{}))
}

// vanish drops a new file whose push failed from the tree and from the
// kernel's caches. The kernel's deletion takes the directory's lock and
// the file's, which the request that pushed may hold (FSYNC, SETATTR hold
// the file's) or a RENAME or UNLINK waiting for the push's path (the
// directory's): the notification waits for them apart, and vanish for it
// a moment only (a close, which holds neither, sees it done).
func (n *node) vanish() {
	in := n.EmbeddedInode()
	name, parent := in.Parent()
	if parent == nil {
		return
	}
	parent.RmChild(name)
	done := make(chan struct{})
	go func() {
		parent.NotifyDelete(name, in)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(vanishWait):
	}
}

// vanishWait bounds how long a failed push waits for the kernel to drop
// the file (vanish).
const vanishWait = 100 * time.Millisecond

// fill sets out from what the node knows.
func (n *node) fill(out *gofuse.Attr) {
	n.mu.Lock()
	info, writers, wsize, wmtime := n.info, len(n.writers), n.wsize, n.wmtime
	n.mu.Unlock()
	out.Owner = gofuse.Owner{Uid: n.fsys.uid, Gid: n.fsys.gid}
	out.Nlink = 1
	out.Blksize = 128 << 10
	mtime := n.fsys.mounted
	perm := uint32(0o555)
	if !n.dir {
		perm = 0o444
	}
	var size int64
	if info != nil {
		perm = uint32(info.Mode().Perm())
		if t := info.ModTime(); !t.IsZero() {
			mtime = t
		}
		size = info.Size()
	}
	if n.fsys.ro {
		perm &^= 0o222
	}
	if writers > 0 {
		size = wsize
		if !wmtime.IsZero() {
			mtime = wmtime
		}
	}
	if size < 0 {
		size = 0 // learnt at open; such files are read with direct I/O
	}
	if n.dir {
		out.Mode = syscall.S_IFDIR | perm
	} else {
		out.Mode = syscall.S_IFREG | perm
		out.Size = uint64(size)
		out.Blocks = (uint64(size) + 511) / 512
	}
	out.SetTimes(nil, &mtime, &mtime)
}

// child returns the inode for name in n described by info: the one the
// kernel already has when it is the same object (or directory), else a
// new one, so a replaced object never shows its predecessor's pages.
func (n *node) child(ctx context.Context, name string, info *views.Info, out *gofuse.EntryOut) *ffs.Inode {
	if n.fsys.notified && n.EmbeddedInode().IsRoot() {
		// The root's entries are views, or the one view's top level:
		// the view set changes at run time (S3 CreateBucket), which the
		// change feed does not report, so they are trusted 1 s only.
		out.SetEntryTimeout(rootTimeout)
		out.SetAttrTimeout(rootTimeout)
	}
	if ch := n.GetChild(name); ch != nil {
		if cn, ok := ch.Operations().(*node); ok && cn.dir == info.IsDir() && !cn.isSuperseded() && (cn.dir || cn.id() == info.ID() || cn.pending()) {
			if !cn.pending() {
				cn.setInfo(info)
			}
			cn.fill(&out.Attr)
			return ch
		}
	}
	cn := &node{fsys: n.fsys, dir: info.IsDir(), info: info}
	cn.fill(&out.Attr)
	mode := uint32(syscall.S_IFREG)
	if cn.dir {
		mode = syscall.S_IFDIR
	}
	return n.NewInode(ctx, cn, ffs.StableAttr{Mode: mode})
}

// Lookup finds name in directory n.
func (n *node) Lookup(ctx context.Context, name string, out *gofuse.EntryOut) (_ *ffs.Inode, e syscall.Errno) {
	defer n.fsys.guard("lookup", &e)
	p, e := n.childPath(name)
	if e != 0 {
		return nil, e
	}
	// Stat reads the index only (no provider): bounded by the mount's
	// life, without a timer per lookup.
	info, err := n.fsys.tree.Stat(n.fsys.life, p)
	if err != nil {
		// A file being written is not in the store until it is
		// closed; its writer still sees it.
		if ch := n.GetChild(name); ch != nil && fs.KindOf(err) == fs.NotExist {
			if cn, ok := ch.Operations().(*node); ok && cn.pending() {
				cn.fill(&out.Attr)
				return ch, 0
			}
		}
		return nil, n.fsys.errno(err)
	}
	return n.child(ctx, name, info, out), 0
}

// Getattr reports the node's attributes, refreshed from the store when
// the path still holds the same object.
func (n *node) Getattr(ctx context.Context, fh ffs.FileHandle, out *gofuse.AttrOut) (e syscall.Errno) {
	defer n.fsys.guard("getattr", &e)
	if w, ok := fh.(*writeHandle); ok {
		w.fill(&out.Attr)
		return 0
	}
	if !n.dir && n.id() == (fs.ID{}) && !n.writing() {
		return syscall.ENOENT // created here, never pushed
	}
	if p, ok := n.path(); ok && !n.pending() {
		info, err := n.fsys.tree.Stat(n.fsys.life, p)
		switch {
		case err == nil && info.IsDir() == n.dir && (n.dir || info.ID() == n.id()):
			n.setInfo(info)
		case err != nil && fs.KindOf(err) != fs.NotExist:
			return n.fsys.errno(err)
		}
		// Otherwise the path now holds something else (or nothing):
		// this inode keeps describing its own object.
	}
	n.fill(&out.Attr)
	return 0
}

// Statfs reports the space of the file system holding the data.
func (n *node) Statfs(ctx context.Context, out *gofuse.StatfsOut) (e syscall.Errno) {
	defer n.fsys.guard("statfs", &e)
	ctx, cancel := n.fsys.opCtx(ctx, false)
	defer cancel()
	s, err := n.fsys.tree.Statfs(ctx)
	if err != nil {
		return n.fsys.errno(err)
	}
	out.Bsize = uint32(s.BlockSize)
	out.Frsize = uint32(s.BlockSize)
	out.Blocks, out.Bfree, out.Bavail = s.Blocks, s.Free, s.Avail
	out.NameLen = maxName
	return 0
}

// Mkdir makes a directory (a marker object, see views.Tree.Mkdir).
func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *gofuse.EntryOut) (_ *ffs.Inode, e syscall.Errno) {
	defer n.fsys.guard("mkdir", &e)
	if n.fsys.ro {
		return nil, syscall.EROFS
	}
	p, e := n.childPath(name)
	if e != 0 {
		return nil, e
	}
	ctx, cancel := n.fsys.opCtx(ctx, false)
	defer cancel()
	if err := n.fsys.tree.Mkdir(ctx, p); err != nil {
		return nil, n.fsys.errno(err)
	}
	info, err := n.fsys.tree.Stat(ctx, p)
	if err != nil {
		return nil, n.fsys.errno(err)
	}
	return n.child(ctx, name, info, out), 0
}

// Rmdir removes an empty directory.
func (n *node) Rmdir(ctx context.Context, name string) (e syscall.Errno) {
	defer n.fsys.guard("rmdir", &e)
	if n.fsys.ro {
		return syscall.EROFS
	}
	p, e := n.childPath(name)
	if e != 0 {
		return e
	}
	ctx, cancel := n.fsys.opCtx(ctx, false)
	defer cancel()
	return n.fsys.errno(n.fsys.tree.Rmdir(ctx, p))
}

// Unlink removes a file. A file still being written (not yet in the
// store) is dropped: its writer's close then pushes nothing.
func (n *node) Unlink(ctx context.Context, name string) (e syscall.Errno) {
	defer n.fsys.guard("unlink", &e)
	if n.fsys.ro {
		return syscall.EROFS
	}
	n.holdPath(ctx, name) // first: a push of the file may move it meanwhile
	p, e := n.childPath(name)
	if e != 0 {
		return e
	}
	ctx, cancel := n.fsys.opCtx(ctx, false)
	defer cancel()
	defer n.fsys.pinPath(ctx, p)()
	err := n.fsys.tree.Remove(ctx, p)
	if err != nil && fs.KindOf(err) == fs.NotExist {
		if ch := n.GetChild(name); ch != nil {
			if cn, ok := ch.Operations().(*node); ok && cn.pending() {
				return 0
			}
		}
	}
	return n.fsys.errno(err)
}

// Rename moves a file or directory: a metadata change in the store. A
// file still being written just takes its new name; it is pushed there.
func (n *node) Rename(ctx context.Context, name string, newParent ffs.InodeEmbedder, newName string, flags uint32) (e syscall.Errno) {
	defer n.fsys.guard("rename", &e)
	if n.fsys.ro {
		return syscall.EROFS
	}
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	const renameNoReplace, renameExchange = 1, 2
	if flags&renameExchange != 0 {
		return syscall.EINVAL
	}
	// The kernel runs one rename at a time per file system (and holds
	// the directories against unlinks), so taking two never deadlocks.
	// Taken before the paths are computed: a directory above may be
	// moving while they wait for pushes.
	n.holdPath(ctx, name)
	if np != n || newName != name {
		np.holdPath(ctx, newName) // replaced: its writers push nowhere
	}
	from, e := n.childPath(name)
	if e != 0 {
		return e
	}
	to, e := np.childPath(newName)
	if e != 0 {
		return e
	}
	ctx, cancel := n.fsys.opCtx(ctx, false)
	defer cancel()
	if flags&renameNoReplace != 0 {
		if _, err := n.fsys.tree.Stat(ctx, to); err == nil {
			return syscall.EEXIST
		} else if fs.KindOf(err) != fs.NotExist {
			return n.fsys.errno(err)
		}
	}
	defer n.fsys.pinPath(ctx, to)() // replaced, if there
	err := n.fsys.tree.Rename(ctx, from, to)
	if err != nil && fs.KindOf(err) == fs.NotExist {
		if ch := n.GetChild(name); ch != nil {
			if cn, ok := ch.Operations().(*node); ok && cn.pending() {
				return 0
			}
		}
	}
	return n.fsys.errno(err)
}

// Setattr handles truncate (size) and utimes (mtime); mode and owner
// changes are accepted and ignored: rights come from the user's profile.
func (n *node) Setattr(ctx context.Context, fh ffs.FileHandle, in *gofuse.SetAttrIn, out *gofuse.AttrOut) (e syscall.Errno) {
	defer n.fsys.guard("setattr", &e)
	size, hasSize := in.GetSize()
	mtime, hasMtime := in.GetMTime()
	if (hasSize || hasMtime) && n.fsys.ro {
		return syscall.EROFS
	}
	w, _ := fh.(*writeHandle)
	if hasSize {
		if n.dir {
			return syscall.EISDIR
		}
		if w != nil {
			// ftruncate, or O_TRUNC (the kernel sends it apart from the
			// open): the writer pushes it at close.
			if e := w.truncate(int64(size)); e != 0 {
				return e
			}
		} else if e := n.truncatePath(ctx, int64(size)); e != 0 {
			return e
		}
	}
	if hasMtime {
		c := n.openContent()
		if w != nil {
			c = w.c
		}
		switch {
		case c != nil && c.setMtime(mtime):
			// The writers' push sets it.
		case n.pending():
			// Not in the store, its writers just gone: pushed with
			// their time.
		default:
			p, ok := n.path()
			if !ok {
				return syscall.ENOENT
			}
			ctx, cancel := n.fsys.opCtx(ctx, false)
			defer cancel()
			if err := n.fsys.tree.Chtimes(ctx, p, mtime); err != nil {
				return n.fsys.errno(err)
			}
			if info, err := n.fsys.tree.Stat(ctx, p); err == nil && info.IsDir() == n.dir {
				n.setInfo(info)
			}
		}
	}
	if w != nil {
		w.fill(&out.Attr)
	} else {
		n.fill(&out.Attr)
	}
	return 0
}

// truncatePath is truncate(2) by path: the size is everyone's at once, as
// on a local file system. Writers with unpushed writes are truncated and
// pushed now; otherwise the store's content is truncated (and every open
// writer's copy, so later writes land on the new size).
func (n *node) truncatePath(ctx context.Context, size int64) syscall.Errno {
	if c := n.openContent(); c != nil {
		e, live, dirty := c.truncateSpool(size, false)
		if e != 0 {
			return e
		}
		if live && dirty {
			return c.flush(ctx)
		}
	}
	return n.truncate(ctx, size)
}

// truncate sets the size of a file not open for writing: its content, cut
// or zero-extended, is pushed as a new version.
func (n *node) truncate(ctx context.Context, size int64) syscall.Errno {
	if size < 0 {
		return syscall.EINVAL
	}
	w, e := n.openWriter(ctx, size == 0)
	if e != 0 {
		return e
	}
	defer w.Release(ctx)
	if e := w.truncate(size); e != 0 {
		return e
	}
	return w.Flush(ctx)
}
