package metrics

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/datagate/datagate/fs"
)

func TestKindLabels(t *testing.T) {
	seen := map[string]fs.Kind{}
	for _, k := range fs.AllKinds {
		l := KindLabel(k)
		if l == "" || strings.ContainsAny(l, " -") {
			t.Errorf("kind %v: label %q", k, l)
		}
		if o, dup := seen[l]; dup {
			t.Errorf("kinds %v and %v share the label %q", o, k, l)
		}
		seen[l] = k
	}
	if len(kindLabels) != len(fs.AllKinds) {
		t.Errorf("%d kind labels for %d kinds", len(kindLabels), len(fs.AllKinds))
	}
}

func TestMethodIndex(t *testing.T) {
	for i, m := range httpMethods {
		if got := methodIndex(m); got != i {
			t.Errorf("methodIndex(%s) = %d, want %d", m, got, i)
		}
	}
	if got := methodIndex("BREW"); got != len(httpMethods) {
		t.Errorf("methodIndex(BREW) = %d", got)
	}
}

func TestKindOfStatus(t *testing.T) {
	for _, tc := range []struct {
		code int
		kind fs.Kind
		ok   bool
	}{
		{200, fs.Other, false}, {304, fs.Other, false},
		{400, fs.Invalid, true}, {401, fs.Permission, true}, {403, fs.Permission, true},
		{404, fs.NotExist, true}, {405, fs.Unsupported, true}, {409, fs.Exist, true},
		{412, fs.Exist, true}, {416, fs.Invalid, true}, {423, fs.Invalid, true}, {429, fs.Permission, true},
		{500, fs.Other, true}, {501, fs.Unsupported, true}, {503, fs.Unavailable, true},
		{507, fs.NoSpace, true},
	} {
		k, ok := KindOfStatus(tc.code)
		if k != tc.kind || ok != tc.ok {
			t.Errorf("KindOfStatus(%d) = %v, %v; want %v, %v", tc.code, k, ok, tc.kind, tc.ok)
		}
	}
}

// TestHTTP serves real requests through the middleware and checks every
// series they should move.
func TestHTTP(t *testing.T) {
	m := New(Options{})
	file := filepath.Join(t.TempDir(), "f")
	content := strings.Repeat("x", 10000)
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /file", func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(file)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "f", time.Time{}, f) // io.Copy to the writer's ReadFrom
	})
	mux.HandleFunc("PUT /up", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, n)
	})
	mux.HandleFunc("PUT /refuse", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	})
	mux.HandleFunc("PROPFIND /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.(http.Flusher).Flush()
	})
	mux.HandleFunc("POST /abort", func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler)
	})
	srv := httptest.NewServer(m.HTTP(WebDAV, mux))
	defer srv.Close()
	do := func(method, path string, body io.Reader) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, body)
		resp, err := srv.Client().Do(req)
		if err != nil {
			return nil
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	do("GET", "/file", nil)
	do("GET", "/file", nil)
	do("GET", "/missing", nil)
	do("PUT", "/up", strings.NewReader(strings.Repeat("y", 1234)))
	do("PUT", "/refuse", strings.NewReader("z"))
	do("PROPFIND", "/", nil)
	do("BREW", "/", nil)
	do("POST", "/abort", nil) // a GET would be retried by the client

	l := []string{"frontend", WebDAV}
	want(t, m, 2, "datagate_requests_total", append(l, "op", "GET", "status", "2xx")...)
	want(t, m, 1, "datagate_requests_total", append(l, "op", "GET", "status", "4xx")...)
	want(t, m, 1, "datagate_requests_total", append(l, "op", "POST", "status", "5xx")...)
	want(t, m, 1, "datagate_requests_total", append(l, "op", "PUT", "status", "2xx")...)
	want(t, m, 1, "datagate_requests_total", append(l, "op", "PUT", "status", "4xx")...)
	want(t, m, 1, "datagate_requests_total", append(l, "op", "PROPFIND", "status", "2xx")...)
	want(t, m, 1, "datagate_requests_total", append(l, "op", "OTHER", "status", "4xx")...)
	want(t, m, 1, "datagate_request_errors_total", append(l, "op", "GET", "kind", "not_exist")...)
	want(t, m, 1, "datagate_request_errors_total", append(l, "op", "POST", "kind", "other")...)
	want(t, m, 1, "datagate_request_errors_total", append(l, "op", "PUT", "kind", "permission")...)
	want(t, m, 3, "datagate_request_duration_seconds", append(l, "op", "GET")...)
	want(t, m, 1234, "datagate_received_bytes_total", l...) // /refuse read none of its body
	if got, _ := value(t, m, "datagate_sent_bytes_total", l...); got < 2*10000+4 {
		t.Errorf("sent bytes %v, want at least %d", got, 2*10000+4)
	}
	want(t, m, 0, "datagate_http_requests_in_flight", l...)
}

