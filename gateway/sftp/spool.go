package sftp

import (
	"context"
	"errors"
	"io"
	iofs "io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pkgsftp "github.com/pkg/sftp"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/store"
	"github.com/datagate/datagate/views"
)

// Uploads are spooled: SFTP clients write at offsets, in any order and
// with many writes in flight, and the Tree takes a stream. The spool is a
// file in the data directory; on close it is streamed through
// Tree.Create, which makes the object visible only once it is durable.
// A handle that ends with the connection (a dropped client) is discarded:
// nothing becomes visible. Opening an existing file without truncating it
// (reput, append, sshfs writes) first copies it into the spool: the new
// version replaces it on close.
//
// The handles of one session open on one path share its upload, as the
// file descriptors of one local file share it: processes appending to a
// file through one sshfs mount keep every line (each handle had its own
// copy, and the last close won, with NULs where the others' lines had
// been), and a read handle opened meanwhile reads the spool (tail -f).
// Every close of a write handle pushes the spool if it changed; the
// spool goes when its last handle closes.

const spoolPrefix = "upload-"

// cleanSpool removes spool files left by a crash.
func cleanSpool(dir string, log *slog.Logger) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), spoolPrefix) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err == nil {
				log.Info("removed an upload spool file left by an earlier run", "file", e.Name())
			}
		}
	}
}

// upload is a file being written by one session: the spool its handles
// share.
type upload struct {
	h *handlers
	// The path, which a rename in the session moves (where): the push
	// goes to the file's name at the time.
	at atomic.Pointer[string]
	// The first handle's, but not ended by its close (pkg/sftp gives
	// WriteAt none, and ends a handle's context when it closes): the
	// other handles' pushes and the stream go on. A dropped session
	// closes every handle, which abandons the upload.
	ctx context.Context
	f   *os.File // the spool, already unlinked

	// guarded by h.mu
	writers int // open write handles; 0: out of h.uploads
	refs    int // open handles of any kind; 0: f is closed

	dirty   atomic.Bool // written, truncated or new: close creates a version
	aborted atomic.Bool // the connection ended: close discards
	removed atomic.Bool // removed, or renamed over, in the session: close discards
	lost    atomic.Bool // a write or truncate of the spool failed: nothing may be stored

	mu sync.Mutex
	// guarded by mu
	modTime    time.Time
	streamable bool    // new or truncated, and streaming has not stopped
	st         *stream // the stream the writes feed, if started (stream.go)
}

// openUpload opens a write handle: on the upload of the path if this
// session has one open (truncated if asked), else on a new one. A new or
// truncated file is streamed (stream.go) for as long as its writes allow.
// pkg/sftp runs OPEN and CLOSE one at a time, so no close ends the upload
// while an open shares it.
func (h *handlers) openUpload(r *pkgsftp.Request) (*writeHandle, error) {
	ctx, p := r.Context(), r.Filepath
	pf := r.Pflags()
	if err := h.acquire(); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			h.releaseHandle()
		}
	}()
	h.mu.Lock()
	u := h.uploads[p]
	if u != nil && !pf.Excl {
		u.writers++
		u.refs++
	}
	h.mu.Unlock()
	if u != nil {
		if pf.Excl {
			return nil, failure(pkgsftp.ErrSSHFxFailure, "open %s: file exists", p)
		}
		w := &writeHandle{upload: u, appending: pf.Append}
		if pf.Trunc {
			if err := u.truncate(0); err != nil {
				ok = true // w.Close releases the handle
				w.Close()
				return nil, err
			}
		}
		// Only an open that succeeds gets a HANDLE reply (claimOpened).
		h.mu.Lock()
		h.opened = append(h.opened, u)
		h.mu.Unlock()
		ok = true
		return w, nil
	}
	fi, err := h.tree.Stat(ctx, p)
	exists := err == nil
	switch {
	case err != nil && !errors.Is(err, iofs.ErrNotExist):
		return nil, err
	case exists && fi.IsDir():
		return nil, fs.E(fs.IsDir, "open", p, nil)
	case exists && pf.Excl:
		return nil, failure(pkgsftp.ErrSSHFxFailure, "open %s: file exists", p)
	case !exists && !pf.Creat:
		return nil, fs.E(fs.NotExist, "open", p, nil)
	case exists && fi.Mode()&0o200 == 0:
		return nil, fs.E(fs.Permission, "open", p, errors.New("no write right"))
	}
	if err := h.checkParentWritable(ctx, p); err != nil {
		return nil, err
	}
	// A path the view's template cannot take (or a read-only view) fails
	// here, at OPEN, not at CLOSE after the whole upload.
	if err := h.tree.CheckCreate(ctx, p); err != nil {
		return nil, err
	}
	// Nameless: the spool vanishes with the handle, however the session
	// ends, even if the process dies.
	f, err := store.NewSpool(h.s.spoolDir)
	if err != nil {
		return nil, fs.Wrap("spool", p, err)
	}
	u = &upload{h: h, ctx: context.WithoutCancel(ctx), f: f, writers: 1, refs: 1}
	u.at.Store(&p)
	if exists && !pf.Trunc {
		if err := u.copyIn(ctx); err != nil {
			f.Close()
			return nil, err
		}
	} else {
		u.dirty.Store(true) // a new or truncated file: even an empty one is written
		u.streamable = true
	}
	h.mu.Lock()
	h.uploads[p] = u
	h.opened = append(h.opened, u)
	h.mu.Unlock()
	ok = true
	return &writeHandle{upload: u, appending: pf.Append}, nil
}

