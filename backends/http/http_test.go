package http

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/backendtest"
	"github.com/datagate/datagate/backends/retry"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestConformance(t *testing.T) {
	for _, style := range []string{"nginx", "apache", "python"} {
		t.Run(style, func(t *testing.T) {
			var s *site
			var p *Provider
			backendtest.Run(t, func(t *testing.T, files map[string][]byte) backends.Provider {
				s = &site{files: files, style: style, mount: "/data"}
				p = newTest(t, Config{URL: serve(t, s)})
				return p
			})
			// nginx indexes give exact sizes and dates: listing costs no
			// HEAD. Apache's are exact below 1 KiB (one file of the
			// fixture is bigger); Python's give none.
			// HEADs of the suite's cancelled List may still reach the
			// server: wait until it has been quiet for a while.
			before := s.heads.Load()
			for quiet := 0; quiet < 4; {
				time.Sleep(50 * time.Millisecond)
				if n := s.heads.Load(); n != before {
					before, quiet = n, 0
				} else {
					quiet++
				}
			}
			if err := p.List(ctxT(t), "", func(backends.Entry) error { return nil }); err != nil {
				t.Fatal(err)
			}
			want := map[string]int32{"nginx": 0, "apache": 1, "python": int32(len(backendtest.Fixture()))}[style]
			if got := s.heads.Load() - before; got != want {
				t.Errorf("List made %d HEAD requests, want %d", got, want)
			}
		})
	}
}

func TestEscapedNames(t *testing.T) {
	files := map[string][]byte{
		"a b/c#d?.txt":    []byte("1"),
		"ü/%41.txt":       []byte("22"),
		"x+y=z:@;,$&.bin": []byte("333"),
	}
	for _, style := range []string{"nginx", "apache", "python"} {
		t.Run(style, func(t *testing.T) {
			ctx := ctxT(t)
			p := newTest(t, Config{URL: serve(t, &site{files: files, style: style, mount: "/d ir"})})
			for name, want := range files {
				rc, err := p.Open(ctx, name, 0, -1)
				if err != nil {
					t.Fatalf("Open %q: %v", name, err)
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("read %q = %q, %v", name, got, err)
				}
			}
			var names []string
			err := p.List(ctx, "", func(e backends.Entry) error {
				names = append(names, e.Path)
				if e.Size != int64(len(files[e.Path])) {
					t.Errorf("%q: size %d", e.Path, e.Size)
				}
				return nil
			})
			sort.Strings(names)
			if err != nil || strings.Join(names, "|") != "a b/c#d?.txt|x+y=z:@;,$&.bin|ü/%41.txt" {
				t.Errorf("List = %q, %v", names, err)
			}
		})
	}
}

func TestBadPaths(t *testing.T) {
	ctx := ctxT(t)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	p := newTest(t, Config{URL: srv.URL + "/base/"})
	for _, path := range []string{"", "/abs", "..", "../x", "a/../../x", "a//b", "./a", "a\x00b"} {
		if _, err := p.Open(ctx, path, 0, -1); !errors.Is(err, iofs.ErrInvalid) {
			t.Errorf("Open %q: %v, want ErrInvalid", path, err)
		}
		if _, err := p.Stat(ctx, path); !errors.Is(err, iofs.ErrInvalid) {
			t.Errorf("Stat %q: %v, want ErrInvalid", path, err)
		}
	}
	if err := p.List(ctx, "../up", func(backends.Entry) error { return nil }); !errors.Is(err, iofs.ErrInvalid) {
		t.Errorf("List ../up: %v, want ErrInvalid", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("bad paths reached the server %d times", n)
	}
	if _, err := p.Open(ctx, "x", -1, 1); !errors.Is(err, iofs.ErrInvalid) {
		t.Errorf("negative offset: %v", err)
	}
}

func TestNewConfig(t *testing.T) {
	for _, u := range []string{"", "ftp://user:secret@host/", "http://user:secret@host:port/", "/relative", "http://h/?token=secret", "http://h/#secret"} {
		_, err := New("n", Config{URL: u})
		if err == nil {
			t.Errorf("New(%q) succeeded", u)
			continue
		}
		if strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), `"n"`) {
			t.Errorf("New(%q): %v leaks a secret or does not name the provider", u, err)
		}
	}
	p, err := New("n", Config{URL: "http://h/base"})
	if err != nil {
		t.Fatal(err)
	}
	if p.timeout != defaultTimeout || p.retries != defaultRetries || p.mirrors[0].base.String() != "http://h/base/" {
		t.Errorf("defaults: timeout %v retries %d base %s", p.timeout, p.retries, p.mirrors[0].base)
	}
	tr := p.client.Transport.(*http.Transport)
	if tr.MaxIdleConnsPerHost != defaultMaxConns || tr.ResponseHeaderTimeout != defaultTimeout || p.client.Timeout != 0 {
		t.Errorf("transport: idle/host %d, header timeout %v, client timeout %v", tr.MaxIdleConnsPerHost, tr.ResponseHeaderTimeout, p.client.Timeout)
	}
	if p, _ := New("n", Config{URL: "http://h/", Retries: -1}); p.retries != 0 {
		t.Errorf("Retries -1 gives %d retries", p.retries)
	}
}

