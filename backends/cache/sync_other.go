//go:build !linux

package cache

import "os"

func datasync(f *os.File) error { return f.Sync() }

func preallocate(*os.File, int64, int64) {}

func freeBytes(string) (int64, bool) { return 0, false }