// checkParentWritable fails early, rather than after the whole upload, when
// the user may not write where the file would go. A missing parent is
// left to Create: directories are implied by what is under them.
func (h *handlers) checkParentWritable(ctx context.Context, p string) error {
	dir := path.Dir(p)
	fi, err := h.tree.Stat(ctx, dir)
	if err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return nil
		}
		return err
	}
	if !fi.IsDir() {
		return fs.E(fs.NotDir, "open", p, nil)
	}
	if fi.Mode()&0o200 == 0 {
		return fs.E(fs.Permission, "open", p, errors.New("no write right here"))
	}
	return nil
}

// copyIn copies the current content into the spool (copy on write).
func (u *upload) copyIn(ctx context.Context) error {
	src, err := u.h.tree.Open(ctx, u.where())
	if err != nil {
		return err
	}
	defer src.Close()
	if _, err := io.Copy(u.f, src); err != nil {
		return fs.Wrap("copy on write", u.where(), err)
	}
	return nil
}

func (u *upload) WriteAt(p []byte, off int64) (n int, err error) {
	defer u.h.guard(&err, "write", u.where(), time.Now())
	if off < 0 {
		return 0, failure(pkgsftp.ErrSSHFxFailure, "write %s: offset beyond 2^63", u.where())
	}
	u.dirty.Store(true)
	n, err = u.f.WriteAt(p, off)
	if err != nil {
		// The spool misses this write (ENOSPC): what it holds is not
		// the file the client sent, and must not be stored.
		u.lost.Store(true)
		return n, fs.Wrap("write spool", u.where(), err)
	}
	if st := u.stream(); st != nil {
		st.wrote(off, off+int64(n))
	}
	return n, nil
}

// stream returns the stream writes feed, starting it on the first write
// of a streamable upload.
func (u *upload) stream() *stream {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.st == nil && u.streamable {
		u.st = u.startStream()
	}
	return u.st
}

// stopStream stops streaming: later writes only go to the spool. It
// returns the stream, if one was started, for the caller to finish or
// abandon.
func (u *upload) stopStream() *stream {
	u.mu.Lock()
	defer u.mu.Unlock()
	st := u.st
	u.st, u.streamable = nil, false
	return st
}

func (u *upload) ReadAt(p []byte, off int64) (n int, err error) {
	defer u.h.guard(&err, "read", u.where(), time.Now())
	if off < 0 {
		return 0, io.EOF
	}
	return u.f.ReadAt(p, off)
}

func (u *upload) truncate(size int64) error {
	u.dirty.Store(true)
	if st := u.stopStream(); st != nil {
		st.abandon() // the spool, truncated, is pushed at close
	}
	if err := u.f.Truncate(size); err != nil {
		u.lost.Store(true)
		return fs.Wrap("truncate spool", u.where(), err)
	}
	return nil
}

