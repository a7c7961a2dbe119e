package sftp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pkgsftp "github.com/pkg/sftp"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/gateway/httpserve"
	"github.com/datagate/datagate/views"
)

// handlers serve one SFTP session's requests from the user's Tree. pkg/sftp
// calls them from its worker goroutines, possibly concurrently.
type handlers struct {
	// immutable after newHandlers
	s    *Server
	tree *views.Tree
	log  *slog.Logger

	handles atomic.Int64 // open files and directories

	mu sync.Mutex
	// guarded by mu
	uploads map[string]*upload // open write handles by path, for setstat
	opened  []*upload          // write opens whose HANDLE reply the shim has yet to see
}

func (s *Server) newHandlers(tree *views.Tree, log *slog.Logger) *handlers {
	return &handlers{s: s, tree: tree, log: log, uploads: map[string]*upload{}}
}

// claimOpened hands the shim the upload of the next HANDLE reply to a
// write OPEN (see shim.go): write opens succeed and are answered in order.
func (h *handlers) claimOpened() *upload {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.opened) == 0 {
		return nil
	}
	u := h.opened[0]
	h.opened[0] = nil
	h.opened = h.opened[1:]
	return u
}

func (h *handlers) pkgHandlers() pkgsftp.Handlers {
	return pkgsftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h}
}

// guard turns a panic into an internal error with one log line, and any
// error into the shape pkg/sftp reports (see status.go). Internal errors
// are logged, since the client is not told what they were.
func (h *handlers) guard(errp *error, op, p string, start time.Time) {
	if v := recover(); v != nil {
		h.log.Error("panic in SFTP handler", "op", op, "path", p, "panic", v, "stack", string(debug.Stack()))
		*errp = failure(pkgsftp.ErrSSHFxFailure, "internal server error")
		h.observe(op, start, *errp)
		return
	}
	h.observe(op, start, *errp)
	if *errp == nil || errors.Is(*errp, io.EOF) {
		return
	}
	if k := fs.KindOf(*errp); (k == fs.Other || k == fs.Unavailable || k == fs.NoSpace) && !isStatus(*errp) {
		h.log.Warn("SFTP request failed", "op", op, "path", p, "err", *errp)
	}
	*errp = toStatus(*errp)
}

func isStatus(err error) bool {
	var se *statusError
	return errors.As(err, &se)
}

// acquire takes one of the session's handle slots.
func (h *handlers) acquire() error {
	if h.handles.Add(1) > int64(h.s.opts.MaxHandles) {
		h.handles.Add(-1)
		return failure(pkgsftp.ErrSSHFxFailure, "too many open handles (at most %d per session)", h.s.opts.MaxHandles)
	}
	return nil
}

func (h *handlers) releaseHandle() { h.handles.Add(-1) }

// Fileread opens a file for reading. Reads are lazy: each ReadAt fetches
// what it needs through the store, at any offset, many at once.
func (h *handlers) Fileread(r *pkgsftp.Request) (_ io.ReaderAt, err error) {
	defer h.guard(&err, "open", r.Filepath, time.Now())
	if err := h.acquire(); err != nil {
		return nil, err
	}
	if sr := h.reader(r.Filepath); sr != nil {
		return sr, nil
	}
	f, err := h.tree.Open(r.Context(), r.Filepath)
	if err != nil {
		h.releaseHandle()
		return nil, err
	}
	return &download{h: h, f: f, ctx: r.Context(), path: r.Filepath}, nil
}

// download is an open file being read. It keeps the handle's context
// (pkg/sftp gives ReadAt none); the context ends when the handle closes.
type download struct {
	h    *handlers
	f    *views.File
	ctx  context.Context
	path string
	once sync.Once
}

func (d *download) ReadAt(p []byte, off int64) (n int, err error) {
	defer d.h.guard(&err, "read", d.path, time.Now())
	if off < 0 {
		// The offset is a uint64 on the wire: 2^63 and beyond arrive here
		// negative. Nothing is that large.
		return 0, io.EOF
	}
	if size := d.f.Size(); size >= 0 && off >= size {
		return 0, io.EOF
	}
	n, err = d.f.ReadAtContext(d.ctx, p, off)
	return n, readErr(d.path, err)
}

