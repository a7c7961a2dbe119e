//go:build !linux

package local

import (
	"errors"
	"os"
	"time"
)

// changed is fi's mtime here (the ctime's field differs by system): good
// enough for the temporary files, whose mtime nobody sets.
func changed(fi os.FileInfo) time.Time { return fi.ModTime() }

// ctime is not read on these systems: an mtime may be set back (stored
// files carry an old one, see fs/store), so it proves no age.
func ctime(fi os.FileInfo) (time.Time, error) { return time.Time{}, errors.ErrUnsupported }
