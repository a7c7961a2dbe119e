package cache

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// patternReader yields n bytes of a cheap deterministic pattern, so a 1 GiB
// source needs no 1 GiB buffer.
type patternReader struct{ off, end int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.end {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.end-r.off)]
	for i := range p {
		o := r.off + int64(i)
		p[i] = byte(o ^ o>>8 ^ o>>16)
	}
	r.off += int64(len(p))
	return len(p), nil
}

func patternSource(key string, size int64) Source {
	return Source{Key: key, Size: size, Fetch: func(_ context.Context, off, n int64) (io.ReadCloser, error) {
		return io.NopCloser(&patternReader{off, off + n}), nil
	}}
}

func readSequential(b *testing.B, f *File, buf []byte) {
	for off := int64(0); off < f.Size(); off += int64(len(buf)) {
		if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadCached: sequential 1 MiB reads of a fully cached 1 GiB entry.
func BenchmarkReadCached(b *testing.B) {
	const size = 1 << 30
	c, err := New(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	f, err := c.Open(context.Background(), patternSource("cached", size))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	readSequential(b, f, buf) // fill
	if !f.Complete() {
		b.Fatal("not complete after the fill")
	}
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		readSequential(b, f, buf)
	}
}

// httpFile serves a size-byte file from disk with http.ServeContent and
// returns its URL and a client shared by all requests.
func httpFile(b *testing.B, size int64) (string, *http.Client) {
	path := filepath.Join(b.TempDir(), "obj.bin")
	w, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(w, &patternReader{0, size}); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	mod := time.Now()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path) // per request: ServeContent seeks
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "obj.bin", mod, f)
	}))
	b.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.Cleanup(client.CloseIdleConnections)
	return srv.URL + "/obj.bin", client
}

func httpSource(key, url string, client *http.Client, size int64) Source {
	return Source{Key: key, Size: size, Fetch: func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusPartialContent {
			resp.Body.Close()
			return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return resp.Body, nil
	}}
}

const coldSize = 256 << 20

// BenchmarkReadCold: sequential 1 MiB reads of a 256 MiB object through a
// fresh cache each iteration, fetched over HTTP with Range requests. The
// cache's Close (final state persist) is outside the timed region.
func BenchmarkReadCold(b *testing.B) {
	url, client := httpFile(b, coldSize)
	root := b.TempDir()
	buf := make([]byte, 1<<20)
	b.SetBytes(coldSize)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		dir := filepath.Join(root, fmt.Sprint(i))
		c, err := New(Options{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		f, err := c.Open(context.Background(), httpSource("cold", url, client, coldSize))
		if err != nil {
			b.Fatal(err)
		}
		readSequential(b, f, buf)
		f.Close()
		b.StopTimer()
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
		os.RemoveAll(dir)
		b.StartTimer()
	}
}

// BenchmarkPlainHTTPGet: the same object in one GET, discarded: the bound
// for BenchmarkReadCold.
func BenchmarkPlainHTTPGet(b *testing.B) {
	url, client := httpFile(b, coldSize)
	b.SetBytes(coldSize)
	b.ResetTimer()
	for range b.N {
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		// The same 1 MiB reads as readSequential (io.Discard's
		// ReadFrom would read in 8 KiB pieces).
		n, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, struct{ io.Reader }{resp.Body}, make([]byte, 1<<20))
		resp.Body.Close()
		if err != nil || n != coldSize {
			b.Fatalf("GET: %d bytes, %v", n, err)
		}
	}
}
