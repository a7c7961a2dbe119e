package metrics

import (
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/datagate/datagate/fs"
)

// FUSE operations with series of their own; the rest pass through
// uncounted (Forget, Release, locks, ioctl, ...).
const (
	fuseLookup = iota
	fuseGetAttr
	fuseSetAttr
	fuseMkdir
	fuseUnlink
	fuseRmdir
	fuseRename
	fuseAccess
	fuseGetXAttr
	fuseListXAttr
	fuseSetXAttr
	fuseRemoveXAttr
	fuseCreate
	fuseOpen
	fuseRead
	fuseLseek
	fuseWrite
	fuseFlush
	fuseFsync
	fuseFallocate
	fuseOpenDir
	fuseReadDir
	fuseReadDirPlus
	fuseStatFs
	fuseStatx
	numFuseOps
)

var fuseOps = [numFuseOps]string{
	fuseLookup: "lookup", fuseGetAttr: "getattr", fuseSetAttr: "setattr", fuseMkdir: "mkdir",
	fuseUnlink: "unlink", fuseRmdir: "rmdir", fuseRename: "rename", fuseAccess: "access",
	fuseGetXAttr: "getxattr", fuseListXAttr: "listxattr", fuseSetXAttr: "setxattr",
	fuseRemoveXAttr: "removexattr", fuseCreate: "create", fuseOpen: "open", fuseRead: "read",
	fuseLseek: "lseek", fuseWrite: "write", fuseFlush: "flush", fuseFsync: "fsync",
	fuseFallocate: "fallocate", fuseOpenDir: "opendir", fuseReadDir: "readdir",
	fuseReadDirPlus: "readdirplus", fuseStatFs: "statfs", fuseStatx: "statx",
}

// errnoKinds reads the error kind back from the errno a FUSE operation
// answers, the inverse of gateway/fuse's table. EIO is both Other and
// Unavailable there; it counts as other.
func errnoKind(st fuse.Status) fs.Kind {
	switch syscall.Errno(st) {
	case syscall.ENOENT, syscall.ENODATA:
		return fs.NotExist
	case syscall.EEXIST:
		return fs.Exist
	case syscall.EACCES, syscall.EPERM, syscall.EROFS:
		return fs.Permission
	case syscall.ENOTEMPTY:
		return fs.NotEmpty
	case syscall.EISDIR:
		return fs.IsDir
	case syscall.ENOTDIR:
		return fs.NotDir
	case syscall.EINVAL, syscall.ENAMETOOLONG, syscall.ERANGE:
		return fs.Invalid
	case syscall.ENOSPC, syscall.EDQUOT:
		return fs.NoSpace
	case syscall.ENOTSUP, syscall.ENOSYS:
		return fs.Unsupported
	case syscall.EAGAIN, syscall.ETIMEDOUT:
		return fs.Unavailable
	}
	return fs.Other
}

// FUSE returns the wrapper for gateway/fuse's Options.WrapRaw: every
// mount wrapped with it counts its operations and bytes, and counts as an
// active mount from the kernel's INIT until it is unmounted.
func (m *Metrics) FUSE() func(fuse.RawFileSystem) fuse.RawFileSystem {
	ops := fuseOps[:]
	f := m.frontOf(FUSE, ops, "other", opStatuses)
	return func(raw fuse.RawFileSystem) fuse.RawFileSystem {
		r := &rawFS{RawFileSystem: raw, m: m, f: f}
		for i, name := range fuseOps {
			r.ops[i] = f.ops[name]
		}
		return r
	}
}

// rawFS counts what passes through to the file system it embeds; the
// methods it does not override go straight through.
type rawFS struct {
	fuse.RawFileSystem
	m       *Metrics
	f       *front
	ops     [numFuseOps]*op
	mounted atomic.Bool
}

// done records operation i's outcome; start is its now().
func (r *rawFS) done(i int, start time.Duration, st fuse.Status) fuse.Status {
	if st == fuse.OK {
		r.ops[i].done(0, now()-start, false, fs.Other)
	} else {
		r.ops[i].done(1, now()-start, true, errnoKind(st))
	}
	return st
}

func (r *rawFS) Init(s *fuse.Server) {
	if !r.mounted.Swap(true) {
		r.m.mounts.Inc()
	}
	r.RawFileSystem.Init(s)
}

func (r *rawFS) OnUnmount() {
	if r.mounted.Swap(false) {
		r.m.mounts.Dec()
	}
	r.RawFileSystem.OnUnmount()
}

// Lookup counts a negative entry (OK with node id 0, go-fuse's answer to
// ENOENT when a negative timeout is set) as the not_exist it is.
func (r *rawFS) Lookup(cancel <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	t := now()
	st := r.RawFileSystem.Lookup(cancel, h, name, out)
	if st == fuse.OK && out.NodeId == 0 {
		r.done(fuseLookup, t, fuse.ENOENT)
		return st
	}
	return r.done(fuseLookup, t, st)
}

func (r *rawFS) GetAttr(cancel <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	t := now()
	return r.done(fuseGetAttr, t, r.RawFileSystem.GetAttr(cancel, in, out))
}

func (r *rawFS) SetAttr(cancel <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	t := now()
	return r.done(fuseSetAttr, t, r.RawFileSystem.SetAttr(cancel, in, out))
}

