package fuse

import (
	"bytes"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/datagate/datagate/views"
)

// Files open for writing can be mapped shared (numpy.memmap, databases):
// what is stored through the mapping is pushed like written bytes, at
// close when written before it, else when the mapping goes (RELEASE).
func TestSharedMappingWrites(t *testing.T) {
	e := newEnv(t, map[string]views.Rights{"by-type": views.All}, Options{})
	if err := os.Mkdir(e.path("fc"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := e.path("fc/mapped.grib")
	const size = 3 * 4096
	want := bytes.Repeat([]byte{'.'}, size)
	if err := os.WriteFile(p, want, 0o644); err != nil {
		t.Fatal(err)
	}
	mapRW := func(f *os.File) []byte {
		t.Helper()
		m, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
		if err != nil {
			t.Fatalf("shared writable mapping: %v", err)
		}
		return m
	}
	readBack := func(what string) {
		t.Helper()
		if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: read back %q..., %v", what, got[:min(len(got), 16)], err)
		}
	}

	// Stored through the mapping, then closed.
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := mapRW(f)
	if !bytes.Equal(m, want) {
		t.Fatalf("mapping shows %q...", m[:16])
	}
	copy(m[4096:], "through the mapping")
	copy(want[4096:], "through the mapping")
	if err := syscall.Munmap(m); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("push at close: %v", err)
	}
	readBack("after munmap and close")

	// Mapped, the descriptor closed first, stored afterwards: pushed when
	// the mapping goes.
	f, err = os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	m = mapRW(f)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	copy(m[2*4096:], "after close")
	copy(want[2*4096:], "after close")
	if err := syscall.Munmap(m); err != nil {
		t.Fatal(err)
	}
	// The RELEASE that pushes comes after munmap has returned.
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if got, err := os.ReadFile(p); err == nil && bytes.Equal(got, want) {
			break
		}
		if time.Now().After(end) {
			readBack("5 s after munmap")
		}
	}
}
