package sftp

import (
	"bytes"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/datagate/datagate/fs"
)

// recMetrics records what the server reports.
type recMetrics struct {
	mu               sync.Mutex
	active           int
	sessions         map[string]int
	ok, failed       map[string]int
	kinds            map[string]fs.Kind // op -> last failure's kind
	received, sent   int
	negativeDuration bool
}

func newRecMetrics() *recMetrics {
	return &recMetrics{sessions: map[string]int{}, ok: map[string]int{}, failed: map[string]int{}, kinds: map[string]fs.Kind{}}
}

func (m *recMetrics) Session(kind string) func() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sessions[kind]++
	m.active++
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.active--
	}
}

func (m *recMetrics) Request(op string, d time.Duration, failed bool, kind fs.Kind) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d < 0 {
		m.negativeDuration = true
	}
	if failed {
		m.failed[op]++
		m.kinds[op] = kind
	} else {
		m.ok[op]++
	}
}

func (m *recMetrics) Received(n int) { m.mu.Lock(); m.received += n; m.mu.Unlock() }
func (m *recMetrics) Sent(n int)     { m.mu.Lock(); m.sent += n; m.mu.Unlock() }

func TestMetricsHook(t *testing.T) {
	m := newRecMetrics()
	e := newTestEnv(t, func(o *Options) { o.Metrics = m })
	sc, c := e.client(t)
	data := bytes.Repeat([]byte("m"), 100000)
	f, err := sc.Create("/by-date/2026-01-02/obs/m.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	f, err = sc.Open("/by-date/2026-01-02/obs/m.bin")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(f); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("read back: %v, %d bytes", err, len(b))
	}
	f.Close()
	if _, err := sc.Stat("/by-date/2026-01-02/obs/none"); err == nil {
		t.Fatal("stat of nothing succeeded")
	}
	if err := sc.Mkdir("/secret/x"); err == nil {
		t.Fatal("mkdir in a view alice cannot see succeeded")
	}
	// An exec session: a checksum of stdin.
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	s.Stdin = bytes.NewReader([]byte("abc"))
	if out, err := s.Output("md5sum"); err != nil || len(out) == 0 {
		t.Fatalf("md5sum: %v %q", err, out)
	}
	sc.Close()
	c.Close()

	deadline := time.Now().Add(10 * time.Second)
	for {
		m.mu.Lock()
		active := m.active
		m.mu.Unlock()
		if active == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions still active after the client closed", active)
		}
		time.Sleep(10 * time.Millisecond)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range []struct {
		what string
		got  int
		min  int
	}{
		{"sftp sessions", m.sessions["sftp"], 1},
		{"md5sum sessions", m.sessions["md5sum"], 1},
		{"open ok", m.ok["open"], 2},
		{"write ok", m.ok["write"], 1},
		{"read ok", m.ok["read"], 1},
		{"md5sum ok", m.ok["md5sum"], 1},
		{"Stat failed", m.failed["Stat"], 1},
		{"bytes received", m.received, len(data)},
		{"bytes sent", m.sent, len(data)},
	} {
		if c.got < c.min {
			t.Errorf("%s: %d, want at least %d", c.what, c.got, c.min)
		}
	}
	if k := m.kinds["Stat"]; k != fs.NotExist {
		t.Errorf("failed Stat: kind %v, want not exist", k)
	}
	if m.failed["Mkdir"] == 0 {
		t.Errorf("failed Mkdir not reported: %v", m.failed)
	} else if k := m.kinds["Mkdir"]; k != fs.Permission && k != fs.NotExist {
		t.Errorf("failed Mkdir: kind %v", k)
	}
	if m.negativeDuration {
		t.Error("a negative duration was reported")
	}
	if t.Failed() {
		t.Logf("ok %v failed %v", m.ok, m.failed)
	}
}

func TestErrKind(t *testing.T) {
	for _, k := range fs.AllKinds {
		err := toStatus(fs.E(k, "op", "p", nil))
		got := errKind(err)
		// v3 status codes are few: those without one read back as other.
		want := fs.Other
		switch k {
		case fs.NotExist, fs.Permission, fs.Unsupported, fs.Invalid:
			want = k
		}
		if got != want {
			t.Errorf("%v: as a status reads back %v, want %v", k, got, want)
		}
		if got := errKind(fs.E(k, "op", "p", nil)); got != k {
			t.Errorf("%v: reads back %v", k, got)
		}
	}
}