// readFromWriter is a ResponseWriter that records whether ReadFrom was
// used, as net/http's is for sendfile.
type readFromWriter struct {
	httptest.ResponseRecorder
	readFrom bool
}

func (w *readFromWriter) ReadFrom(r io.Reader) (int64, error) {
	w.readFrom = true
	return io.Copy(&w.ResponseRecorder, r)
}

func TestHTTPKeepsReadFrom(t *testing.T) {
	m := New(Options{})
	h := m.HTTP(S3, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, io.LimitReader(strings.NewReader("abcdef"), 4))
	}))
	w := &readFromWriter{ResponseRecorder: *httptest.NewRecorder()}
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if !w.readFrom {
		t.Error("the wrapped writer's ReadFrom was not used")
	}
	if w.Body.String() != "abcd" {
		t.Errorf("body %q", w.Body.String())
	}
	want(t, m, 4, "datagate_sent_bytes_total", "frontend", S3)
}

// TestHTTPExpectContinue: a request with "Expect: 100-continue" refused
// without reading its body gets its answer at once (net/http closes the
// connection rather than waiting for a body the client holds back). The
// middleware must not hide the server's body from net/http.
func TestHTTPExpectContinue(t *testing.T) {
	m := New(Options{})
	srv := httptest.NewServer(m.HTTP(S3, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	})))
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\nExpect: 100-continue\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer while the body is held back: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("status %d", resp.StatusCode)
	}
}

func TestSFTP(t *testing.T) {
	m := New(Options{})
	s := m.SFTP()
	if m.SFTP() != s {
		t.Error("SFTP() gave two hooks")
	}
	end := s.Session("sftp")
	s.Session("scp")()
	want(t, m, 1, "datagate_sftp_sessions_active")
	s.Request("read", time.Millisecond, false, fs.Other)
	s.Request("Setstat", time.Millisecond, true, fs.Permission)
	s.Request("frobnicate", time.Millisecond, true, fs.NotExist)
	s.Received(100)
	s.Sent(200)
	end()
	end()
	want(t, m, 0, "datagate_sftp_sessions_active")
	want(t, m, 1, "datagate_sftp_sessions_total", "kind", "scp")
	want(t, m, 1, "datagate_requests_total", "frontend", SFTP, "op", "read", "status", "ok")
	want(t, m, 1, "datagate_requests_total", "frontend", SFTP, "op", "setstat", "status", "error")
	want(t, m, 1, "datagate_request_errors_total", "frontend", SFTP, "op", "setstat", "kind", "permission")
	want(t, m, 1, "datagate_request_errors_total", "frontend", SFTP, "op", "other", "kind", "not_exist")
	want(t, m, 100, "datagate_received_bytes_total", "frontend", SFTP)
	want(t, m, 200, "datagate_sent_bytes_total", "frontend", SFTP)
}

// fakeRaw answers Lookup of "x" with ENOENT, of "neg" with a negative
// entry, of anything else with node 7, and Read with 5 bytes.
type fakeRaw struct{ fuse.RawFileSystem }

