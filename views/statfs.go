package views

import (
	"syscall"

	"github.com/datagate/datagate/fs"
)

func statfs(dir string) (Statfs, error) {
	var s syscall.Statfs_t
	if err := syscall.Statfs(dir, &s); err != nil {
		return Statfs{}, fs.Wrap("statfs", dir, err)
	}
	return Statfs{BlockSize: int64(s.Bsize), Blocks: s.Blocks, Free: s.Bfree, Avail: s.Bavail}, nil
}
