// Package audittest holds what the front-ends' tests share to read the
// audit log and the main log they write.
package audittest

import (
	"bytes"
	"log/slog"
	"sync"
)

// Log is a buffer that loggers may write to from many goroutines while a
// test reads it.
type Log struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// WriteString appends v, for tests that copy a process's output lines.
func (l *Log) WriteString(v string) (int, error) { return l.Write([]byte(v)) }

// String returns everything written so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// JSON returns a logger writing JSON lines to l, as the audit log is
// written.
func (l *Log) JSON() *slog.Logger { return slog.New(slog.NewJSONHandler(l, nil)) }