func (fakeRaw) Lookup(_ <-chan struct{}, _ *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	switch name {
	case "x":
		return fuse.ENOENT
	case "neg":
		return fuse.OK
	}
	out.NodeId = 7
	return fuse.OK
}

func (fakeRaw) Read(<-chan struct{}, *fuse.ReadIn, []byte) (fuse.ReadResult, fuse.Status) {
	return fuse.ReadResultData([]byte("hello")), fuse.OK
}

func (fakeRaw) Write(_ <-chan struct{}, _ *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	return uint32(len(data)), fuse.OK
}

func TestFUSE(t *testing.T) {
	m := New(Options{})
	raw := m.FUSE()(fakeRaw{fuse.NewDefaultRawFileSystem()})
	raw.Init(nil)
	want(t, m, 1, "datagate_fuse_mounts_active")
	raw.Lookup(nil, &fuse.InHeader{}, "x", &fuse.EntryOut{})
	raw.Lookup(nil, &fuse.InHeader{}, "neg", &fuse.EntryOut{})
	raw.Lookup(nil, &fuse.InHeader{}, "y", &fuse.EntryOut{})
	raw.Read(nil, &fuse.ReadIn{}, make([]byte, 10))
	// go-fuse tries Writev first; the default answers ENOSYS, then Write.
	if _, st := raw.Writev(nil, &fuse.WriteIn{}, [][]byte{[]byte("abc")}); st == fuse.ENOSYS {
		raw.Write(nil, &fuse.WriteIn{}, []byte("abc"))
	}
	raw.Rmdir(nil, &fuse.InHeader{}, "d") // the default: ENOSYS
	raw.OnUnmount()
	raw.OnUnmount()
	want(t, m, 0, "datagate_fuse_mounts_active")
	want(t, m, 2, "datagate_request_errors_total", "frontend", FUSE, "op", "lookup", "kind", "not_exist")
	want(t, m, 1, "datagate_requests_total", "frontend", FUSE, "op", "lookup", "status", "ok")
	want(t, m, 1, "datagate_requests_total", "frontend", FUSE, "op", "read", "status", "ok")
	want(t, m, 1, "datagate_requests_total", "frontend", FUSE, "op", "write", "status", "ok")
	want(t, m, 1, "datagate_request_errors_total", "frontend", FUSE, "op", "rmdir", "kind", "unsupported")
	want(t, m, 5, "datagate_sent_bytes_total", "frontend", FUSE)
	want(t, m, 3, "datagate_received_bytes_total", "frontend", FUSE)
}

func TestErrnoKind(t *testing.T) {
	// Every kind gateway/fuse answers with an errno of its own reads back.
	for errno, k := range map[fuse.Status]fs.Kind{
		fuse.ENOENT: fs.NotExist, fuse.Status(17): fs.Exist, fuse.EACCES: fs.Permission,
		fuse.Status(39): fs.NotEmpty, fuse.Status(21): fs.IsDir, fuse.ENOTDIR: fs.NotDir,
		fuse.EINVAL: fs.Invalid, fuse.Status(28): fs.NoSpace, fuse.ENOTSUP: fs.Unsupported,
		fuse.EIO: fs.Other,
	} {
		if got := errnoKind(errno); got != k {
			t.Errorf("errnoKind(%v) = %v, want %v", errno, got, k)
		}
	}
}