func (r *rawFS) Mkdir(cancel <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	t := now()
	return r.done(fuseMkdir, t, r.RawFileSystem.Mkdir(cancel, in, name, out))
}

func (r *rawFS) Unlink(cancel <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	t := now()
	return r.done(fuseUnlink, t, r.RawFileSystem.Unlink(cancel, h, name))
}

func (r *rawFS) Rmdir(cancel <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	t := now()
	return r.done(fuseRmdir, t, r.RawFileSystem.Rmdir(cancel, h, name))
}

func (r *rawFS) Rename(cancel <-chan struct{}, in *fuse.RenameIn, oldName, newName string) fuse.Status {
	t := now()
	return r.done(fuseRename, t, r.RawFileSystem.Rename(cancel, in, oldName, newName))
}

func (r *rawFS) Access(cancel <-chan struct{}, in *fuse.AccessIn) fuse.Status {
	t := now()
	return r.done(fuseAccess, t, r.RawFileSystem.Access(cancel, in))
}

func (r *rawFS) GetXAttr(cancel <-chan struct{}, h *fuse.InHeader, attr string, dest []byte) (uint32, fuse.Status) {
	t := now()
	n, st := r.RawFileSystem.GetXAttr(cancel, h, attr, dest)
	// ERANGE with a size is how a caller learns the size it needs.
	return n, r.done(fuseGetXAttr, t, st)
}

func (r *rawFS) ListXAttr(cancel <-chan struct{}, h *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	t := now()
	n, st := r.RawFileSystem.ListXAttr(cancel, h, dest)
	return n, r.done(fuseListXAttr, t, st)
}

func (r *rawFS) SetXAttr(cancel <-chan struct{}, in *fuse.SetXAttrIn, attr string, data []byte) fuse.Status {
	t := now()
	return r.done(fuseSetXAttr, t, r.RawFileSystem.SetXAttr(cancel, in, attr, data))
}

func (r *rawFS) RemoveXAttr(cancel <-chan struct{}, h *fuse.InHeader, attr string) fuse.Status {
	t := now()
	return r.done(fuseRemoveXAttr, t, r.RawFileSystem.RemoveXAttr(cancel, h, attr))
}

func (r *rawFS) Create(cancel <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	t := now()
	return r.done(fuseCreate, t, r.RawFileSystem.Create(cancel, in, name, out))
}

func (r *rawFS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	t := now()
	return r.done(fuseOpen, t, r.RawFileSystem.Open(cancel, in, out))
}

// Read counts the bytes of the answer: at most what the result holds (a
// result backed by a file descriptor is sized by the request).
func (r *rawFS) Read(cancel <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	t := now()
	res, st := r.RawFileSystem.Read(cancel, in, buf)
	if st == fuse.OK && res != nil {
		r.f.out.Add(float64(res.Size()))
	}
	return res, r.done(fuseRead, t, st)
}

func (r *rawFS) Lseek(cancel <-chan struct{}, in *fuse.LseekIn, out *fuse.LseekOut) fuse.Status {
	t := now()
	return r.done(fuseLseek, t, r.RawFileSystem.Lseek(cancel, in, out))
}

func (r *rawFS) Write(cancel <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	t := now()
	n, st := r.RawFileSystem.Write(cancel, in, data)
	r.f.in.Add(float64(n))
	return n, r.done(fuseWrite, t, st)
}

// Writev is where go-fuse sends writes first; ENOSYS makes it call Write,
// which then counts.
func (r *rawFS) Writev(cancel <-chan struct{}, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	t := now()
	n, st := r.RawFileSystem.Writev(cancel, in, data)
	if st == fuse.ENOSYS {
		return n, st
	}
	r.f.in.Add(float64(n))
	return n, r.done(fuseWrite, t, st)
}

func (r *rawFS) Flush(cancel <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	t := now()
	return r.done(fuseFlush, t, r.RawFileSystem.Flush(cancel, in))
}

func (r *rawFS) Fsync(cancel <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	t := now()
	return r.done(fuseFsync, t, r.RawFileSystem.Fsync(cancel, in))
}

func (r *rawFS) Fallocate(cancel <-chan struct{}, in *fuse.FallocateIn) fuse.Status {
	t := now()
	return r.done(fuseFallocate, t, r.RawFileSystem.Fallocate(cancel, in))
}

func (r *rawFS) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	t := now()
	return r.done(fuseOpenDir, t, r.RawFileSystem.OpenDir(cancel, in, out))
}

func (r *rawFS) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	t := now()
	return r.done(fuseReadDir, t, r.RawFileSystem.ReadDir(cancel, in, out))
}

func (r *rawFS) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	t := now()
	return r.done(fuseReadDirPlus, t, r.RawFileSystem.ReadDirPlus(cancel, in, out))
}

func (r *rawFS) StatFs(cancel <-chan struct{}, in *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	t := now()
	return r.done(fuseStatFs, t, r.RawFileSystem.StatFs(cancel, in, out))
}

func (r *rawFS) Statx(cancel <-chan struct{}, in *fuse.StatxIn, out *fuse.StatxOut) fuse.Status {
	t := now()
	return r.done(fuseStatx, t, r.RawFileSystem.Statx(cancel, in, out))
}
