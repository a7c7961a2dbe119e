package local

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// changed is fi's ctime.
func changed(fi os.FileInfo) time.Time {
	t, err := ctime(fi)
	if err != nil {
		return fi.ModTime()
	}
	return t
}

// ctime returns when fi's file last changed, data or metadata.
func ctime(fi os.FileInfo) (time.Time, error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return time.Time{}, errors.ErrUnsupported
	}
	return time.Unix(st.Ctim.Unix()), nil
}
