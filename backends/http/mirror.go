package http

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/datagate/datagate/backends"
)

// Mirrors.
//
// A provider may have several base URLs serving the same files under the
// same paths (Config.URL, then Config.URLs). Every operation goes to the
// first healthy mirror in the configured order, with the usual retries.
// A mirror whose operation still fails with ErrUnavailable (5xx after the
// retries, a timeout, a refused connection — not retried when another
// mirror can be asked — or a transfer broken mid-body) is marked
// unhealthy and passed over for Config.MirrorBackoff; the next operation
// after that becomes its probe: one attempt, without retries, made by
// one operation at a time while the others keep to the healthy mirrors.
// A failed probe doubles the back-off (up to 32 times); any answer that
// is not ErrUnavailable (a 404 is an answer) makes it healthy again.
// When every usable mirror has failed, those in back-off are asked once
// each anyway rather than failing without a request: a mirror just
// marked down may be up again. The operation's error then names every
// mirror's failure.
//
// With a single URL none of this applies: failures are retried as before
// and no health is kept.

// maxBackoffShift caps the doubling of a mirror's back-off (2^5 = 32).
const maxBackoffShift = 5

// mirror is one base URL and its health.
type mirror struct {
	// immutable after newMirror
	base *url.URL // no user info, query or fragment; path ends in "/"
	user *url.Userinfo

	mu sync.Mutex
	// guarded by mu
	failures int       // consecutive failed operations; 0: healthy
	until    time.Time // passed over before this, when failures > 0
	probing  bool      // an operation is trying it after its back-off
}

// newMirror parses and checks one configured base URL.
func newMirror(name, raw string) (*mirror, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// The parse error quotes the URL, credentials and all.
		return nil, fmt.Errorf("http provider %q: invalid url: %w", name, iofs.ErrInvalid)
	}
	// Shown without credentials, query or fragment, which may hold tokens.
	shown := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String()
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("http provider %q: url %s: want http:// or https:// and a host: %w", name, shown, iofs.ErrInvalid)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, fmt.Errorf("http provider %q: url %s: a query or fragment cannot be joined with paths; put tokens in headers: %w", name, shown, iofs.ErrInvalid)
	}
	base := *u
	base.User = nil
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
		if base.RawPath != "" {
			base.RawPath += "/"
		}
	}
	return &mirror{base: &base, user: u.User}, nil
}

// take decides whether an operation starting now asks m: a healthy mirror
// with retries, a mirror whose back-off has passed as the probe (one
// attempt; the caller must settle it), otherwise not.
func (m *mirror) take(now time.Time, retries int) (int, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.failures == 0:
		return retries, true
	case !m.probing && !now.Before(m.until):
		m.probing = true
		return 0, true
	}
	return 0, false
}

// settle records the outcome of asking m: ErrUnavailable counts as a
// failure, anything else (success or a final answer) as health. A call
// abandoned by its caller proves nothing either way.
func (m *mirror) settle(ctx context.Context, err error, backoff time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.probing = false
	switch {
	case ctx.Err() != nil:
	case err == nil || !errors.Is(err, backends.ErrUnavailable):
		m.failures = 0
	default:
		m.failures++
		m.until = time.Now().Add(backoff << min(m.failures-1, maxBackoffShift))
	}
}

// healthy reports whether m is in use (for tests and status).
func (m *mirror) healthy() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.failures == 0
}

// blame marks the mirror of a transfer that broke mid-body, so that the
// retry decorator's resumed read goes to another one.
func (p *Provider) blame(m *mirror, err error) {
	if len(p.mirrors) > 1 && errors.Is(err, backends.ErrUnavailable) {
		m.settle(context.Background(), err, p.backoff)
	}
}

// do runs fn on the mirrors as the comment at the top of this file says
// and returns the first success or final answer.
func (p *Provider) do(ctx context.Context, fn func(m *mirror) error) error {
	return p.doN(ctx, p.retries, fn)
}

// doN is do with retries retries on each healthy mirror.
func (p *Provider) doN(ctx context.Context, retries int, fn func(m *mirror) error) error {
	if len(p.mirrors) == 1 {
		m := p.mirrors[0]
		return p.retry(ctx, retries, false, func() error { return fn(m) })
	}
	var errs []error
	var later []*mirror
	for _, m := range p.mirrors {
		n, ok := m.take(time.Now(), retries)
		if !ok {
			later = append(later, m)
			continue
		}
		err := p.retry(ctx, n, true, func() error { return fn(m) })
		m.settle(ctx, err, p.backoff)
		if err == nil || !errors.Is(err, backends.ErrUnavailable) || ctx.Err() != nil {
			return err
		}
		errs = append(errs, err)
	}
	for _, m := range later {
		err := fn(m)
		m.settle(ctx, err, p.backoff)
		if err == nil || !errors.Is(err, backends.ErrUnavailable) || ctx.Err() != nil {
			return err
		}
		errs = append(errs, err)
	}
	return &mirrorsError{name: p.name, errs: errs}
}

// mirrorsError is the failure of every mirror; each error names its URL.
type mirrorsError struct {
	name string
	errs []error
}

func (e *mirrorsError) Error() string {
	msgs := make([]string, len(e.errs))
	for i, err := range e.errs {
		msgs[i] = err.Error()
	}
	return fmt.Sprintf("http provider %q: all %d mirrors failed: %s", e.name, len(e.errs), strings.Join(msgs, "; "))
}

func (e *mirrorsError) Unwrap() []error { return e.errs }
