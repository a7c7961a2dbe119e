package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// discardWriter is the cheapest ResponseWriter, so the middleware's own
// cost shows.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

var page = make([]byte, 4096)

func get4k(w http.ResponseWriter, r *http.Request) { w.Write(page) }

// BenchmarkHTTP is the middleware's cost per request on a 4 KiB GET, in
// process: bare is the handler alone, wrapped the same through HTTP.
//
//	go test -run XXX -bench 'BenchmarkHTTP$' -benchmem ./gateway/metrics/
func BenchmarkHTTP(b *testing.B) {
	m := New(Options{})
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", http.HandlerFunc(get4k)},
		{"wrapped", m.HTTP(S3, http.HandlerFunc(get4k))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/bucket/key", nil)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{h: http.Header{}}
				for pb.Next() {
					tc.h.ServeHTTP(w, r)
				}
			})
		})
	}
}

// BenchmarkHTTPServer is 4 KiB GETs over loopback HTTP/1.1 with
// keep-alive, from parallel clients: bare and wrapped alternate in the
// same run, so their ratio is the middleware's share of a real request.
//
//	go test -run XXX -bench BenchmarkHTTPServer -count 3 ./gateway/metrics/
func BenchmarkHTTPServer(b *testing.B) {
	m := New(Options{})
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", http.HandlerFunc(get4k)},
		{"wrapped", m.HTTP(S3, http.HandlerFunc(get4k))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			srv := httptest.NewServer(tc.h)
			defer srv.Close()
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			b.SetBytes(int64(len(page)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := c.Get(srv.URL + "/bucket/key")
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}

// BenchmarkFUSE is the raw wrapper's cost per operation (a GETATTR
// answered at once), bare and wrapped.
//
//	go test -run XXX -bench BenchmarkFUSE -benchmem ./gateway/metrics/
func BenchmarkFUSE(b *testing.B) {
	m := New(Options{})
	bare := fakeRaw{fuse.NewDefaultRawFileSystem()}
	for _, tc := range []struct {
		name string
		fs   fuse.RawFileSystem
	}{
		{"bare", bare},
		{"wrapped", m.FUSE()(bare)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			in, out := &fuse.InHeader{}, &fuse.EntryOut{}
			b.ReportAllocs()
			for b.Loop() {
				tc.fs.Lookup(nil, in, "y", out)
			}
		})
	}
}
