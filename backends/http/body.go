package http

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"time"
)

// body is a response body whose every Read must make progress within the
// timeout: a timer armed around each Read cancels the request, which
// unblocks the Read. The transport's own timeouts stop at the headers.
type body struct {
	ctx     context.Context // the request's, cancelled with errIdle on a stall
	cancel  context.CancelCauseFunc
	rc      io.ReadCloser
	timeout time.Duration
	idle    *time.Timer
}

func newBody(ctx context.Context, cancel context.CancelCauseFunc, rc io.ReadCloser, timeout time.Duration) *body {
	b := &body{ctx: ctx, cancel: cancel, rc: rc, timeout: timeout}
	b.idle = time.AfterFunc(time.Hour, func() { cancel(errIdle) })
	b.idle.Stop()
	return b
}

func (b *body) Read(p []byte) (int, error) {
	b.idle.Reset(b.timeout)
	n, err := b.rc.Read(p)
	b.idle.Stop()
	return n, err
}

func (b *body) Close() error {
	b.idle.Stop()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}

// reader checks the byte count of an Open and classifies read errors.
type reader struct {
	p        *Provider
	m        *mirror // the mirror answering; blamed for a broken transfer
	u        *url.URL
	b        *body
	want     int64 // bytes asked for; < 0: to the end
	declared int64 // bytes the response announced; < 0: unknown
	got      int64
	err      error // sticky
}

func (r *reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	// Read no further than asked, nor than announced (the rest of a
	// whole-file answer to a range request is not ours).
	limit := r.want
	if limit < 0 || r.declared >= 0 && r.declared < limit {
		limit = r.declared
	}
	if limit >= 0 {
		if r.got >= limit {
			return 0, r.ended()
		}
		if int64(len(p)) > limit-r.got {
			p = p[:limit-r.got]
		}
	}
	n, err := r.b.Read(p)
	r.got += int64(n)
	switch {
	case err == nil:
	case err == io.EOF:
		err = r.ended()
	default:
		r.err = r.p.fail("read", r.u, classify(r.b.ctx, "", 0, err))
		r.p.blame(r.m, r.err)
		err = r.err
	}
	return n, err
}

// ended judges the end of the stream (the body's EOF or our limit)
// against what was asked and what the server announced.
func (r *reader) ended() error {
	switch {
	case r.declared >= 0 && r.got < r.declared && (r.want < 0 || r.got < r.want):
		// The server promised more than it sent: a broken transfer.
		r.err = r.p.fail("read", r.u, classify(r.b.ctx, "", 0, io.ErrUnexpectedEOF))
		r.p.blame(r.m, r.err)
	case r.want >= 0 && r.got < r.want:
		r.err = r.p.fail("read", r.u, fmt.Errorf("file ends after %d of %d bytes: %w", r.got, r.want, io.ErrUnexpectedEOF))
	default:
		return io.EOF
	}
	return r.err
}

func (r *reader) Close() error { return r.b.Close() }