func TestCredentialsAndHeaders(t *testing.T) {
	ctx := ctxT(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, pw, ok := r.BasicAuth()
		if !ok || u != "user" || pw != "secret" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		if r.Header.Get("X-Token") != "tok" || r.Host != "data.example" {
			http.Error(w, "bad headers", http.StatusBadRequest)
			return
		}
		if r.URL.Path == "/f" {
			http.ServeContent(w, r, "f", time.Now(), strings.NewReader("content"))
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	withCreds := strings.Replace(srv.URL, "http://", "http://user:secret@", 1)
	p := newTest(t, Config{URL: withCreds, Headers: map[string]string{"X-Token": "tok", "Host": "data.example"}})
	rc, err := p.Open(ctx, "f", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "content" {
		t.Fatalf("read %q", b)
	}
	_, err = p.Open(ctx, "missing", 0, -1)
	if !errors.Is(err, iofs.ErrNotExist) || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), srv.URL+"/missing") {
		t.Errorf("missing: %v; want ErrNotExist naming the URL without credentials", err)
	}
	wrong := newTest(t, Config{URL: strings.Replace(srv.URL, "http://", "http://user:nope@", 1)})
	if _, err := wrong.Stat(ctx, "f"); !errors.Is(err, iofs.ErrPermission) || strings.Contains(err.Error(), "nope") {
		t.Errorf("wrong password: %v; want ErrPermission without the password", err)
	}
}

// statusServer answers with codes[i] for the i-th request (the last code
// repeats); 200 serves data, or an index listing "f" for directories.
func statusServer(t *testing.T, codes ...int) (string, *atomic.Int32) {
	var n atomic.Int32
	data := []byte("the content")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		code := codes[min(i, len(codes)-1)]
		switch {
		case code != http.StatusOK:
			http.Error(w, http.StatusText(code), code)
		case strings.HasSuffix(r.URL.Path, "/"):
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, `<pre><a href="f">f</a>  12-Jan-2024 10:00  11</pre>`)
		default:
			http.ServeContent(w, r, "f", time.Unix(1e9, 0), bytes.NewReader(data))
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/", &n
}

func TestRetries(t *testing.T) {
	ctx := ctxT(t)
	for _, tc := range []struct {
		name  string
		codes []int
		calls int32
		want  error
	}{
		{"500 twice then ok", []int{500, 500, 200}, 3, nil},
		{"502 503 504 then ok", []int{502, 503, 504, 200}, 4, nil},
		{"500 always", []int{500}, 5, backends.ErrUnavailable}, // 1 + 4 retries
		{"404 at once", []int{404, 200}, 1, iofs.ErrNotExist},
		{"410", []int{410, 200}, 1, iofs.ErrNotExist},
		{"401", []int{401, 200}, 1, iofs.ErrPermission},
		{"403", []int{403, 200}, 1, iofs.ErrPermission},
		{"400", []int{400, 200}, 1, iofs.ErrInvalid},
		{"429 is retried", []int{429, 200}, 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ops := map[string]func(p *Provider) error{
				"Open": func(p *Provider) error {
					rc, err := p.Open(ctx, "f", 2, 3)
					if err != nil {
						return err
					}
					defer rc.Close()
					b, err := io.ReadAll(rc)
					if err == nil && string(b) != "e c" {
						err = fmt.Errorf("read %q", b)
					}
					return err
				},
				"Stat": func(p *Provider) error {
					e, err := p.Stat(ctx, "f")
					if err == nil && e.Size != 11 {
						err = fmt.Errorf("stat %+v", e)
					}
					return err
				},
				"List": func(p *Provider) error {
					return p.List(ctx, "", func(e backends.Entry) error {
						if e.Path != "f" || e.Size != 11 {
							return fmt.Errorf("entry %+v", e)
						}
						return nil
					})
				},
			}
			for op, run := range ops {
				url, n := statusServer(t, tc.codes...)
				err := run(newTest(t, Config{URL: url}))
				if got := n.Load(); got != tc.calls {
					t.Errorf("%s: %d requests, want %d", op, got, tc.calls)
				}
				want := tc.want
				if op == "List" && want == iofs.ErrNotExist {
					want = iofs.ErrInvalid // a missing base URL (TestListOfAMissingBaseFails)
				}
				switch {
				case want == nil && err != nil, want != nil && !errors.Is(err, want):
					t.Errorf("%s: %v, want %v", op, err, want)
				}
				if err != nil && !strings.Contains(err.Error(), `"test"`) {
					t.Errorf("%s: %v does not name the provider", op, err)
				}
			}
		})
	}
}

