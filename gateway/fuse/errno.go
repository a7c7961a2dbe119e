package fuse

import (
	"context"
	"errors"
	"syscall"

	"github.com/datagate/datagate/fs"
)

// kindErrno maps every error kind to the errno a FUSE client sees. The
// table test runs over fs.AllKinds, so a new kind fails it until mapped.
var kindErrno = map[fs.Kind]syscall.Errno{
	fs.Other:       syscall.EIO,
	fs.NotExist:    syscall.ENOENT,
	fs.Exist:       syscall.EEXIST,
	fs.Permission:  syscall.EACCES,
	fs.NotEmpty:    syscall.ENOTEMPTY,
	fs.IsDir:       syscall.EISDIR,
	fs.NotDir:      syscall.ENOTDIR,
	fs.Invalid:     syscall.EINVAL,
	fs.Unavailable: syscall.EIO, // after the store's bounded timeout
	fs.NoSpace:     syscall.ENOSPC,
	fs.Unsupported: syscall.ENOTSUP,
}

// errno turns any error into the syscall.Errno go-fuse needs (it turns
// anything else into ENOSYS). An errno in the chain is kept; a request
// the kernel interrupted is EINTR; the rest goes by kind.
func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) && e != 0 {
		switch e {
		case syscall.ENOSPC, syscall.EDQUOT, syscall.ENOTEMPTY, syscall.EISDIR, syscall.ENOTDIR, syscall.ENAMETOOLONG, syscall.EROFS, syscall.EINTR:
			return e
		}
	}
	if errors.Is(err, context.Canceled) {
		return syscall.EINTR
	}
	if x, ok := kindErrno[fs.KindOf(err)]; ok {
		return x
	}
	return syscall.EIO
}
