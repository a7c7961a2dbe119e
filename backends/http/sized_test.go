package http

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/datagate/datagate/backends"
)

// OpenSized refuses, before handing out a byte, a file whose size is not
// the registered one: a range answer's Content-Range total, a whole-file
// answer's length (also a compressed one: a server gzipping a file
// registered with its decoded size used to have the gzip bytes served),
// the total of a 416, and the file found when a broken transfer resumes.
func TestOpenSizedRefusesAnotherSize(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 8192) // 128 KiB
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	zw.Write(data)
	zw.Close()
	var cut atomic.Bool // the next answer of /cut.bin breaks mid-way, then the file grows
	mod := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/same.bin":
			http.ServeContent(w, r, "", mod, bytes.NewReader(data))
		case "/gzip.bin": // compressed unasked, Range ignored
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Set("Content-Length", strconv.Itoa(zipped.Len()))
			w.Write(zipped.Bytes())
		case "/norange.bin": // grown, Range ignored
			w.Header().Set("Content-Length", strconv.Itoa(len(data)+1))
			w.Write(append(data, '!'))
		case "/cut.bin":
			if cut.Swap(false) {
				w.Header().Set("Content-Length", strconv.Itoa(len(data)))
				w.Write(data[:50000])
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			}
			http.ServeContent(w, r, "", mod, bytes.NewReader(append(data, data...)))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	p := newTest(t, Config{URL: srv.URL + "/", Timeout: 5 * time.Second})
	size := int64(len(data))

	rc, err := p.OpenSized(ctxT(t), "same.bin", 1000, 2000, size)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, data[1000:3000]) {
		t.Fatalf("unchanged file: %d bytes, %v", len(got), err)
	}
	rc.Close()
	for _, c := range []struct {
		path     string
		off, n   int64
		size     int64
		testName string
	}{
		{"same.bin", 0, 100, size + 1, "206, another total"},
		{"same.bin", size + 1, -1, size + 1, "416, another total"},
		{"same.bin", 0, 0, size - 1, "empty read, another size"},
		{"gzip.bin", 0, -1, size, "gzip, decoded size registered"},
		{"norange.bin", 10, 100, size, "200 to a range, another length"},
	} {
		rc, err := p.OpenSized(ctxT(t), c.path, c.off, c.n, c.size)
		if err == nil {
			b, _ := io.ReadAll(rc)
			rc.Close()
			t.Errorf("%s: opened, %d bytes read", c.testName, len(b))
			continue
		}
		if !errors.Is(err, backends.ErrChanged) {
			t.Errorf("%s: %v, want ErrChanged", c.testName, err)
		}
	}

	// A transfer broken mid-way resumes on a file that has grown since.
	cut.Store(true)
	rc, err = p.OpenSized(ctxT(t), "cut.bin", 0, -1, size)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if !errors.Is(err, backends.ErrChanged) || !bytes.Equal(got, data[:len(got)]) || len(got) > 50000 {
		t.Fatalf("resumed on a changed file: %d bytes, %v", len(got), err)
	}
}
