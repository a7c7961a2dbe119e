//go:build !linux

package cache

import "os"

func datasync(f *os.File) error { return f.Sync() }

func preallocate(*os.File, int64, int64) {}
