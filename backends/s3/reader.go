package s3

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/datagate/datagate/backends"
)

// reader streams an object body. A watchdog runs during each Read: when the
// server sends nothing for the provider's timeout it cancels the request,
// which unblocks the Read, and the error says ErrUnavailable. Time the
// consumer spends between Reads does not count.
type reader struct {
	p      *Provider
	key    string
	body   io.ReadCloser
	cancel context.CancelFunc // cancels the GET's context
	timer  *time.Timer
	// stalled is set by the watchdog before it cancels.
	stalled atomic.Bool
	// remain is the count of bytes still owed; -1 when reading to EOF.
	remain int64
}

func newReader(p *Provider, key string, body io.ReadCloser, cancel context.CancelFunc, length int64) *reader {
	r := &reader{p: p, key: key, body: body, cancel: cancel, remain: length}
	if length < 0 {
		r.remain = -1
	}
	r.timer = time.AfterFunc(time.Hour, func() {
		r.stalled.Store(true)
		r.cancel()
	})
	r.timer.Stop()
	return r
}

func (r *reader) Read(b []byte) (int, error) {
	if r.remain == 0 {
		return 0, io.EOF
	}
	if r.remain > 0 && int64(len(b)) > r.remain {
		b = b[:r.remain]
	}
	r.timer.Reset(r.p.timeout)
	n, err := r.body.Read(b)
	r.timer.Stop()
	if r.remain > 0 {
		r.remain -= int64(n)
	}
	switch {
	case err == nil:
		return n, nil
	case r.stalled.Load():
		return n, r.p.errorf("read", r.key, backends.ErrUnavailable, "no data for %v", r.p.timeout)
	case errors.Is(err, io.EOF):
		if r.remain > 0 {
			// The server sent all it had: the file is shorter than asked.
			return n, r.p.errorf("read", r.key, io.ErrUnexpectedEOF, "file ended %d bytes short of the range", r.remain)
		}
		return n, io.EOF
	}
	return n, r.p.classify("read", r.key, err)
}

func (r *reader) Close() error {
	r.timer.Stop()
	err := r.body.Close()
	r.cancel()
	return err
}

// shortReader is the body of a range that starts exactly at the end of the
// file but asks for bytes: it yields nothing and then err.
type shortReader struct{ err error }

func (s *shortReader) Read([]byte) (int, error) { return 0, s.err }