// readErr is what a client is told of a failed read of p's content:
// not there, not allowed, unavailable or no space, by p; anything else
// (a provider's file that is a directory, a registered range past its
// end) is the server's trouble, an internal error whose detail goes to
// the log only. It was "Bad message" with the cache's and the
// provider's words, their name and path. io.EOF stays as it is.
func readErr(p string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return fs.Wrap("read", p, httpserve.FetchErr(err))
}

func (d *download) Close() (err error) {
	defer d.h.guard(&err, "close", d.path, time.Now())
	d.once.Do(func() {
		err = d.f.Close()
		d.h.releaseHandle()
	})
	return err
}

// Filewrite opens a file for writing (see openUpload).
func (h *handlers) Filewrite(r *pkgsftp.Request) (_ io.WriterAt, err error) {
	defer h.guard(&err, "open", r.Filepath, time.Now())
	return h.openUpload(r)
}

// OpenFile opens a file for reading and writing (sshfs): the same spool.
func (h *handlers) OpenFile(r *pkgsftp.Request) (_ pkgsftp.WriterAtReaderAt, err error) {
	defer h.guard(&err, "open", r.Filepath, time.Now())
	return h.openUpload(r)
}

// Filecmd runs the path commands. chmod and chown (setstat of
// permissions, uid, gid) are accepted and ignored: the Tree's modes
// reflect the user's rights, not settable bits.
func (h *handlers) Filecmd(r *pkgsftp.Request) (err error) {
	defer h.guard(&err, r.Method, r.Filepath, time.Now())
	ctx := r.Context()
	switch r.Method {
	case "Setstat":
		return h.setstat(r)
	case "Rename":
		return h.rename(ctx, r.Filepath, r.Target, false)
	case "Rmdir":
		return h.tree.Rmdir(ctx, r.Filepath)
	case "Remove":
		return h.remove(ctx, r.Filepath)
	case "Mkdir":
		return h.tree.Mkdir(ctx, r.Filepath)
	case "Link", "Symlink":
		return failure(pkgsftp.ErrSSHFxOpUnsupported, "%s: links are not supported", r.Method)
	}
	return failure(pkgsftp.ErrSSHFxOpUnsupported, "%s: not supported", r.Method)
}

// PosixRename is rename replacing the target (posix-rename@openssh.com).
func (h *handlers) PosixRename(r *pkgsftp.Request) (err error) {
	defer h.guard(&err, "posix-rename", r.Filepath, time.Now())
	return h.rename(r.Context(), r.Filepath, r.Target, true)
}

// StatVFS reports the space of the data directory (statvfs@openssh.com).
func (h *handlers) StatVFS(r *pkgsftp.Request) (_ *pkgsftp.StatVFS, err error) {
	defer h.guard(&err, "statvfs", r.Filepath, time.Now())
	if _, err := h.tree.Stat(r.Context(), r.Filepath); err != nil {
		return nil, err
	}
	st, err := h.tree.Statfs(r.Context())
	if err != nil {
		return nil, err
	}
	bs := uint64(st.BlockSize)
	return &pkgsftp.StatVFS{
		Bsize: bs, Frsize: bs, Blocks: st.Blocks, Bfree: st.Free, Bavail: st.Avail,
		Namemax: views.MaxName,
	}, nil
}

// setstat sets the modification time (of the open upload of that path if
// there is one, so "put -p" works, else of the stored file) and the size.
func (h *handlers) setstat(r *pkgsftp.Request) error {
	flags, attrs := r.AttrFlags(), r.Attributes()
	h.mu.Lock()
	up := h.uploads[r.Filepath]
	h.mu.Unlock()
	if flags.Size {
		if up != nil {
			if err := up.truncate(int64(attrs.Size)); err != nil {
				return err
			}
		} else if err := h.truncate(r.Context(), r.Filepath, int64(attrs.Size)); err != nil {
			return err
		}
	}
	if flags.Acmodtime {
		mt := time.Unix(int64(attrs.Mtime), 0)
		if up != nil {
			up.setModTime(mt)
			return nil
		}
		return h.tree.Chtimes(r.Context(), r.Filepath, mt)
	}
	if up == nil && !flags.Size {
		// Permissions or owner alone, ignored: but of a file that
		// exists (chmod of a missing file succeeded silently).
		_, err := h.tree.Stat(r.Context(), r.Filepath)
		return err
	}
	return nil
}

