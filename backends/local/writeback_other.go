//go:build !linux

package local

import "os"

// StartWriteback is a no-op where sync_file_range is missing.
func StartWriteback(*os.File, int64, int64) {}
