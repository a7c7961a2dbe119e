//go:build linux && (amd64 || arm64)

package local

import (
	"os"
	"syscall"
)

// startWriteback asks the kernel to start writing [off, off+n) of f to
// disk and returns without waiting (sync_file_range with
// SYNC_FILE_RANGE_WRITE), so the fsync at the end of a Put finds little
// left to write. It is only a hint: errors are left to that fsync.
func startWriteback(f *os.File, off, n int64) {
	const syncFileRangeWrite = 2
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.Syscall6(syscall.SYS_SYNC_FILE_RANGE, fd, uintptr(off), uintptr(n), syncFileRangeWrite, 0, 0)
	})
}
