package webdav

import (
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkPut256MiB: a PUT through the whole front-end (authentication,
// x/net/webdav, the views Tree, store.Put's hashing and durable write)
// from a Go client sending a file, in one process, so a CPU profile shows
// where a PUT's time goes:
//
//	go test ./gateway/webdav -run '^$' -bench Put -benchtime 3x -cpuprofile cpu.out
//
// The figure beside other servers is integration's BenchmarkWebDAVServers.
func BenchmarkPut256MiB(b *testing.B) {
	const size = 256 << 20
	e := newEnv(b)
	src := filepath.Join(b.TempDir(), "put.bin")
	f, err := os.Create(src)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		b.Fatal(err)
	}
	f.Close()
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		f, err := os.Open(src)
		if err != nil {
			b.Fatal(err)
		}
		hr, err := http.NewRequestWithContext(ctxT(b), "PUT", e.ts.URL+"/files/put.bin", f)
		if err != nil {
			b.Fatal(err)
		}
		hr.ContentLength = size
		hr.SetBasicAuth("alice", password)
		resp, err := e.ts.Client().Do(hr)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		f.Close()
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusNoContent {
			b.Fatalf("PUT: %s", resp.Status)
		}
	}
}
