package webdav

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
)

// fileSink is a ResponseWriter with ReadFrom, as net/http's is: it notes
// whether GET handed it the plain file, which net/http then sends with
// sendfile. A wrapper without ReadFrom, or content going through the
// views reader, would show up as Writes.
type fileSink struct {
	h        http.Header
	code     int
	fromFile bool
	n        int64
}

func (s *fileSink) Header() http.Header { return s.h }
func (s *fileSink) WriteHeader(c int)   { s.code = c }
func (s *fileSink) Write(p []byte) (int, error) {
	s.n += int64(len(p))
	return len(p), nil
}

func (s *fileSink) ReadFrom(r io.Reader) (int64, error) {
	src := r
	if lr, ok := r.(*io.LimitedReader); ok {
		src = lr.R
	}
	if _, ok := src.(*os.File); ok {
		s.fromFile = true
	}
	n, err := io.Copy(io.Discard, r)
	s.n += n
	return n, err
}

func TestGetHandsThePlainFile(t *testing.T) {
	e := newEnv(t)
	payload := bytes.Repeat([]byte("datagate"), 1<<18) // 2 MiB
	e.want(t, 201, req{method: "PUT", path: "/files/big.bin", body: string(payload)})
	for _, rng := range []string{"", "bytes=1000-1999999"} {
		r := httptest.NewRequest("GET", "/files/big.bin", nil)
		r.SetBasicAuth("alice", password)
		if rng != "" {
			r.Header.Set("Range", rng)
		}
		s := &fileSink{h: http.Header{}}
		e.srv.ServeHTTP(s, r)
		want := int64(len(payload))
		if rng != "" {
			want = 1999000
		}
		if s.code != 200 && s.code != 206 || s.n != want {
			t.Fatalf("GET %q: status %d, %d bytes, want %d", rng, s.code, s.n, want)
		}
		if !s.fromFile {
			t.Fatalf("GET %q: the content did not reach ReadFrom as the *os.File (no sendfile)", rng)
		}
	}
}
