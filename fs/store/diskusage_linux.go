package store

import "syscall"

// diskUsage returns the bytes used and free (to unprivileged users) on the
// file system holding dir; -1 when it cannot be asked.
func diskUsage(dir string) (used, free int64) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1, -1
	}
	bs := int64(st.Bsize)
	return (int64(st.Blocks) - int64(st.Bfree)) * bs, int64(st.Bavail) * bs
}
