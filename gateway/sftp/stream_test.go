package sftp

import (
	"bytes"
	"crypto/sha256"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/datagate/datagate/views/audittest"
)

func TestStreamedUploads(t *testing.T) {
	var logs audittest.Log
	e := newTestEnv(t, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	c, _ := e.client(t)
	reader, _ := e.client(t)
	const fallback = "the store hashes the spool"

	// Concurrent writes (the client's ReadFrom), arriving out of order:
	// streamed, not pushed at close.
	data := randBytes(t, 8<<20+77)
	p := "/by-date/2026-04-04/obs/streamed.bin"
	f, err := c.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC) // as OpenSSH and rclone open
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadFrom(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if _, err := reader.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("visible before close: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := get(t, reader, p); !bytes.Equal(got, data) {
		t.Fatalf("streamed upload: %d bytes, want %d", len(got), len(data))
	}
	if strings.Contains(logs.String(), fallback) {
		t.Fatalf("a sequential upload was not hashed as it came:\n%s", logs.String())
	}
	// The store records the sum computed as the upload came: it must be
	// the content's.
	if sum := sha256.Sum256(data); !bytes.Equal(e.object(t, p).SHA256, sum[:]) {
		t.Fatalf("recorded SHA-256 %x, content's %x", e.object(t, p).SHA256, sum)
	}

	// Writes the stream cannot follow fall back to the spool, and the
	// content is right either way.
	for _, tc := range []struct {
		name   string
		writes func(f interface {
			WriteAt([]byte, int64) (int, error)
		})
		want     []byte
		streamed bool
	}{
		{"rewrite", func(f interface {
			WriteAt([]byte, int64) (int, error)
		}) {
			f.WriteAt([]byte("hello world"), 0)
			f.WriteAt([]byte("J"), 0)
		}, []byte("Jello world"), false},
		{"overlap ahead", func(f interface {
			WriteAt([]byte, int64) (int, error)
		}) {
			f.WriteAt([]byte("cdef"), 2)
			f.WriteAt([]byte("DE"), 3)
			f.WriteAt([]byte("ab"), 0)
		}, []byte("abcDEf"), false},
		{"hole", func(f interface {
			WriteAt([]byte, int64) (int, error)
		}) {
			f.WriteAt([]byte("xyz"), 100)
			f.WriteAt([]byte("hello"), 0)
		}, append(append([]byte("hello"), make([]byte, 95)...), "xyz"...), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := strings.Count(logs.String(), fallback)
			p := "/by-date/2026-04-04/obs/" + strings.ReplaceAll(tc.name, " ", "-")
			f, err := c.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			tc.writes(f)
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if got := get(t, reader, p); !bytes.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if fell := strings.Count(logs.String(), fallback) > before; fell == tc.streamed {
				t.Fatalf("fell back to the spool: %v, want %v\n%s", fell, !tc.streamed, logs.String())
			}
		})
	}
}
