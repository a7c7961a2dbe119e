package fuse

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/fs"
)

func TestErrnoEveryKind(t *testing.T) {
	want := map[fs.Kind]syscall.Errno{
		fs.Other:       syscall.EIO,
		fs.NotExist:    syscall.ENOENT,
		fs.Exist:       syscall.EEXIST,
		fs.Permission:  syscall.EACCES,
		fs.NotEmpty:    syscall.ENOTEMPTY,
		fs.IsDir:       syscall.EISDIR,
		fs.NotDir:      syscall.ENOTDIR,
		fs.Invalid:     syscall.EINVAL,
		fs.Unavailable: syscall.EIO,
		fs.NoSpace:     syscall.ENOSPC,
		fs.Unsupported: syscall.ENOTSUP,
	}
	for _, k := range fs.AllKinds {
		t.Run(k.String(), func(t *testing.T) {
			w, ok := want[k]
			if !ok {
				t.Fatalf("kind %v has no errno in the test table", k)
			}
			if _, ok := kindErrno[k]; !ok {
				t.Fatalf("kind %v is not mapped in kindErrno", k)
			}
			err := fmt.Errorf("wrapped: %w", fs.E(k, "op", "/a/b", nil))
			if got := errno(err); got != w {
				t.Fatalf("errno(%v) = %v, want %v", k, got, w)
			}
		})
	}
}

func TestErrnoOthers(t *testing.T) {
	for _, c := range []struct {
		err  error
		want syscall.Errno
	}{
		{nil, 0},
		{errors.New("boom"), syscall.EIO},
		{fmt.Errorf("fetch: %w", backends.ErrUnavailable), syscall.EIO},
		{context.DeadlineExceeded, syscall.EIO},
		{fmt.Errorf("read: %w", context.Canceled), syscall.EINTR},
		{fs.Wrap("put", "/x", syscall.ENOSPC), syscall.ENOSPC},
		{fs.E(fs.Invalid, "lookup", "/x", syscall.ENAMETOOLONG), syscall.ENAMETOOLONG},
		{syscall.EROFS, syscall.EROFS},
	} {
		if got := errno(c.err); got != c.want {
			t.Errorf("errno(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