// Filelist lists directories and stats paths. Symbolic links do not
// exist in a Tree: lstat is stat, readlink is unsupported.
func (h *handlers) Filelist(r *pkgsftp.Request) (_ pkgsftp.ListerAt, err error) {
	defer h.guard(&err, r.Method, r.Filepath, time.Now())
	switch r.Method {
	case "List":
		fi, err := h.tree.Stat(r.Context(), r.Filepath)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			return nil, fs.E(fs.NotDir, "opendir", r.Filepath, nil)
		}
		if err := h.acquire(); err != nil {
			return nil, err
		}
		l := &lister{h: h, ctx: r.Context(), path: r.Filepath, dir: info{fi, h.s.started}, writing: h.writingIn(r.Filepath)}
		l.extra, l.dots = l.writing, 2
		return l, nil
	case "Stat", "Lstat":
		// A file this session is writing exists for it already (sshfs
		// stats what it just created), though no one else sees it yet.
		h.mu.Lock()
		up := h.uploads[r.Filepath]
		h.mu.Unlock()
		if up != nil {
			return up.listerAt()
		}
		fi, err := h.tree.Stat(r.Context(), r.Filepath)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() && fi.Size() < 0 {
			fi = h.learnSize(r.Context(), r.Filepath, fi)
		}
		return oneInfo{info{fi, h.s.started}}, nil
	}
	return nil, failure(pkgsftp.ErrSSHFxOpUnsupported, "%s: not supported (there are no symbolic links)", r.Method)
}

// learnSize opens a registered object not read yet, whose size is not
// known (-1): opening learns it from the provider. Reported as 0, it
// made sshfs read such a file as empty (the kernel reads no further than
// the size), and OpenSSH's reget had nothing to resume from. A stat
// costs the provider's answer once; listings do not open.
func (h *handlers) learnSize(ctx context.Context, p string, fi *views.Info) *views.Info {
	f, err := h.tree.Open(ctx, p)
	if err != nil {
		return fi // reported as 0, as before; reading will tell
	}
	f.Close()
	if nfi, err := h.tree.Stat(ctx, p); err == nil {
		return nfi
	}
	return fi
}

// info adapts views.Info for SFTP attributes: an unknown size (-1, a
// registered object not read yet) is reported as 0, and a missing time
// (the root, view roots, an object registered without one) as the
// server's start, as the FUSE and WebDAV front-ends do: the zero time
// read as year 1 in sftp's ls, and wrapped to 2042 in the attributes'
// 32 bits (sshfs, rclone).
type info struct {
	*views.Info
	started time.Time
}

func (i info) Size() int64 { return max(i.Info.Size(), 0) }

func (i info) ModTime() time.Time {
	if t := i.Info.ModTime(); !t.IsZero() {
		return t
	}
	return i.started
}

// Uid and Gid are 0 (files belong to no account of the server's host),
// sent so that the attributes carry an owner: OpenSSH's chown and chgrp
// read it before their setstat and stop without it ("Can't get current
// ownership of remote file"). The setstat is then accepted and ignored.
func (i info) Uid() uint32 { return 0 }
func (i info) Gid() uint32 { return 0 }

// named is an entry listed under another name ("." and "..").
type named struct {
	info
	name string
}

func (n named) Name() string { return n.name }

type oneInfo struct{ fi info }

func (o oneInfo) ListAt(ls []os.FileInfo, off int64) (int, error) {
	if off > 0 || len(ls) == 0 {
		return 0, io.EOF
	}
	ls[0] = o.fi
	return 1, io.EOF
}

