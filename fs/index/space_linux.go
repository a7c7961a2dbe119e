package index

import "syscall"

// freeBytes returns the bytes free to unprivileged users on the file
// system holding dir (ok false when it cannot be asked).
func freeBytes(dir string) (int64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}
