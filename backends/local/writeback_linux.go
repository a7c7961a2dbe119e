//go:build linux

package local

import (
	"os"

	"golang.org/x/sys/unix"
)

// StartWriteback asks the kernel to start writing [off, off+n) of f to
// disk and returns without waiting (sync_file_range with
// SYNC_FILE_RANGE_WRITE), so that a later fsync finds little left to
// write, and dirty pages do not pile up for a whole large file. It is
// only a hint: errors are left to that fsync. Put uses it; front-ends do
// for their spools.
func StartWriteback(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
	})
}
