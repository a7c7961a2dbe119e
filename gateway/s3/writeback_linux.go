package s3

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing [off, off+n) of f out
// now, without waiting (sync_file_range, SYNC_FILE_RANGE_WRITE): a part
// written into its upload's assembly file goes to disk while the other
// parts arrive, so the fsync of the store's link at Complete, which the
// client waits for, finds little left to write. Only a hint: errors are
// that fsync's.
func startWriteback(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
	})
}
