package http

import (
	"bytes"
	"errors"
	"io"
	iofs "io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/backendtest"
	"github.com/datagate/datagate/backends/health"
	"github.com/datagate/datagate/backends/retry"
)

// refusedURL is the address of a listener that was closed: connecting to
// it is refused.
func refusedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/data/"
}

// flaky answers every third request (from the first) with a 500 and
// passes the others to h: 33 % of requests fail.
type flaky struct {
	h http.Handler
	n atomic.Int32
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.n.Add(1)%3 == 1 {
		http.Error(w, "injected fault", http.StatusInternalServerError)
		return
	}
	f.h.ServeHTTP(w, r)
}

// The conformance suite passes with the first mirror down and with a
// flaky first mirror in front of a good one.
func TestMirrorsConformance(t *testing.T) {
	t.Run("first down", func(t *testing.T) {
		backendtest.Run(t, func(t *testing.T, files map[string][]byte) backends.Provider {
			good := serve(t, &site{files: files, style: "nginx", mount: "/data"})
			return newTest(t, Config{URLs: []string{refusedURL(t), good}})
		})
	})
	t.Run("first flaky", func(t *testing.T) {
		backendtest.Run(t, func(t *testing.T, files map[string][]byte) backends.Provider {
			s := &site{files: files, style: "apache", mount: "/data", mod: time.Date(2024, 1, 12, 10, 0, 0, 0, time.UTC)}
			f := httptest.NewServer(&flaky{h: s})
			t.Cleanup(f.Close)
			good := serve(t, &site{files: files, style: "apache", mount: "/data"})
			return newTest(t, Config{URL: f.URL + "/data/", URLs: []string{good}})
		})
	})
}

// counted serves one file and counts requests; down makes it answer 503.
type counted struct {
	data []byte
	hits atomic.Int32
	down atomic.Bool
}

func (c *counted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.hits.Add(1)
	if c.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if r.URL.Path != "/f" {
		http.NotFound(w, r)
		return
	}
	http.ServeContent(w, r, "f", time.Unix(1e9, 0), bytes.NewReader(c.data))
}

func startCounted(t *testing.T, data []byte) (*counted, string) {
	c := &counted{data: data}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return c, srv.URL + "/"
}

func readF(t *testing.T, p backends.Provider, off, n int64) ([]byte, error) {
	rc, err := p.Open(ctxT(t), "f", off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// A failing mirror is passed over during its back-off, probed once after
// it, and used again when the probe succeeds.
func TestMirrorBackoffAndProbe(t *testing.T) {
	data := []byte("mirrored content")
	a, aURL := startCounted(t, data)
	b, bURL := startCounted(t, data)
	const backoff = 500 * time.Millisecond
	p := newTest(t, Config{URLs: []string{aURL, bURL}, Retries: 2, MirrorBackoff: backoff})
	// The back-off runs on a clock the test moves: with real sleeps the
	// read after the doubled back-off's 3/4 had 125 ms of slack, which a
	// loaded machine's scheduling can take.
	clk := &testClock{t: time.Unix(1e9, 0)}
	p.health = health.New(health.Options{Base: backoff, Max: maxBackoff * backoff, Now: clk.Now})

	a.down.Store(true)
	if got, err := readF(t, p, 0, -1); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read with the first mirror down: %q, %v", got, err)
	}
	if n := a.hits.Load(); n != 3 {
		t.Errorf("first mirror asked %d times, want 3 (1 + 2 retries)", n)
	}
	if p.health.Healthy(p.mirrors[0].key) || !p.health.Healthy(p.mirrors[1].key) {
		t.Fatal("the failed mirror is not marked unhealthy")
	}
	// During the back-off, reads go straight to the second mirror.
	a.hits.Store(0)
	for range 5 {
		if _, err := readF(t, p, 2, 5); err != nil {
			t.Fatal(err)
		}
	}
	if n := a.hits.Load(); n != 0 {
		t.Errorf("mirror in back-off asked %d times", n)
	}
	// After the back-off (±25 %) one read probes it, once, and a failed
	// probe doubles the back-off.
	clk.Add(backoff*5/4 + time.Millisecond)
	if _, err := readF(t, p, 0, -1); err != nil {
		t.Fatal(err)
	}
	if n := a.hits.Load(); n != 1 {
		t.Errorf("probe asked the mirror %d times, want 1", n)
	}
	clk.Add(backoff * 5 / 4) // < 2×backoff×3/4: still passed over
	if _, err := readF(t, p, 0, -1); err != nil {
		t.Fatal(err)
	}
	if n := a.hits.Load(); n != 1 {
		t.Errorf("mirror asked again %d times within its doubled back-off", n-1)
	}
	// Back up: the next probe succeeds and reads return to it.
	a.down.Store(false)
	clk.Add(2*backoff*5/4 + time.Millisecond)
	bBefore := b.hits.Load()
	for range 3 {
		if got, err := readF(t, p, 0, -1); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("after recovery: %q, %v", got, err)
		}
	}
	if !p.health.Healthy(p.mirrors[0].key) || a.hits.Load() != 4 || b.hits.Load() != bBefore {
		t.Errorf("after recovery: healthy %v, first mirror %d hits (want 4), second %d new", p.health.Healthy(p.mirrors[0].key), a.hits.Load(), b.hits.Load()-bBefore)
	}
}

