// Package retry is a backends.Provider decorator that retries Open, Stat and
// List when the wrapped provider reports backends.ErrUnavailable, with
// exponential backoff and full jitter, and resumes a read that fails
// mid-stream by reopening at the current offset.
//
// Only ErrUnavailable is retried: a missing file, a refusal or a bad range
// will not get better by asking again. Put is never retried (its reader has
// been consumed); Put and Delete pass straight through.
package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/datagate/datagate/backends"
)

// Options tune the retries. Zero values take the defaults.
type Options struct {
	// Attempts is the number of tries per operation, the first included
	// (default 4). For a reader it bounds the consecutive failed reopens
	// that make no progress.
	Attempts int
	// Base is the backoff before the first retry (default 100ms); each
	// retry doubles it, up to Max (default 5s). The wait is drawn
	// uniformly from [0, backoff) ("full jitter").
	Base time.Duration
	Max  time.Duration
	// Logger receives one line per retry; nil discards.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Attempts <= 0 {
		o.Attempts = 4
	}
	if o.Base <= 0 {
		o.Base = 100 * time.Millisecond
	}
	if o.Max <= 0 {
		o.Max = 5 * time.Second
	}
	if o.Max < o.Base {
		o.Max = o.Base
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Backoff returns how long to wait before retry number attempt (0 for the
// first retry): a uniform random duration in [0, min(max, base·2^attempt)).
// Full jitter spreads the retries of many clients that failed together.
func Backoff(attempt int, base, max time.Duration) time.Duration {
	if base <= 0 {
		return 0
	}
	ceil := max
	if attempt < 0 {
		attempt = 0
	}
	// base<<attempt overflows past 62 doublings; cap before shifting.
	if attempt < 62 && base <= max>>attempt {
		ceil = base << attempt
	}
	if ceil <= 0 {
		return 0
	}
	return rand.N(ceil)
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// New wraps p. When p is a backends.Writer the result is a *Writer (so it
// is a backends.Writer too); otherwise it is a *Provider.
func New(p backends.Provider, opts Options) backends.Provider {
	rp := &Provider{Provider: p, opts: opts.withDefaults()}
	if w, ok := p.(backends.Writer); ok {
		return &Writer{Provider: rp, w: w}
	}
	return rp
}

// Provider retries the reads of the provider it embeds.
type Provider struct {
	backends.Provider
	// immutable after New
	opts Options

	retries atomic.Uint64 // see Retries
}

// Retries counts the retries made since New: each new attempt of an
// Open, Stat or List after the provider was unavailable, and each
// reopen of a read that failed mid-stream.
func (p *Provider) Retries() uint64 { return p.retries.Load() }

// do runs fn up to opts.Attempts times while it fails with ErrUnavailable.
// The returned error is fn's last, with ctx's error joined when the wait
// was cut short.
func (p *Provider) do(ctx context.Context, op, path string, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || !errors.Is(err, backends.ErrUnavailable) {
			return err
		}
		if attempt+1 >= p.opts.Attempts {
			return fmt.Errorf("%w (gave up after %d attempts)", err, attempt+1)
		}
		d := Backoff(attempt, p.opts.Base, p.opts.Max)
		p.retries.Add(1)
		p.opts.Logger.Warn("retrying", "provider", p.Name(), "op", op, "path", path,
			"attempt", attempt+1, "wait", d, "err", err)
		if cerr := sleep(ctx, d); cerr != nil {
			return fmt.Errorf("%w (retry abandoned: %w)", err, cerr)
		}
	}
}

// Open opens the range, retrying while the provider is unavailable. The
// reader resumes at the current offset when a read fails with
// ErrUnavailable, so the caller sees the exact bytes or an error.
func (p *Provider) Open(ctx context.Context, path string, off, length int64) (io.ReadCloser, error) {
	return p.OpenSized(ctx, path, off, length, -1)
}

// OpenSized is Open for a file that must be size bytes long (size < 0:
// unknown), checked by the wrapped driver when it is a
// backends.SizedOpener (on every reopen too), else not at all.
func (p *Provider) OpenSized(ctx context.Context, path string, off, length, size int64) (io.ReadCloser, error) {
	var rc io.ReadCloser
	err := p.do(ctx, "open", path, func() error {
		var err error
		rc, err = p.open(ctx, path, off, length, size)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &reader{p: p, ctx: ctx, path: path, off: off, length: length, size: size, rc: rc}, nil
}

// open is one attempt of OpenSized.
func (p *Provider) open(ctx context.Context, path string, off, length, size int64) (io.ReadCloser, error) {
	if so, ok := p.Provider.(backends.SizedOpener); ok && size >= 0 {
		return so.OpenSized(ctx, path, off, length, size)
	}
	return p.Provider.Open(ctx, path, off, length)
}

// Stat retries while the provider is unavailable.
func (p *Provider) Stat(ctx context.Context, path string) (backends.Entry, error) {
	var e backends.Entry
	err := p.do(ctx, "stat", path, func() error {
		var err error
		e, err = p.Provider.Stat(ctx, path)
		return err
	})
	return e, err
}

// List retries while the provider is unavailable and no entry has been
// passed to fn yet: once fn has seen entries a retry would repeat them,
// and remembering them all to skip duplicates would cost unbounded memory.
func (p *Provider) List(ctx context.Context, prefix string, fn func(backends.Entry) error) error {
	called := false
	err := p.do(ctx, "list", prefix, func() error {
		err := p.Provider.List(ctx, prefix, func(e backends.Entry) error {
			called = true
			return fn(e)
		})
		if err != nil && called {
			return errNoRetry{err}
		}
		return err
	})
	var nr errNoRetry
	if errors.As(err, &nr) {
		return nr.err
	}
	return err
}

// errNoRetry hides an error from do's ErrUnavailable test.
type errNoRetry struct{ err error }

func (e errNoRetry) Error() string { return e.err.Error() }

var (
	_ backends.Provider    = (*Provider)(nil)
	_ backends.SizedOpener = (*Provider)(nil)
)

// Writer is the decorator of a provider that is a backends.Writer.
type Writer struct {
	*Provider
	// immutable after New
	w backends.Writer
}

// Put passes through: the reader cannot be rewound for a second try.
func (w *Writer) Put(ctx context.Context, path string, r io.Reader, size int64) error {
	return w.w.Put(ctx, path, r, size)
}

// Delete passes through.
func (w *Writer) Delete(ctx context.Context, path string) error {
	return w.w.Delete(ctx, path)
}

var _ backends.Writer = (*Writer)(nil)

// reader resumes the stream after an ErrUnavailable read error by
// reopening [off+done, end). It keeps the ctx given to Open, as an
// http.Response body does, because reopening is part of reading.
type reader struct {
	p      *Provider
	ctx    context.Context
	path   string
	off    int64 // start of the range asked for
	length int64 // as asked for; < 0: to EOF
	size   int64 // the file's expected size; < 0: unknown
	done   int64 // bytes returned so far
	rc     io.ReadCloser
	fails  int   // consecutive failures without progress
	err    error // sticky: once failed, always failed
}

func (r *reader) Read(b []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	for {
		if r.rc == nil {
			if err := r.reopen(); err != nil {
				r.err = err
				return 0, err
			}
		}
		n, err := r.rc.Read(b)
		r.done += int64(n)
		if n > 0 {
			r.fails = 0
		}
		if err == nil || err == io.EOF || !errors.Is(err, backends.ErrUnavailable) {
			if err != nil && err != io.EOF {
				r.err = err
			}
			return n, err
		}
		// The stream broke; drop it and reopen on the next pass (or on
		// the next call, so the bytes already read are returned now).
		r.rc.Close()
		r.rc = nil
		r.fails++
		if r.fails >= r.p.opts.Attempts {
			r.err = fmt.Errorf("%w (gave up after %d failures at offset %d)", err, r.fails, r.off+r.done)
			return n, r.err
		}
		d := Backoff(r.fails-1, r.p.opts.Base, r.p.opts.Max)
		r.p.retries.Add(1)
		r.p.opts.Logger.Warn("resuming read", "provider", r.p.Name(), "path", r.path,
			"offset", r.off+r.done, "attempt", r.fails, "wait", d, "err", err)
		if cerr := sleep(r.ctx, d); cerr != nil {
			r.err = fmt.Errorf("%w (resume abandoned: %w)", err, cerr)
			return n, r.err
		}
		if n > 0 {
			return n, nil
		}
	}
}

// reopen opens the rest of the range, retrying like Open but counting the
// failures against the reader's budget.
func (r *reader) reopen() error {
	rest := int64(-1)
	if r.length >= 0 {
		rest = r.length - r.done
	}
	for {
		rc, err := r.p.open(r.ctx, r.path, r.off+r.done, rest, r.size)
		if err == nil {
			r.rc = rc
			return nil
		}
		if !errors.Is(err, backends.ErrUnavailable) {
			return err
		}
		r.fails++
		if r.fails >= r.p.opts.Attempts {
			return fmt.Errorf("%w (gave up after %d failures at offset %d)", err, r.fails, r.off+r.done)
		}
		d := Backoff(r.fails-1, r.p.opts.Base, r.p.opts.Max)
		r.p.retries.Add(1)
		if cerr := sleep(r.ctx, d); cerr != nil {
			return fmt.Errorf("%w (resume abandoned: %w)", err, cerr)
		}
	}
}

func (r *reader) Close() error {
	if r.err == nil {
		r.err = errors.New("read after close")
	}
	if r.rc == nil {
		return nil
	}
	err := r.rc.Close()
	r.rc = nil
	return err
}

// The store reads retry counts through this (fs/store/stats.go).
var _ interface{ Retries() uint64 } = (*Writer)(nil)
