package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// LinkFile puts src, a whole local file its owner hands over, in place
// without copying a byte: made durable, hard-linked into the temporary
// directory (through /proc, so that a file opened with O_TMPFILE, which
// has no name, can be linked too) and renamed to path. src is then the
// stored content: its owner must never write to it again.
// linked is false, with a nil error, when src cannot be linked here (on
// another file system, or an unlinked file that was not an O_TMPFILE):
// the caller copies it instead.
func (p *Provider) LinkFile(ctx context.Context, path string, src *os.File) (linked bool, err error) {
	tmp, err := p.putTemp(ctx, path)
	if err != nil {
		return false, err
	}
	if err := src.Chmod(0o644); err != nil {
		return false, p.wrap("put", path, err)
	}
	if err := src.Sync(); err != nil {
		return false, p.wrap("put", path, err)
	}
	rc, err := src.SyscallConn()
	if err != nil {
		return false, p.wrap("put", path, err)
	}
	var b [12]byte
	rand.Read(b[:])
	name := filepath.Join(tmp, "link-"+hex.EncodeToString(b[:]))
	var lerr error
	if err := rc.Control(func(fd uintptr) {
		lerr = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(int(fd)), unix.AT_FDCWD, name, unix.AT_SYMLINK_FOLLOW)
	}); err != nil {
		return false, p.wrap("put", path, err)
	}
	switch {
	case errors.Is(lerr, syscall.EXDEV), errors.Is(lerr, syscall.ENOENT), errors.Is(lerr, syscall.EPERM),
		errors.Is(lerr, syscall.EMLINK), errors.Is(lerr, syscall.ENOTSUP):
		return false, nil
	case lerr != nil:
		return false, p.wrap("put", path, lerr)
	}
	if err := p.place(name, path); err != nil {
		os.Remove(name)
		return false, err
	}
	return true, nil
}