// testClock is a health.Tracker's clock that moves only when told.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// A refused connection moves on at once, without retries.
func TestMirrorRefusedIsNotRetried(t *testing.T) {
	_, good := startCounted(t, []byte("x"))
	p := newTest(t, Config{URLs: []string{refusedURL(t), good}, Retries: 3})
	p.retryBase, p.retryMax = time.Second, time.Second
	start := time.Now()
	if _, err := readF(t, p, 0, -1); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 500*time.Millisecond {
		t.Errorf("took %v: a refused mirror was retried", el)
	}
}

// A mirror that stalls is given up after the timeout and the read is
// served by the next one.
func TestMirrorStallFailsOver(t *testing.T) {
	const timeout = 200 * time.Millisecond
	var stalls atomic.Int32
	stalled := stallServer(t, func(w http.ResponseWriter, r *http.Request, stall func()) { stalls.Add(1); stall() })
	data := bytes.Repeat([]byte("0123456789"), 1000)
	_, good := startCounted(t, data)
	p := newTest(t, Config{URLs: []string{stalled, good}, Timeout: timeout, Retries: 1})
	start := time.Now()
	got, err := readF(t, p, 100, 50)
	if err != nil || !bytes.Equal(got, data[100:150]) {
		t.Fatalf("read: %q, %v", got, err)
	}
	if el := time.Since(start); el < 2*timeout || el > 4*timeout+time.Second {
		t.Errorf("took %v; want about 2 timeouts of %v (1 + 1 retry)", el, timeout)
	}
	// Now passed over: no more waiting.
	for range 3 {
		if _, err := readF(t, p, 0, 10); err != nil {
			t.Fatal(err)
		}
	}
	if n := stalls.Load(); n != 2 {
		t.Errorf("the stalled mirror was asked %d times, want 2 (1 + 1 retry, then passed over)", n)
	}
}

// With every mirror down the error names each one and is ErrUnavailable;
// a final answer (404) from a mirror is not a reason to ask the next.
func TestMirrorsAllDownAndFinalAnswers(t *testing.T) {
	a, aURL := startCounted(t, nil)
	b, bURL := startCounted(t, nil)
	a.down.Store(true)
	b.down.Store(true)
	p := newTest(t, Config{URLs: []string{aURL, bURL}, Retries: 1})
	for range 2 { // the second time both are in back-off and asked anyway, with the retries
		_, err := p.Stat(ctxT(t), "f")
		if !errors.Is(err, backends.ErrUnavailable) || !strings.Contains(err.Error(), aURL+"f") || !strings.Contains(err.Error(), bURL+"f") || !strings.Contains(err.Error(), "all 2 mirrors failed") {
			t.Fatalf("all down: %v", err)
		}
	}
	if a.hits.Load() != 4 || b.hits.Load() != 4 {
		t.Errorf("hits %d and %d, want 4 each (1 + 1 retry, twice)", a.hits.Load(), b.hits.Load())
	}
	a.down.Store(false)
	b.down.Store(false)
	a.hits.Store(0)
	b.hits.Store(0)
	if _, err := p.Stat(ctxT(t), "missing"); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
	if a.hits.Load() != 1 || b.hits.Load() != 0 {
		t.Errorf("a 404 asked %d and %d times; want the first mirror only", a.hits.Load(), b.hits.Load())
	}
}

// A transfer cut mid-body marks its mirror, so the retry decorator's
// resumed read goes to the other one.
func TestMirrorBrokenTransferResumesElsewhere(t *testing.T) {
	data := backendtest.Fixture()["dir/b.bin"]
	var cutGets atomic.Int32
	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cutGets.Add(1)
		http.ServeContent(&abortWriter{ResponseWriter: w, limit: 100000}, r, "b", time.Unix(1e9, 0), bytes.NewReader(data))
	}))
	t.Cleanup(cut.Close)
	good, goodURL := startCounted(t, data)
	p := retry.New(newTest(t, Config{URLs: []string{cut.URL + "/", goodURL}}), retry.Options{Base: time.Millisecond})
	got, err := readF(t, p, 10, int64(len(data))-10)
	if err != nil || !bytes.Equal(got, data[10:]) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	if cutGets.Load() != 1 || good.hits.Load() != 1 {
		t.Errorf("GETs: %d to the cut mirror, %d to the good one; want 1 and 1", cutGets.Load(), good.hits.Load())
	}
}

