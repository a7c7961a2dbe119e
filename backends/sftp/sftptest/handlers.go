package sftptest

import (
	"io"
	"os"
	"path"
	"syscall"
	"time"

	pkgsftp "github.com/pkg/sftp"
)

// handlers serve the request server from s.root. Every client path is
// cleaned to an absolute path by pkg/sftp and then made relative to the
// root, so ".." and absolute paths cannot leave it; os.Root refuses
// symbolic links that point outside.
type handlers struct{ s *Server }

func (s *Server) handlers() pkgsftp.Handlers {
	h := handlers{s}
	return pkgsftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h}
}

// local turns a client path into a name relative to the root.
func local(p string) string {
	p = path.Clean("/" + p)
	if p == "/" {
		return "."
	}
	return p[1:]
}

// FailWrites makes every write request fail with err (nil: stop failing),
// as a full disk would with syscall.ENOSPC.
func (s *Server) FailWrites(err error) {
	s.mu.Lock()
	s.writeErr = err
	s.mu.Unlock()
}

func (s *Server) failWrite() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeErr
}

func (h handlers) Fileread(r *pkgsftp.Request) (io.ReaderAt, error) {
	return h.s.root.Open(local(r.Filepath))
}

func (h handlers) Filewrite(r *pkgsftp.Request) (io.WriterAt, error) {
	return h.open(r, os.O_WRONLY)
}

func (h handlers) OpenFile(r *pkgsftp.Request) (pkgsftp.WriterAtReaderAt, error) {
	return h.open(r, os.O_RDWR)
}

func (h handlers) open(r *pkgsftp.Request, mode int) (*file, error) {
	pf := r.Pflags()
	flags := mode
	if pf.Creat {
		flags |= os.O_CREATE
	}
	if pf.Trunc {
		flags |= os.O_TRUNC
	}
	if pf.Excl {
		flags |= os.O_EXCL
	}
	// Append is ignored: the client writes at explicit offsets, which
	// O_APPEND would break.
	f, err := h.s.root.OpenFile(local(r.Filepath), flags, 0o644)
	if err != nil {
		return nil, err
	}
	return &file{File: f, s: h.s}, nil
}

// file fails writes on demand (FailWrites).
type file struct {
	*os.File
	s *Server
}

func (f *file) WriteAt(p []byte, off int64) (int, error) {
	if err := f.s.failWrite(); err != nil {
		return 0, &os.PathError{Op: "write", Path: f.Name(), Err: err}
	}
	return f.File.WriteAt(p, off)
}

func (h handlers) Filecmd(r *pkgsftp.Request) error {
	root, name := h.s.root, local(r.Filepath)
	switch r.Method {
	case "Setstat":
		return h.setstat(r, name)
	case "Rename":
		// SFTP v3 rename does not replace an existing target.
		if _, err := root.Lstat(local(r.Target)); err == nil {
			return &os.LinkError{Op: "rename", Old: name, New: local(r.Target), Err: syscall.EEXIST}
		}
		return root.Rename(name, local(r.Target))
	case "Rmdir":
		fi, err := root.Lstat(name)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return &os.PathError{Op: "rmdir", Path: name, Err: syscall.ENOTDIR}
		}
		return root.Remove(name)
	case "Remove":
		fi, err := root.Lstat(name)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return &os.PathError{Op: "remove", Path: name, Err: syscall.EISDIR}
		}
		return root.Remove(name)
	case "Mkdir":
		return root.Mkdir(name, 0o755)
	}
	// Link and Symlink are not offered: targets would need checking
	// against the root, which tests have not needed.
	return pkgsftp.ErrSSHFxOpUnsupported
}

// PosixRename replaces the target, as posix-rename@openssh.com specifies.
func (h handlers) PosixRename(r *pkgsftp.Request) error {
	if h.s.posixRenameDisabled() {
		return pkgsftp.ErrSSHFxOpUnsupported
	}
	return h.s.root.Rename(local(r.Filepath), local(r.Target))
}

func (h handlers) setstat(r *pkgsftp.Request, name string) error {
	flags, attrs := r.AttrFlags(), r.Attributes()
	if flags.Size {
		f, err := h.s.root.OpenFile(name, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		err = f.Truncate(int64(attrs.Size))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	if flags.Permissions {
		if err := h.s.root.Chmod(name, attrs.FileMode().Perm()); err != nil {
			return err
		}
	}
	if flags.Acmodtime {
		if err := h.s.root.Chtimes(name, time.Unix(int64(attrs.Atime), 0), time.Unix(int64(attrs.Mtime), 0)); err != nil {
			return err
		}
	}
	return nil
}

func (h handlers) Filelist(r *pkgsftp.Request) (pkgsftp.ListerAt, error) {
	name := local(r.Filepath)
	switch r.Method {
	case "List":
		d, err := h.s.root.Open(name)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		fis, err := d.Readdir(-1)
		if err != nil {
			return nil, err
		}
		return lister(fis), nil
	case "Stat":
		fi, err := h.s.root.Stat(name)
		if err != nil {
			return nil, err
		}
		return lister{fi}, nil
	}
	return nil, pkgsftp.ErrSSHFxOpUnsupported
}

func (h handlers) Lstat(r *pkgsftp.Request) (pkgsftp.ListerAt, error) {
	fi, err := h.s.root.Lstat(local(r.Filepath))
	if err != nil {
		return nil, err
	}
	return lister{fi}, nil
}

func (h handlers) Readlink(p string) (string, error) {
	return h.s.root.Readlink(local(p))
}

type lister []os.FileInfo

func (l lister) ListAt(dst []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(dst, l[off:])
	if n < len(dst) {
		return n, io.EOF
	}
	return n, nil
}

var (
	_ pkgsftp.OpenFileWriter       = handlers{}
	_ pkgsftp.PosixRenameFileCmder = handlers{}
	_ pkgsftp.LstatFileLister      = handlers{}
	_ pkgsftp.ReadlinkFileLister   = handlers{}
)