func TestRetryHonoursContext(t *testing.T) {
	url, n := statusServer(t, 503)
	p := newTest(t, Config{URL: url, Retries: 100})
	p.retryBase, p.retryMax = time.Hour, time.Hour
	ctx, cancel := context.WithTimeout(ctxT(t), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.Stat(ctx, "f")
	if time.Since(start) > 5*time.Second || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("after %v: %v; want the deadline and ErrUnavailable", time.Since(start), err)
	}
	if n.Load() != 1 {
		t.Errorf("%d requests during one hour-long backoff", n.Load())
	}
}

// stallServer runs h; handlers block on stall() until the client gives up
// or the test ends.
func stallServer(t *testing.T, h func(w http.ResponseWriter, r *http.Request, stall func())) string {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(w, r, func() {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		})
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	return srv.URL + "/"
}

func TestStalls(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ctx := ctxT(t)
	beforeHeaders := stallServer(t, func(w http.ResponseWriter, r *http.Request, stall func()) { stall() })
	midBody := stallServer(t, func(w http.ResponseWriter, r *http.Request, stall func()) {
		if strings.HasSuffix(r.URL.Path, "/") {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, `<html><pre><a href="f">f</a>`)
		} else {
			w.Header().Set("Content-Length", "1000")
			w.Write(make([]byte, 100))
		}
		w.(http.Flusher).Flush()
		stall()
	})
	for _, tc := range []struct {
		name, url string
		op        func(p *Provider) error
	}{
		{"open before headers", beforeHeaders, func(p *Provider) error { _, err := p.Open(ctx, "f", 0, -1); return err }},
		{"stat before headers", beforeHeaders, func(p *Provider) error { _, err := p.Stat(ctx, "f"); return err }},
		{"list before headers", beforeHeaders, func(p *Provider) error {
			return p.List(ctx, "", func(backends.Entry) error { return nil })
		}},
		{"open mid-body", midBody, func(p *Provider) error {
			rc, err := p.Open(ctx, "f", 0, -1)
			if err != nil {
				return fmt.Errorf("Open failed before the body: %v", err)
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if len(b) != 100 {
				return fmt.Errorf("read %d bytes before the stall, want 100", len(b))
			}
			return err
		}},
		{"list mid-page", midBody, func(p *Provider) error {
			return p.List(ctx, "", func(backends.Entry) error { return nil })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTest(t, Config{URL: tc.url, Timeout: timeout, Retries: -1})
			start := time.Now()
			err := tc.op(p)
			el := time.Since(start)
			if !errors.Is(err, backends.ErrUnavailable) {
				t.Errorf("err = %v, want ErrUnavailable", err)
			}
			if el > 2*timeout {
				t.Errorf("took %v, want under %v", el, 2*timeout)
			}
		})
	}
}