func TestMirrorConfig(t *testing.T) {
	if _, err := New("n", Config{}); !errors.Is(err, iofs.ErrInvalid) {
		t.Errorf("no url: %v", err)
	}
	if _, err := New("n", Config{URLs: []string{"http://a/", "http://u:secret@b:port/"}}); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("bad second mirror: %v", err)
	}
	if _, err := New("n", Config{URL: "http://a/", MirrorBackoff: -time.Second}); !errors.Is(err, iofs.ErrInvalid) {
		t.Errorf("negative back-off: %v", err)
	}
	p, err := New("n", Config{URL: "http://a/x", URLs: []string{"http://b/y/"}})
	if err != nil || len(p.mirrors) != 2 || p.mirrors[0].base.String() != "http://a/x/" || p.mirrors[1].base.String() != "http://b/y/" || p.health == nil {
		t.Errorf("url + urls: %v %+v", err, p)
	}
}

// Without any decorator, a transfer that stalls or is cut mid-body is
// resumed where it broke and the reader yields the exact bytes.
func TestResumeBrokenTransfers(t *testing.T) {
	data := backendtest.Fixture()["dir/b.bin"]
	for _, fault := range []string{"cut", "stall"} {
		t.Run(fault, func(t *testing.T) {
			var gets atomic.Int32
			release := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if gets.Add(1) <= 2 {
					if fault == "cut" {
						w = &abortWriter{ResponseWriter: w, limit: 70000}
					} else {
						w = &stallWriter{ResponseWriter: w, limit: 70000, stall: func() {
							select {
							case <-r.Context().Done():
							case <-release:
							}
						}}
					}
				}
				http.ServeContent(w, r, "b", time.Unix(1e9, 0), bytes.NewReader(data))
			}))
			t.Cleanup(srv.Close)
			t.Cleanup(func() { close(release) })
			p := newTest(t, Config{URL: srv.URL, Timeout: 500 * time.Millisecond, Retries: 3})
			got, err := readF(t, p, 5, int64(len(data))-5)
			if err != nil || !bytes.Equal(got, data[5:]) {
				t.Fatalf("read %d bytes, %v", len(got), err)
			}
			if n := gets.Load(); n < 3 {
				t.Errorf("%d GETs, want 3 (2 broken, 1 whole) or more on a slow machine", n)
			}
		})
	}
}

// stallWriter stops sending after limit body bytes until stall returns.
type stallWriter struct {
	http.ResponseWriter
	limit int
	stall func()
}

func (s *stallWriter) Write(b []byte) (int, error) {
	if len(b) > s.limit {
		s.ResponseWriter.Write(b[:s.limit])
		s.ResponseWriter.(http.Flusher).Flush()
		s.stall()
		panic(http.ErrAbortHandler)
	}
	s.limit -= len(b)
	return s.ResponseWriter.Write(b)
}

// flakyOnce answers 503 to the requests it is told to fail, then serves.
type flakyOnce struct {
	counted
	fail atomic.Int32
}

func (f *flakyOnce) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.fail.Add(-1) >= 0 {
		f.hits.Add(1)
		http.Error(w, "flaky", http.StatusServiceUnavailable)
		return
	}
	f.counted.ServeHTTP(w, r)
}

// The only live mirror, in back-off after a failure, that fails its probe
// once: the read still succeeds through the retries a single URL would
// have had, instead of failing because every mirror is marked down.
func TestMirrorInBackoffKeepsItsRetries(t *testing.T) {
	data := []byte("mirrored content")
	live := &flakyOnce{counted: counted{data: data}}
	srv := httptest.NewServer(live)
	t.Cleanup(srv.Close)
	dead, deadURL := startCounted(t, data)
	dead.down.Store(true)
	p := newTest(t, Config{URLs: []string{deadURL, srv.URL + "/"}, Retries: 2, MirrorBackoff: time.Minute})
	live.fail.Store(3) // the first read: 1 + 2 retries, all failing
	if _, err := readF(t, p, 0, -1); !errors.Is(err, backends.ErrUnavailable) {
		t.Fatalf("first read: %v, want unavailable", err)
	}
	live.fail.Store(1) // both mirrors in back-off now; the live one fails once more
	if got, err := readF(t, p, 0, -1); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read with every mirror in back-off: %q, %v", got, err)
	}
}
