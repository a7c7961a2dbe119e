package local

import (
	"bytes"
	"context"
	"errors"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// chunks is a bufferWriter: it writes its content in pieces of its own.
type chunks struct{ parts [][]byte }

func (c *chunks) Read([]byte) (int, error) { return 0, errors.New("read instead of WriteTo") }
func (c *chunks) LargeBuffers()            {}
func (c *chunks) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for _, b := range c.parts {
		m, err := w.Write(b)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TestPutFiles joins files by the kernel, reading the copy back; a total
// other than announced leaves nothing. TestPutBuffers: a bufferWriter
// source writes itself, checked against the size as a reader is.
func TestPutFiles(t *testing.T) {
	p := newFixture(t, nil)
	ctx := ctxT(t)
	dir := t.TempDir()
	data := make([]byte, writebackEvery+54321)
	for i := range data {
		data[i] = byte(i * 5 >> 2)
	}
	cuts := []int{0, 0, 1000, writebackEvery - 1, len(data)} // one file empty
	var names []string
	for i := 1; i < len(cuts); i++ {
		name := filepath.Join(dir, string(rune('a'+i)))
		if err := os.WriteFile(name, data[cuts[i-1]:cuts[i]], 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	var seen bytes.Buffer
	if err := p.PutFiles(ctx, "j/ok", names, int64(len(data)), &seen, nil); err != nil || !bytes.Equal(seen.Bytes(), data) {
		t.Fatalf("PutFiles: %v, read back %d bytes", err, seen.Len())
	}
	if got, err := os.ReadFile(filepath.Join(p.Root(), "j/ok")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("joined file: %d bytes, %v", len(got), err)
	}
	for _, size := range []int64{int64(len(data)) - 1, int64(len(data)) + 1} {
		if err := p.PutFiles(ctx, "j/bad", names, size, io.Discard, nil); !errors.Is(err, iofs.ErrInvalid) {
			t.Errorf("size %d of %d: %v", size, len(data), err)
		}
	}
	if _, err := os.Stat(filepath.Join(p.Root(), "j/bad")); err == nil {
		t.Error("j/bad left in place")
	}
	if n, _, err := p.CleanTemp(time.Now(), false); n != 0 || err != nil {
		t.Errorf("temporary files left: %d, %v", n, err)
	}
}

func TestPutBuffers(t *testing.T) {
	p := newFixture(t, nil)
	ctx := ctxT(t)
	src := func() *chunks {
		return &chunks{parts: [][]byte{[]byte("hello, "), []byte("buffered "), []byte("world")}}
	}
	const want = "hello, buffered world"
	for _, size := range []int64{int64(len(want)), -1} {
		if err := p.Put(ctx, "b/ok", src(), size); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if got, err := os.ReadFile(filepath.Join(p.Root(), "b/ok")); err != nil || string(got) != want {
			t.Fatalf("size %d: %q, %v", size, got, err)
		}
	}
	for _, size := range []int64{int64(len(want)) - 1, int64(len(want)) + 1, 3} {
		if err := p.Put(ctx, "b/bad", src(), size); !errors.Is(err, iofs.ErrInvalid) {
			t.Errorf("size %d of %d: %v", size, len(want), err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.Put(cctx, "b/bad", src(), -1); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if _, err := os.Stat(filepath.Join(p.Root(), "b/bad")); err == nil {
		t.Error("b/bad left in place")
	}
	if n, _, err := p.CleanTemp(time.Now(), false); n != 0 || err != nil {
		t.Errorf("temporary files left: %d, %v", n, err)
	}
}