// cutServer announces n bytes and sends fewer, then drops the connection.
func cutServer(t *testing.T, status int, announce, send int) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Length: %d\r\n", status, http.StatusText(status), announce)
		if status == http.StatusPartialContent {
			fmt.Fprintf(buf, "Content-Range: bytes 10-%d/5000\r\n", 10+announce-1)
		}
		buf.WriteString("\r\n")
		buf.Write(make([]byte, send))
		buf.Flush()
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

func TestShortBody(t *testing.T) {
	ctx := ctxT(t)
	for _, tc := range []struct {
		name        string
		status      int
		off, length int64
	}{
		{"whole", http.StatusOK, 0, -1},
		{"range", http.StatusPartialContent, 10, 1000},
		{"range to end", http.StatusPartialContent, 10, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTest(t, Config{URL: cutServer(t, tc.status, 1000, 500)})
			rc, err := p.Open(ctx, "f", tc.off, tc.length)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if len(b) != 500 || !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, backends.ErrUnavailable) {
				t.Errorf("read %d bytes, %v; want 500 and ErrUnexpectedEOF+ErrUnavailable", len(b), err)
			}
		})
	}
}

func TestServerIgnoresRange(t *testing.T) {
	ctx := ctxT(t)
	data := make([]byte, 200000)
	for i := range data {
		data[i] = byte(i * 13)
	}
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprint("chunked=", chunked), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !chunked {
					w.Header().Set("Content-Length", fmt.Sprint(len(data)))
				}
				w.Write(data[:1000])
				w.(http.Flusher).Flush() // without a length: chunked
				w.Write(data[1000:])
			}))
			t.Cleanup(srv.Close)
			p := newTest(t, Config{URL: srv.URL})
			for _, r := range [][2]int64{{0, -1}, {0, 10}, {1, 5}, {5000, 100000}, {199990, -1}, {200000, -1}, {150000, 50000}} {
				rc, err := p.Open(ctx, "f", r[0], r[1])
				if err != nil {
					t.Fatalf("Open %v: %v", r, err)
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				end := int64(len(data))
				if r[1] >= 0 {
					end = r[0] + r[1]
				}
				if err != nil || !bytes.Equal(got, data[r[0]:end]) {
					t.Errorf("range %v: %d bytes, %v", r, len(got), err)
				}
			}
			if _, err := p.Open(ctx, "f", 200001, -1); !errors.Is(err, iofs.ErrInvalid) {
				t.Errorf("offset past the end: %v, want ErrInvalid", err)
			}
			rc, err := p.Open(ctx, "f", 199000, 5000)
			if err == nil {
				_, err = io.ReadAll(rc)
				rc.Close()
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, backends.ErrUnavailable) {
				t.Errorf("range past the end: %v, want ErrUnexpectedEOF only", err)
			}
		})
	}
}

func TestStatFallbacks(t *testing.T) {
	ctx := ctxT(t)
	mod := time.Date(2023, 5, 6, 7, 8, 9, 0, time.UTC)
	files := map[string]string{"f": "0123456789", "empty": ""}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			http.Error(w, "no HEAD here", http.StatusMethodNotAllowed)
			return
		}
		data, ok := files[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "f", mod, strings.NewReader(data))
	}))
	t.Cleanup(srv.Close)
	p := newTest(t, Config{URL: srv.URL})
	for name, data := range files {
		e, err := p.Stat(ctx, name)
		if err != nil || e.Size != int64(len(data)) || !e.ModTime.Equal(mod) || e.ETag != `"v1"` || e.Path != name {
			t.Errorf("Stat %s = %+v, %v", name, e, err)
		}
	}
	if _, err := p.Stat(ctx, "missing"); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("Stat missing: %v", err)
	}
}

