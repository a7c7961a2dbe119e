package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/datagate/datagate/cmd/datagate/config"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/gateway/admin"
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
	c := &localCatalog{a: a}
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

// A server may send every byte of content not yet whole before it finds
// them wrong (it judges the registered checksum when the last piece
// arrives, and the answer is then complete): get through the server
// checks a registered SHA-256 itself. The server here answers as the real
// one did in that race, which cannot be provoked at will.
func TestRemoteReadChecksRegisteredSHA256(t *testing.T) {
	body := []byte("content that is not what was registered")
	id := fs.NewIDGen().New(time.Now())
	sum := sha256.Sum256([]byte("what was registered"))
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/objects/{id}", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(admin.ToJSON(&fs.Object{ID: id, Name: "x", Size: int64(len(body)), SHA256: sum[:], State: fs.StateRegistered}))
	})
	mux.HandleFunc("GET /api/v1/objects/{id}/content", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := admin.Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	var w bytes.Buffer
	if _, err := (remote{c}).Read(ctx, id, &w); err == nil || !strings.Contains(err.Error(), "does not match its registered SHA-256") {
		t.Fatalf("read of wrong content: %v", err)
	}
	// The same content registered with its own checksum reads fine.
	sum = sha256.Sum256(body)
	w.Reset()
	if n, err := (remote{c}).Read(ctx, id, &w); err != nil || n != int64(len(body)) {
		t.Fatalf("read of right content: %d, %v", n, err)
	}
}