// setModTime sets the new version's mtime. On a handle that writes
// nothing (sshfs's touch of an existing file) close only sets the times
// of the object: the same content makes no new version.
func (u *upload) setModTime(t time.Time) {
	u.mu.Lock()
	u.modTime = t
	u.mu.Unlock()
}

// TransferError is pkg/sftp telling us the session ended with the handle
// open: the upload is incomplete and must not become visible.
func (u *upload) TransferError(err error) {
	u.aborted.Store(true)
	u.h.log.Info("upload abandoned: the connection ended before the file was closed", "path", u.where(), "err", err)
}

func (u *upload) where() string { return *u.at.Load() }

// errLost is the close (or fsync) of an upload that lost a write: the
// client was told of the write's failure, and learns that nothing was
// stored (a partial file became a version when the spool's disk filled).
func errLost(p string) error {
	return failure(pkgsftp.ErrSSHFxFailure, "%s: not stored: a write to it failed", p)
}

// remove removes p. A file the session is writing goes with its name,
// as an unlinked local file does: its handles write on into the spool
// and their close stores nothing (remove of a new file said "no such
// file", and the file came back at close).
func (h *handlers) remove(ctx context.Context, p string) error {
	err := h.tree.Remove(ctx, p)
	if err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return err
	}
	if h.unlinkUpload(p) {
		return nil
	}
	return err
}

// unlinkUpload takes the upload at p, if the session has one, out of the
// name space: its close stores nothing.
func (h *handlers) unlinkUpload(p string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	u := h.uploads[p]
	if u == nil {
		return false
	}
	delete(h.uploads, p)
	u.removed.Store(true)
	return true
}