func TestDirectories(t *testing.T) {
	ctx := ctxT(t)
	p := newTest(t, Config{URL: serve(t, &site{files: backendtest.Fixture(), style: "nginx"})})
	if _, err := p.Stat(ctx, "dir"); !errors.Is(err, iofs.ErrInvalid) {
		t.Errorf("Stat of a directory: %v, want ErrInvalid", err)
	}
	if _, err := p.Open(ctx, "dir/sub", 0, -1); !errors.Is(err, iofs.ErrInvalid) {
		t.Errorf("Open of a directory: %v, want ErrInvalid", err)
	}
	if err := p.List(ctx, "a.txt", func(backends.Entry) error { return nil }); err == nil {
		t.Error("List of a file succeeded")
	}
	// A server that shows a directory inside every directory, as a
	// symbolic link loop does, ends in an error, not an endless walk.
	loop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<a href="loop/">loop/</a>`)
	}))
	t.Cleanup(loop.Close)
	lp := newTest(t, Config{URL: loop.URL})
	if err := lp.List(ctx, "", func(backends.Entry) error { return nil }); !errors.Is(err, iofs.ErrInvalid) {
		t.Errorf("List of a loop: %v, want ErrInvalid", err)
	}
}

// abortWriter drops the connection after limit body bytes.
type abortWriter struct {
	http.ResponseWriter
	limit int
}

func (a *abortWriter) Write(b []byte) (int, error) {
	if len(b) > a.limit {
		a.ResponseWriter.Write(b[:a.limit])
		a.ResponseWriter.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	a.limit -= len(b)
	return a.ResponseWriter.Write(b)
}

// With the retry decorator on top, transfers cut mid-body resume where
// they broke and the reader yields the exact bytes.
func TestResumeWithRetryDecorator(t *testing.T) {
	ctx := ctxT(t)
	data := backendtest.Fixture()["dir/b.bin"]
	var gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gets.Add(1) <= 3 {
			w = &abortWriter{ResponseWriter: w, limit: 300000}
		}
		http.ServeContent(w, r, "b", time.Now(), bytes.NewReader(data))
	}))
	t.Cleanup(srv.Close)
	p := retry.New(newTest(t, Config{URL: srv.URL}), retry.Options{Base: time.Millisecond})
	rc, err := p.Open(ctx, "b.bin", 1000, int64(len(data))-2000)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data[1000:len(data)-1000]) {
		t.Fatalf("read %d bytes, %v; want %d exact bytes", len(got), err, len(data)-2000)
	}
	if n := gets.Load(); n != 4 {
		t.Errorf("%d GETs, want 4 (3 cut, 1 whole)", n)
	}
}

func TestParseContentRange(t *testing.T) {
	for _, tc := range []struct {
		in               string
		start, end, size int64
		ok               bool
	}{
		{"bytes 0-0/13", 0, 0, 13, true},
		{"bytes 10-1009/*", 10, 1009, -1, true},
		{"bytes */0", -1, -1, 0, true},
		{"bytes */*", 0, 0, 0, false},
		{"bytes 5-4/10", 0, 0, 0, false},
		{"bytes -1-4/10", 0, 0, 0, false},
		{"items 0-1/2", 0, 0, 0, false},
		{"bytes 0-1", 0, 0, 0, false},
		{"", 0, 0, 0, false},
	} {
		s, e, n, ok := parseContentRange(tc.in)
		if ok != tc.ok || ok && (s != tc.start || e != tc.end || n != tc.size) {
			t.Errorf("parseContentRange(%q) = %d %d %d %v", tc.in, s, e, n, ok)
		}
	}
}