func TestCore(t *testing.T) {
	m := New(Options{})
	fail := false
	m.AddCore(func(ctx context.Context) (Core, error) {
		if fail {
			return Core{}, errors.New("store closed")
		}
		return Core{
			Objects: 3, Bytes: 300, Exact: true,
			Cache:     CacheStats{Size: 10, MaxSize: 100, Entries: 1, Hits: 5, Misses: 2, BytesServed: 50, BytesFetched: 20, Evictions: 1},
			Stores:    []StoreStats{{Name: "primary", UsedBytes: 300, FreeBytes: -1, Copies: 3}},
			Providers: []ProviderStats{{Name: "local", Fetches: 4, FetchErrors: 1, Retries: 2, BytesFetched: 40, FetchSeconds: 0.5}},
			Queues:    []QueueStats{{Name: "backup", Queued: 7, InFlight: 1, Done: 9, Failed: 1, Bytes: 900}},
			Collected: 6, Collisions: 2, LSMBytes: 1000, VLogBytes: 2000,
		}, nil
	})
	want(t, m, 3, "datagate_catalogue_objects")
	want(t, m, 1, "datagate_catalogue_counts_exact")
	want(t, m, 5, "datagate_cache_hits_total")
	want(t, m, 1, "datagate_cache_evictions_total")
	want(t, m, 300, "datagate_store_used_bytes", "store", "primary")
	if _, ok := value(t, m, "datagate_store_free_bytes", "store", "primary"); ok {
		t.Error("an unknown free space (-1) is exported")
	}
	want(t, m, 2, "datagate_provider_retries_total", "provider", "local")
	want(t, m, 0.5, "datagate_provider_fetch_seconds_total", "provider", "local")
	want(t, m, 7, "datagate_replication_queued", "store", "backup")
	want(t, m, 900, "datagate_replication_bytes_total", "store", "backup")
	want(t, m, 6, "datagate_gc_removed_total")
	want(t, m, 2, "datagate_path_collisions_total")
	want(t, m, 2000, "datagate_badger_vlog_bytes")
	want(t, m, 0, "datagate_core_scrape_errors_total")

	// A failing source: the core metrics are left out, the rest served.
	// (Each gather above read the source once.)
	fail = true
	m.SFTP().Sent(1)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, s := range []string{"datagate_core_scrape_errors_total 1\n", `datagate_sent_bytes_total{frontend="sftp"} 1`, "go_goroutines"} {
		if !strings.Contains(body, s) {
			t.Errorf("/metrics lacks %q", s)
		}
	}
	if rec.Code != 200 || strings.Contains(body, "datagate_catalogue_objects") {
		t.Errorf("/metrics: %d, core metrics served from a failed read:\n%s", rec.Code, body)
	}
}

func TestFetch(t *testing.T) {
	m := New(Options{})
	m.ObserveFetch("remote", 20*time.Millisecond, 100, nil)
	m.ObserveFetch("remote", time.Second, 0, fs.E(fs.Unavailable, "fetch", "x", nil))
	want(t, m, 2, "datagate_provider_fetch_duration_seconds", "provider", "remote")
	want(t, m, 1, "datagate_provider_fetch_failures_total", "provider", "remote", "kind", "unavailable")
}

// A request whose client went away before its answer (a GET cancelled
// mid-body) is counted, but not among the errors: it is no fault of the
// server's (the soak test's last seconds counted several as kind other).
func TestHTTPClientGone(t *testing.T) {
	m := New(Options{})
	started := make(chan struct{})
	done := make(chan struct{})
	srv := httptest.NewServer(m.HTTP(S3, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		close(started)
		<-r.Context().Done() // the client has gone
		http.Error(w, "cut", http.StatusInternalServerError)
	})))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/big", nil)
	go func() { <-started; cancel() }()
	srv.Client().Do(req)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler never saw its client go")
	}
	l := []string{"frontend", S3}
	for end := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if v, _ := value(t, m, "datagate_requests_total", append(l, "op", "GET", "status", "5xx")...); v == 1 || time.Now().After(end) {
			break
		}
	}
	want(t, m, 1, "datagate_requests_total", append(l, "op", "GET", "status", "5xx")...)
	if v, ok := value(t, m, "datagate_request_errors_total", append(l, "op", "GET", "kind", "other")...); ok && v != 0 {
		t.Errorf("a request whose client went away counted as an error: %v", v)
	}
}
