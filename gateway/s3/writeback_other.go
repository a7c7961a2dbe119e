//go:build !linux

package s3

import "os"

// startWriteback is a no-op where sync_file_range is missing.
func startWriteback(*os.File, int64, int64) {}
