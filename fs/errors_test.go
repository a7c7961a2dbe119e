package fs

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"syscall"
	"testing"

	"github.com/datagate/datagate/backends"
)

func TestKindOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want Kind
	}{
		{nil, Other},
		{errors.New("boom"), Other},
		{E(NotEmpty, "rmdir", "a", nil), NotEmpty},
		{fmt.Errorf("wrapped: %w", E(Permission, "open", "x", nil)), Permission},
		{os.ErrNotExist, NotExist},
		{&os.PathError{Op: "open", Path: "x", Err: syscall.ENOENT}, NotExist},
		{&os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}, NoSpace},
		{syscall.EDQUOT, NoSpace},
		{syscall.ENOTEMPTY, NotEmpty},
		{syscall.EISDIR, IsDir},
		{syscall.ENOTDIR, NotDir},
		{syscall.ENAMETOOLONG, Invalid},
		{iofs.ErrExist, Exist},
		{iofs.ErrInvalid, Invalid},
		{fmt.Errorf("fetch: %w", backends.ErrUnavailable), Unavailable},
		{context.DeadlineExceeded, Unavailable},
		{backends.ErrNoSpace, NoSpace},
		{errors.ErrUnsupported, Unsupported},
		// The outermost kinded error wins over what it wraps.
		{E(Invalid, "put", "x", backends.ErrUnavailable), Invalid},
		// Wrap keeps the kind of its cause.
		{Wrap("get", "x", os.ErrNotExist), NotExist},
	} {
		if got := KindOf(tc.err); got != tc.want {
			t.Errorf("KindOf(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestErrorUnwrapsToSentinels(t *testing.T) {
	for _, k := range AllKinds {
		err := E(k, "op", "path", nil)
		if KindOf(err) != k {
			t.Errorf("KindOf(E(%v)) = %v", k, KindOf(err))
		}
		if s := sentinel(k); s != nil && !errors.Is(err, s) {
			t.Errorf("E(%v) does not match its sentinel", k)
		}
		if k.String() == "" || k.String() == "unknown kind" {
			t.Errorf("kind %d has no name", k)
		}
	}
	cause := errors.New("disk on fire")
	err := E(Unavailable, "read", "obj", cause)
	if !errors.Is(err, cause) || !errors.Is(err, backends.ErrUnavailable) {
		t.Error("E does not unwrap to both its cause and its sentinel")
	}
	if got := err.Error(); got != "read obj: disk on fire" {
		t.Errorf("message %q", got)
	}
	if Wrap("x", "y", nil) != nil {
		t.Error("Wrap(nil) is not nil")
	}
}
