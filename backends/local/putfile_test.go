package local

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPutFile copies a file larger than one write-back step through the
// kernel; the check sees the written copy, and a failed check or a short
// source leaves neither the file nor a temporary file. CleanTemp counts
// and removes temporary files older than a time.
func TestPutFile(t *testing.T) {
	p := newFixture(t, nil)
	ctx := ctxT(t)
	data := make([]byte, writebackEvery+12345)
	for i := range data {
		data[i] = byte(i * 7 >> 3)
	}
	srcName := filepath.Join(t.TempDir(), "src")
	os.WriteFile(srcName, append(bytes.Clone(data), "tail not copied"...), 0o644)
	src, err := os.Open(srcName)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	src.Seek(99, io.SeekStart) // PutFile reads from the start anyway

	var seen bytes.Buffer
	checked := false
	err = p.PutFile(ctx, "d/ok", src, int64(len(data)), &seen, func() error {
		checked = true
		return nil
	})
	if err != nil || !checked || !bytes.Equal(seen.Bytes(), data) {
		t.Fatalf("PutFile: %v; checked %v, read back %d bytes (equal %v)", err, checked, seen.Len(), bytes.Equal(seen.Bytes(), data))
	}
	if got, err := os.ReadFile(filepath.Join(p.Root(), "d", "ok")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("copy: %d bytes, %v", len(got), err)
	}

	bad := errors.New("bad copy")
	if err := p.PutFile(ctx, "d/bad", src, int64(len(data)), io.Discard, func() error { return bad }); !errors.Is(err, bad) {
		t.Errorf("failed check: %v", err)
	}
	if err := p.PutFile(ctx, "d/short", src, int64(len(data))+100, io.Discard, nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short source: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.PutFile(cctx, "d/cancelled", src, int64(len(data)), io.Discard, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if err := p.PutFile(ctx, "d/nocheck", src, int64(len(data)), nil, nil); err != nil {
		t.Errorf("without read-back: %v", err)
	}
	for _, name := range []string{"d/bad", "d/short", "d/cancelled"} {
		if _, err := os.Stat(filepath.Join(p.Root(), name)); err == nil {
			t.Errorf("%s left in place", name)
		}
	}
	if n, _, err := p.CleanTemp(time.Now(), false); n != 0 || err != nil {
		t.Errorf("temporary files left by failed PutFiles: %d, %v", n, err)
	}

	// The file system's clock: near time.Now, and a file changed after it
	// is not older.
	now, err := p.Now()
	if d := time.Since(now); err != nil || d < -time.Second || d > time.Second {
		t.Errorf("Now: %v (%v from time.Now), %v", now, d, err)
	}
	os.WriteFile(filepath.Join(p.Root(), tmpDir, "put-x"), data[:10], 0o644)
	if fi, err := os.Stat(filepath.Join(p.Root(), tmpDir, "put-x")); err != nil || changed(fi).Before(now) {
		t.Errorf("a file written after Now (%v): %v %v", now, fi, err)
	}
	if n, b, err := p.CleanTemp(time.Now().Add(-time.Hour), true); n != 0 || b != 0 || err != nil {
		t.Errorf("CleanTemp of a file newer than the bound: %d %d %v", n, b, err)
	}
	if n, b, err := p.CleanTemp(time.Now().Add(time.Second), true); n != 1 || b != 10 || err != nil {
		t.Errorf("CleanTemp: %d %d %v", n, b, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(p.Root(), tmpDir)); len(ents) != 0 {
		t.Errorf("left after CleanTemp: %v", ents)
	}
}
