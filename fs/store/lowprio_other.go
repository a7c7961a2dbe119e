//go:build !linux

package store

// lowPriority is a no-op where threads cannot be niced one by one.
func lowPriority() {}
