package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/datagate/datagate/cmd/datagate/config"
	"github.com/datagate/datagate/fs"
)

// A get whose context ends (Ctrl-C) stops copying a stored file: the
// stored file's reader does not watch the context, and io.Copy went on to
// the end, so an interrupted get -o of 1 GB still put its whole output in
// place.
func TestLocalReadStopsWhenInterrupted(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "var")
	src := filepath.Join(dir, "a.bin")
	os.WriteFile(src, bytes.Repeat([]byte("x"), 1<<20), 0o644)
	out, err := runCmd(t, "", "--data", data, "put", src)
	if err != nil {
		t.Fatal(out, err)
	}
	id, err := fs.ParseID(strings.Fields(out)[0])
	if err != nil {
		t.Fatal(out, err)
	}
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.SetData(data)
	ctx, cancel := context.WithCancel(context.Background())
	a, err := openApp(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c := localCatalog{a}
	var w bytes.Buffer
	if n, err := c.Read(ctx, id, &w); err != nil || n != 1<<20 {
		t.Fatalf("read: %d bytes, %v", n, err)
	}
	cancel()
	w.Reset()
	n, err := c.Read(ctx, id, &w)
	if err == nil || !strings.Contains(err.Error(), "interrupted") || n != 0 || w.Len() != 0 {
		t.Fatalf("read after Ctrl-C: %d bytes written, %v; want none and an error", n, err)
	}
}
