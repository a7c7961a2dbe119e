package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/datagate/datagate/fs"
)

// sftpOps are the SFTP front-end's operations: the handlers' (pkg/sftp's
// request methods, lower-cased) and the exec commands, whose sessions
// count as one request each.
var sftpOps = []string{
	"open", "read", "write", "close", "fsync", "readdir", "list", "stat", "lstat",
	"setstat", "rename", "posix-rename", "remove", "mkdir", "rmdir", "statvfs",
	"link", "symlink", "readlink",
	"scp", "md5sum", "sha256sum",
}

// sftpSessionKinds are the values of sftp_sessions_total's kind label.
var sftpSessionKinds = []string{"sftp", "scp", "md5sum", "sha256sum", "other"}

// SFTPMetrics feeds the SFTP front-end's metrics; it satisfies
// gateway/sftp's Metrics interface. Safe for concurrent use.
type SFTPMetrics struct {
	// immutable after SFTP
	m     *Metrics
	f     *front
	alias map[string]*op // pkg/sftp's method names ("Setstat") and ours
	kinds map[string]prometheus.Counter
}

// SFTP returns the SFTP front-end's hook (the same one on every call).
func (m *Metrics) SFTP() *SFTPMetrics {
	m.mu.Lock()
	s := m.sftp
	m.mu.Unlock()
	if s != nil {
		return s
	}
	f := m.frontOf(SFTP, sftpOps, "other", opStatuses)
	s = &SFTPMetrics{m: m, f: f, alias: map[string]*op{}, kinds: map[string]prometheus.Counter{}}
	for name, o := range f.ops {
		s.alias[name] = o
	}
	for _, name := range []string{"Setstat", "Rename", "Rmdir", "Remove", "Mkdir", "Link", "Symlink", "List", "Stat", "Lstat", "Readlink"} {
		s.alias[name] = f.ops[lower(name)]
	}
	for _, k := range sftpSessionKinds {
		s.kinds[k] = m.sessTot.WithLabelValues(k)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sftp == nil {
		m.sftp = s
	}
	return m.sftp
}

// lower lower-cases an ASCII operation name (at construction only).
func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// Session counts an SSH session of kind ("sftp", or the exec command's
// name) as active until end is called (once).
func (s *SFTPMetrics) Session(kind string) (end func()) {
	c, ok := s.kinds[kind]
	if !ok {
		c = s.kinds["other"]
	}
	c.Inc()
	s.m.sessions.Inc()
	var once sync.Once
	return func() { once.Do(s.m.sessions.Dec) }
}

// Request records one request: its operation, how long it took and, when
// it failed, the kind of its error.
func (s *SFTPMetrics) Request(op string, d time.Duration, failed bool, kind fs.Kind) {
	o, ok := s.alias[op]
	if !ok {
		o = s.f.other
	}
	slot := 0
	if failed {
		slot = 1
	}
	o.done(slot, d, failed, kind)
}

// Received counts payload bytes from the client.
func (s *SFTPMetrics) Received(n int) { s.f.in.Add(float64(n)) }

// Sent counts payload bytes to the client.
func (s *SFTPMetrics) Sent(n int) { s.f.out.Add(float64(n)) }

// opStatuses are the status label values of SFTP and FUSE.
var opStatuses = []string{"ok", "error"}
