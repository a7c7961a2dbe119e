package http

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"net/url"
	"strings"

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
// unhealthy in a health.Tracker and passed over for about
// Config.MirrorBackoff (±25 %); the next operation after that becomes its
// probe: one attempt, without retries, made by one operation at a time
// while the others keep to the healthy mirrors. A failed probe doubles
// the back-off (up to 32 times); any answer that is not ErrUnavailable (a
// 404 is an answer) makes it healthy again. When every usable mirror has
// failed, those in back-off (and a failed probe) are asked anyway, with
// the usual retries, rather than failing with fewer chances than a single
// URL would have had: a mirror just marked down may be up again.
// The operation's error then names every mirror's failure. A mirror
// answering "no such file" (404, 410) passes the operation on to the next
// usable one, as a mirror's sync may lag behind; when none has the file,
// the first answer is returned.
//
// With a single URL none of this applies: failures are retried as before
// and no health is kept.

// maxBackoff is the longest back-off, in multiples of Config.MirrorBackoff.
const maxBackoff = 32

// mirror is one base URL; its health is kept in Provider.health under
// its base URL.
type mirror struct {
	base *url.URL // no user info, query or fragment; path ends in "/"
	user *url.Userinfo
	key  string // base.String(), the health.Tracker name
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
	return &mirror{base: &base, user: u.User, key: base.String()}, nil
}

// take decides whether an operation starting now asks m: a healthy mirror
// with retries, a mirror whose back-off has passed as the probe (one
// attempt; the caller must settle it), otherwise not.
func (p *Provider) take(m *mirror, retries int) (int, bool) {
	if p.health.Healthy(m.key) {
		return retries, true
	}
	return 0, p.health.Usable(m.key)
}

// settle records the outcome of asking m: ErrUnavailable counts as a
// failure, anything else (success or a final answer) as health. A call
// abandoned by its caller proves nothing, except that a probe it held is
// over: the mirror stays in back-off.
func (p *Provider) settle(ctx context.Context, m *mirror, err error) {
	switch {
	case ctx.Err() != nil:
		if !p.health.Healthy(m.key) {
			p.health.Failure(m.key)
		}
	case err == nil || !errors.Is(err, backends.ErrUnavailable):
		p.health.Success(m.key)
	default:
		p.health.Failure(m.key)
	}
}

// blame marks the mirror of a transfer that broke mid-body, so that the
// resumed read goes to another one.
func (p *Provider) blame(m *mirror, err error) {
	if len(p.mirrors) > 1 && errors.Is(err, backends.ErrUnavailable) {
		p.health.Failure(m.key)
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
	type attempt struct {
		m    *mirror
		left int // retries it may still have
	}
	var later []attempt
	var notFound error // the first mirror's "no such file"
	for _, m := range p.mirrors {
		n, ok := p.take(m, retries)
		if !ok {
			later = append(later, attempt{m, retries})
			continue
		}
		err := p.retry(ctx, n, true, func() error { return fn(m) })
		p.settle(ctx, m, err)
		if (errors.Is(err, iofs.ErrNotExist) || errors.Is(err, backends.ErrChanged)) && ctx.Err() == nil {
			// A mirror that lags behind (its sync still running)
			// lacks the newest files, or has their previous
			// version: the next healthy one may have the one
			// wanted. The mirror answered: it is not set aside.
			if notFound == nil {
				notFound = err
			}
			continue
		}
		if err == nil || !errors.Is(err, backends.ErrUnavailable) || ctx.Err() != nil {
			return err
		}
		if n < retries { // a probe: one attempt of its retries
			later = append(later, attempt{m, retries - 1})
		} else {
			errs = append(errs, err)
		}
	}
	if notFound != nil {
		// No usable mirror has the file: the mirrors in back-off are
		// not waited for to say so too.
		return notFound
	}
	// Every usable mirror has failed: those in back-off, and a failed
	// probe, get the retries a single URL would have had, so that one
	// mirror's recent failure does not leave an operation fewer chances
	// than the configured retries when the other mirrors are down.
	for _, a := range later {
		if a.left < 0 {
			continue
		}
		err := p.retry(ctx, a.left, true, func() error { return fn(a.m) })
		p.settle(ctx, a.m, err)
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
