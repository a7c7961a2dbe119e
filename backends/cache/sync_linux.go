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