// rename moves from to to, over an existing to if replace
// (posix-rename). A file the session is writing moves with its open
// handles, as a local file does: their pushes go to the new name
// (rename of a new file said "no such file", and the content went to the
// old name at close). A file being written at to is replaced: its close
// stores nothing.
func (h *handlers) rename(ctx context.Context, from, to string, replace bool) error {
	h.mu.Lock()
	u, tu := h.uploads[from], h.uploads[to]
	h.mu.Unlock()
	if !replace {
		// SFTP v3 rename does not replace: OpenSSH's client relies on
		// it failing when the target exists.
		exists := tu != nil
		if _, err := h.tree.Stat(ctx, to); err == nil {
			exists = true
		} else if !errors.Is(err, iofs.ErrNotExist) {
			return err
		}
		if exists {
			return failure(pkgsftp.ErrSSHFxFailure, "rename %s: %s exists", from, to)
		}
	}
	if u == nil {
		if err := h.tree.Rename(ctx, from, to); err != nil {
			return err
		}
		if tu != nil {
			h.unlinkUpload(to)
		}
		h.moveUploadsUnder(from, to)
		return nil
	}
	if from == to {
		return nil
	}
	// The stored version, if there is one, moves now; the spool follows.
	if err := h.tree.Rename(ctx, from, to); errors.Is(err, iofs.ErrNotExist) {
		// A new file: to must be able to take it.
		if fi, err := h.tree.Stat(ctx, to); err == nil && fi.IsDir() {
			return fs.E(fs.IsDir, "rename", to, nil)
		}
		if err := h.checkParentWritable(ctx, to); err != nil {
			return err
		}
		if err := h.tree.CheckCreate(ctx, to); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.uploads[from] == u {
		delete(h.uploads, from)
	}
	if old := h.uploads[to]; old != nil && old != u {
		old.removed.Store(true)
	}
	h.uploads[to] = u
	u.at.Store(&to)
	return nil
}

// moveUploadsUnder moves the session's uploads in directory from (a
// directory just renamed) to to, as the open files of a local directory
// move with it: their pushes went to the old name, which came back.
func (h *handlers) moveUploadsUnder(from, to string) {
	prefix := strings.TrimSuffix(from, "/") + "/"
	h.mu.Lock()
	defer h.mu.Unlock()
	var moved []*upload
	for p, u := range h.uploads {
		if strings.HasPrefix(p, prefix) {
			moved = append(moved, u)
			delete(h.uploads, p)
		}
	}
	for _, u := range moved {
		np := path.Join(to, strings.TrimPrefix(u.where(), prefix))
		if old := h.uploads[np]; old != nil && old != u {
			old.removed.Store(true)
		}
		h.uploads[np] = u
		u.at.Store(&np)
	}
}

// writeHandle is one open write handle on an upload.
type writeHandle struct {
	*upload
	appending bool // opened with SSH_FXF_APPEND
	shiftOnce sync.Once
	shift     int64 // added to the offsets of an appending handle
	once      sync.Once
}

// WriteAt writes at off. On a handle opened to append, OpenSSH's server
// writes at the end of the file whatever the offset (O_APPEND), and
// clients rely on it in two ways: OpenSSH's reput and sshfs send the
// offsets at the end of the file, which is where they write here too;
// Go's pkg/sftp client counts from 0, which wrote over the start of the
// file here. The first write tells them apart: at offset 0 of a file
// that is not empty, the handle's writes go after what the file held
// then. A true O_APPEND cannot be had: pkg/sftp runs a handle's writes
// on several goroutines, so they arrive here out of the client's order
// (reput sends many at once).
func (w *writeHandle) WriteAt(p []byte, off int64) (int, error) {
	if w.appending && off >= 0 {
		w.shiftOnce.Do(func() {
			if off == 0 {
				if fi, err := w.f.Stat(); err == nil {
					w.shift = fi.Size()
				}
			}
		})
		off += w.shift
	}
	return w.upload.WriteAt(p, off)
}

// Close pushes the spool through Tree.Create if it changed since the last
// push, unless the upload was abandoned (then only times set on the
// handle are applied); the spool is gone once no handle has it open.
// Its error is the CLOSE request's status: a client learns that the file
// was not stored.
func (w *writeHandle) Close() (err error) {
	u := w.upload
	defer u.h.guard(&err, "close", u.where(), time.Now())
	w.once.Do(func() {
		defer u.h.releaseHandle()
		defer u.release()
		u.h.mu.Lock()
		u.writers--
		last := u.writers == 0
		u.h.mu.Unlock()
		if last {
			// Out of the map only after the push: the session's stats
			// see the spool until the new version is there.
			defer func() {
				u.h.mu.Lock()
				if u.h.uploads[u.where()] == u {
					delete(u.h.uploads, u.where())
				}
				u.h.mu.Unlock()
			}()
		}
		if u.aborted.Load() || u.removed.Load() {
			if !last {
				return
			}
			if st := u.stopStream(); st != nil {
				st.abandon()
			}
			return
		}
		if u.lost.Load() {
			if last {
				if st := u.stopStream(); st != nil {
					st.abandon()
				}
			}
			err = errLost(u.where())
			return
		}
		// Cleared before the spool is read: a write from another
		// handle meanwhile makes it dirty again, for the next close.
		if !u.dirty.Swap(false) {
			if last {
				if st := u.stopStream(); st != nil {
					st.abandon()
				}
				u.mu.Lock()
				mt := u.modTime
				u.mu.Unlock()
				if !mt.IsZero() {
					err = u.h.tree.Chtimes(u.ctx, u.where(), mt)
				}
			}
			return
		}
		// The spool may be linked in place only if no handle will
		// write it again.
		if err = u.commit(last); err != nil {
			u.dirty.Store(true)
		}
	})
	return err
}

// release drops a handle's hold on the spool, closing it with the last.
func (u *upload) release() {
	u.h.mu.Lock()
	u.refs--
	done := u.refs == 0
	u.h.mu.Unlock()
	if done {
		u.f.Close()
	}
}

// reader opens a read handle on the spool, if this session is writing p:
// it reads what the session's write handles have written so far.
func (h *handlers) reader(p string) *spoolReader {
	h.mu.Lock()
	defer h.mu.Unlock()
	u := h.uploads[p]
	if u == nil {
		return nil
	}
	u.refs++
	return &spoolReader{u: u}
}

type spoolReader struct {
	u    *upload
	once sync.Once
}

func (r *spoolReader) ReadAt(p []byte, off int64) (int, error) { return r.u.ReadAt(p, off) }

func (r *spoolReader) Close() error {
	r.once.Do(func() {
		r.u.release()
		r.u.h.releaseHandle()
	})
	return nil
}

// commit stores what the spool holds. At close (last), a spool whose
// stream kept up goes to the store with its hash, to be linked in place;
// else, and at an fsync (the handle may write again), the store copies
// it.
func (u *upload) commit(last bool) error {
	var sum []byte
	if st := u.stopStream(); st != nil {
		fi, err := u.f.Stat()
		if err != nil {
			st.abandon()
			return fs.Wrap("spool", u.where(), err)
		}
		if sum, err = st.finish(fi.Size()); err != nil {
			u.h.log.Debug("upload not hashed as it came; the store hashes the spool", "path", u.where(), "err", err)
		}
	}
	if !last {
		sum = nil
	}
	return u.push(sum)
}

// sync makes what was written so far durable and visible
// (fsync@openssh.com): the spool is pushed as a new version, as a close
// would, and the handle stays open; a later write makes close push again.
// The shim calls it when no request of the session is in flight.
func (u *upload) sync() (err error) {
	defer u.h.guard(&err, "fsync", u.where(), time.Now())
	if u.lost.Load() {
		return errLost(u.where())
	}
	if u.aborted.Load() || u.removed.Load() || !u.dirty.Load() {
		return nil
	}
	if err := u.commit(false); err != nil {
		return err
	}
	u.dirty.Store(false)
	u.h.log.Debug("fsync: pushed the upload as a new version", "path", u.where())
	return nil
}

// push stores the spool as a new version; with sum, the SHA-256 of the
// spool computed as it was written, the store may link the spool itself,
// which is then never written again.
func (u *upload) push(sum []byte) error {
	st, err := u.f.Stat()
	if err != nil {
		return fs.Wrap("spool", u.where(), err)
	}
	u.mu.Lock()
	mt := u.modTime
	u.mu.Unlock()
	var r io.Reader = io.NewSectionReader(u.f, 0, st.Size())
	if sum != nil {
		r = store.HashedSpool(u.f, st.Size(), sum)
	}
	_, err = u.h.tree.Create(u.ctx, u.where(), r, views.CreateOptions{Size: st.Size(), ModTime: mt})
	return err
}

// truncate sets the size of a stored file (setstat without an open handle):
// a new version holding the first size bytes, padded with zeros.
func (h *handlers) truncate(ctx context.Context, p string, size int64) error {
	if size < 0 {
		return failure(pkgsftp.ErrSSHFxBadMessage, "truncate %s: size beyond 2^63", p)
	}
	fi, err := h.tree.Stat(ctx, p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fs.E(fs.IsDir, "truncate", p, nil)
	}
	if fi.Size() == size {
		return nil
	}
	var r io.Reader = zeros{}
	if size > 0 {
		f, err := h.tree.Open(ctx, p)
		if err != nil {
			return err
		}
		defer f.Close()
		r = io.MultiReader(io.LimitReader(f, size), zeros{})
	}
	r = io.LimitReader(r, size)
	_, err = h.tree.Create(ctx, p, r, views.CreateOptions{Size: size, ModTime: fi.ModTime()})
	return err
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// listerAt describes the file being written, from its spool.
func (u *upload) listerAt() (pkgsftp.ListerAt, error) { return u.info() }

// info describes the file being written, from its spool.
func (u *upload) info() (spoolInfo, error) {
	st, err := u.f.Stat()
	if err != nil {
		return spoolInfo{}, fs.Wrap("spool", u.where(), err)
	}
	u.mu.Lock()
	mt := u.modTime
	u.mu.Unlock()
	if mt.IsZero() {
		mt = st.ModTime()
	}
	return spoolInfo{name: path.Base(u.where()), size: st.Size(), mtime: mt}, nil
}

// spoolInfo describes an open upload.
type spoolInfo struct {
	name  string
	size  int64
	mtime time.Time
}

func (i spoolInfo) Name() string        { return i.name }
func (i spoolInfo) Size() int64         { return i.size }
func (i spoolInfo) Mode() iofs.FileMode { return 0o644 }
func (i spoolInfo) ModTime() time.Time  { return i.mtime }
func (i spoolInfo) IsDir() bool         { return false }
func (i spoolInfo) Uid() uint32         { return 0 } // as info's
func (i spoolInfo) Gid() uint32         { return 0 }
func (i spoolInfo) Sys() any            { return nil }

func (i spoolInfo) ListAt(ls []os.FileInfo, off int64) (int, error) {
	if off > 0 || len(ls) == 0 {
		return 0, io.EOF
	}
	ls[0] = i
	return 1, io.EOF
}