// listPage is how many entries a lister asks the Tree for at once.
const listPage = 1000

// lister pages a directory out of Tree.ReadDir, merging in the files the
// session is writing there: they are listed as they are so far, as on
// OpenSSH's server (sshfs caches a listing made while a file was being
// written, which left the file out of "ls" for a while after its close).
// pkg/sftp asks for consecutive offsets; an offset out of sequence
// restarts the listing.
type lister struct {
	h       *handlers
	ctx     context.Context // the directory handle's
	path    string
	dir     info      // the directory, listed as "." and ".."
	writing []*upload // the session's uploads in the directory, by name
	once    sync.Once

	mu sync.Mutex
	// guarded by mu
	dots  int           // of "." and "..", how many are still to list
	buf   []*views.Info // fetched, not yet returned
	extra []*upload     // writing not yet returned
	next  int64         // offset of the next entry
	after string        // last name fetched
	done  bool          // the Tree has no more
}

// writingIn returns the session's uploads in directory dir, by name.
func (h *handlers) writingIn(dir string) []*upload {
	h.mu.Lock()
	var out []*upload
	for p, u := range h.uploads {
		if path.Dir(p) == dir {
			out = append(out, u)
		}
	}
	h.mu.Unlock()
	slices.SortFunc(out, func(a, b *upload) int { return strings.Compare(path.Base(a.where()), path.Base(b.where())) })
	return out
}

func (l *lister) ListAt(ls []os.FileInfo, off int64) (n int, err error) {
	defer l.h.guard(&err, "readdir", l.path, time.Now())
	l.mu.Lock()
	defer l.mu.Unlock()
	if off != l.next {
		// Only a client that seeks gets here: restart and skip.
		l.buf, l.extra, l.dots, l.next, l.after, l.done = nil, l.writing, 2, 0, "", false
		for l.next < off {
			if _, err := l.entry(); err != nil {
				return 0, err
			}
		}
	}
	for n < len(ls) {
		fi, err := l.entry()
		if err != nil {
			return n, err
		}
		ls[n] = fi
		n++
	}
	if l.dots == 0 && len(l.buf) == 0 && len(l.extra) == 0 && l.done {
		return n, io.EOF
	}
	return n, nil
}

// entry returns the next entry, or io.EOF. Called with mu held. The
// first two are "." and "..", as OpenSSH's server lists them: sshfs
// passes them on (ls -a showed neither), other clients skip them.
func (l *lister) entry() (os.FileInfo, error) {
	if l.dots > 0 {
		l.dots--
		l.next++
		return named{l.dir, strings.Repeat(".", 2-l.dots)}, nil
	}
	for {
		if len(l.buf) == 0 && !l.done {
			if err := l.fill(); err != nil {
				return nil, err
			}
			continue
		}
		if len(l.extra) > 0 {
			u := l.extra[0]
			name := path.Base(u.where())
			if len(l.buf) == 0 || name <= l.buf[0].Name() {
				l.extra = l.extra[1:]
				if len(l.buf) > 0 && name == l.buf[0].Name() {
					l.buf = l.buf[1:] // the stored version: the spool is newer
				}
				fi, err := u.info()
				if err != nil {
					continue // closed meanwhile: the Tree's entry, if any, was listed
				}
				l.next++
				return fi, nil
			}
		}
		if len(l.buf) == 0 {
			return nil, io.EOF
		}
		fi := info{l.buf[0], l.h.s.started}
		l.buf = l.buf[1:]
		l.next++
		return fi, nil
	}
}

// fill fetches the next page. Called with mu held.
func (l *lister) fill() error {
	page, err := l.h.tree.ReadDir(l.ctx, l.path, l.after, listPage)
	if err != nil {
		return err
	}
	if len(page) < listPage {
		l.done = true
	}
	if len(page) > 0 {
		l.after = page[len(page)-1].Name()
	}
	l.buf = append(l.buf, page...)
	return nil
}

func (l *lister) Close() error {
	l.once.Do(l.h.releaseHandle)
	return nil
}
