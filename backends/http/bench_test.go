package http

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

const benchSize = 256 << 20

// pattern is a large file made up on the fly, so the benchmark measures
// HTTP and the provider, not the disk or memory.
type pattern struct {
	size, off int64
}

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.size {
		return 0, io.EOF
	}
	if rest := p.size - p.off; int64(len(b)) > rest {
		b = b[:rest]
	}
	n := 0
	for n < len(b) {
		n += copy(b[n:], block[(p.off+int64(n))%int64(len(block)):])
	}
	p.off += int64(n)
	return n, nil
}

// block repeats through the pattern file; 251 is prime, so block
// boundaries do not line up with the buffer sizes.
var block = func() []byte {
	b := make([]byte, 251*256)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}()

func (p *pattern) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += p.off
	case io.SeekEnd:
		off += p.size
	}
	if off < 0 {
		return 0, errors.New("negative position")
	}
	p.off = off
	return off, nil
}

func benchServer(b *testing.B) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "big", time.Unix(1e9, 0), &pattern{size: benchSize})
	}))
	b.Cleanup(srv.Close)
	return srv.URL + "/"
}

// drain reads r to the end through a plain buffer (no WriterTo or
// ReaderFrom shortcut, so both benchmarks copy the same way).
func drain(b *testing.B, r io.Reader) {
	buf := make([]byte, 256<<10)
	var n int64
	for {
		m, err := r.Read(buf)
		n += int64(m)
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	if n != benchSize {
		b.Fatalf("read %d bytes, want %d", n, benchSize)
	}
}

func BenchmarkOpenSequential(b *testing.B) {
	p := newTest(b, Config{URL: benchServer(b)})
	ctx := context.Background()
	b.SetBytes(benchSize)
	for b.Loop() {
		rc, err := p.Open(ctx, "big", 0, -1)
		if err != nil {
			b.Fatal(err)
		}
		drain(b, rc)
		rc.Close()
	}
}

func BenchmarkPlainGet(b *testing.B) {
	url := benchServer(b) + "big"
	b.SetBytes(benchSize)
	for b.Loop() {
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		drain(b, resp.Body)
		resp.Body.Close()
	}
}
