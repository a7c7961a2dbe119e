package cache

import (
	"os"
	"syscall"
)

// datasync flushes f's data (and the metadata needed to read it back) but
// not its timestamps: fdatasync, cheaper than fsync on a file being filled.
func datasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return serr
}

// preallocate allocates the blocks of [off, off+n) of f before a fetch
// writes them, as one extent: writing into a hole of a sparse file makes
// the file system reserve and track every page on its own (ext4's delayed
// allocation: a third of the write's CPU, measured with perf), and
// allocate the blocks later at writeback. A fetch that fails leaves its
// unwritten part allocated until the entry is dropped or refetched. Only a
// hint: where it fails (no support, no space) the writes do the work and
// report the errors.
func preallocate(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) { syscall.Fallocate(int(fd), 0, off, n) })
}

// freeBytes is the space left to the process on dir's file system.
func freeBytes(dir string) (int64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * st.Bsize, true
}
