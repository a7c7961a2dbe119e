package http

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/datagate/datagate/backends"
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

// reader checks the byte count of an Open, classifies read errors and
// resumes a transfer that breaks (ErrUnavailable mid-body) by asking for
// the rest of the range, from another mirror when there is one. It keeps
// Open's ctx, as an http.Response body does: reopening is part of reading.
type reader struct {
	p     *Provider
	ctx   context.Context
	path  string
	start int64 // offset asked for by Open
	want  int64 // bytes asked for by Open; < 0: to the end
	size  int64 // the file's expected size; < 0: unknown
	got   int64 // bytes returned so far
	stuck int   // resumes in a row that brought no byte
	err   error // sticky

	// the current response
	m        *mirror // the mirror answering; blamed for a broken transfer
	u        *url.URL
	b        *body
	declared int64 // bytes it announced; < 0: unknown
	respGot  int64 // bytes read from it
}

func (r *reader) Read(p []byte) (int, error) {
	for {
		if r.err != nil {
			return 0, r.err
		}
		n, err := r.readResp(p)
		if n > 0 {
			r.stuck = 0
		}
		if err == nil || err == io.EOF || !errors.Is(err, backends.ErrUnavailable) {
			if err != nil && err != io.EOF {
				r.err = err
			}
			return n, err
		}
		if rerr := r.resume(err); rerr != nil {
			r.err = rerr
			return n, rerr
		}
		if n > 0 {
			return n, nil
		}
	}
}

// readResp reads from the current response.
func (r *reader) readResp(p []byte) (int, error) {
	// Read no further than asked, nor than announced (the rest of a
	// whole-file answer to a range request is not ours).
	limit := int64(-1)
	if r.want >= 0 {
		limit = r.want - r.got
	}
	if limit < 0 || r.declared >= 0 && r.declared-r.respGot < limit {
		limit = r.declared - r.respGot
	}
	if limit >= 0 {
		if limit == 0 {
			return 0, r.ended()
		}
		if int64(len(p)) > limit {
			p = p[:limit]
		}
	}
	n, err := r.b.Read(p)
	r.got += int64(n)
	r.respGot += int64(n)
	switch {
	case err == nil:
	case err == io.EOF:
		err = r.ended()
	default:
		err = r.p.fail("read", r.u, classify(r.b.ctx, "", 0, err))
	}
	return n, err
}

// ended judges the end of the response (its EOF or our limit) against
// what was asked and what the server announced.
func (r *reader) ended() error {
	switch {
	case r.declared >= 0 && r.respGot < r.declared && (r.want < 0 || r.got < r.want):
		// The server promised more than it sent: a broken transfer.
		return r.p.fail("read", r.u, classify(r.b.ctx, "", 0, io.ErrUnexpectedEOF))
	case r.want >= 0 && r.got < r.want:
		return r.p.fail("read", r.u, fmt.Errorf("file ends after %d of %d bytes: %w", r.got, r.want, io.ErrUnexpectedEOF))
	}
	return io.EOF
}

// resume replaces a broken response with one for the rest of the range,
// waiting between attempts as Open's retries do; after p.retries resumes
// without a byte in between it gives up with the cause.
func (r *reader) resume(cause error) error {
	r.p.blame(r.m, cause)
	r.b.Close()
	r.b = nil
	for {
		if r.stuck >= r.p.retries || r.ctx.Err() != nil {
			return cause
		}
		r.stuck++
		t := time.NewTimer(r.p.pause(r.stuck-1, cause))
		select {
		case <-r.ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (resume abandoned: %w)", cause, r.ctx.Err())
		case <-t.C:
		}
		rest := int64(-1)
		if r.want >= 0 {
			rest = r.want - r.got
		}
		var next *reader
		err := r.p.doN(r.ctx, 0, func(m *mirror) error {
			rc, err := r.p.openOnce(r.ctx, m, r.path, r.start+r.got, rest, r.size)
			if err != nil {
				return err
			}
			if next, _ = rc.(*reader); next == nil {
				// Nothing left after all: the file ends here.
				rc.Close()
				return fmt.Errorf("file ends at offset %d: %w", r.start+r.got, io.ErrUnexpectedEOF)
			}
			return nil
		})
		switch {
		case err == nil:
			r.m, r.u, r.b, r.declared, r.respGot = next.m, next.u, next.b, next.declared, 0
			return nil
		case !errors.Is(err, backends.ErrUnavailable):
			return fmt.Errorf("%w (resuming at offset %d: %w)", cause, r.start+r.got, err)
		}
		cause = err
	}
}

func (r *reader) Close() error {
	if r.err == nil {
		r.err = errors.New("read after close")
	}
	if r.b == nil {
		return nil
	}
	err := r.b.Close()
	r.b = nil
	return err
}
