// Package http is a read-only backends.Provider over an HTTP(S) server: a
// data provider's web export, listed through its HTML directory indexes.
//
// Importers alias it (e.g. httpbackend) to keep net/http's name.
//
// # Reads
//
// Open sends one GET with a Range header (none for a whole read from 0).
// Servers that ignore Range are handled: the unwanted prefix is read and
// discarded as it streams. The reader counts bytes: a file shorter than the
// range asked for gives io.ErrUnexpectedEOF. A transfer that breaks — cut
// short of what the server announced, a reset, a stall — is resumed: the
// rest of the range is asked for again (of another mirror if there is
// one), up to Config.Retries times in a row without a byte in between;
// then the read fails with io.ErrUnexpectedEOF or the stall, and
// backends.ErrUnavailable.
//
// # Time limits
//
// Config.Timeout bounds connecting, the TLS handshake, the wait for response
// headers and every wait for body bytes: a stalled attempt surfaces as
// backends.ErrUnavailable within Timeout, never as a hang, so an operation
// on a dead server fails within (1 + Retries) × Timeout plus the back-off
// waits (each at most Timeout, however long a Retry-After asks for); with mirrors, that for each healthy mirror plus one Timeout for
// each mirror in back-off. There is no limit on a whole transfer, which
// may legitimately take hours.
//
// # Retries
//
// Failures that may pass — 5xx, 429 (a rate limit), timeouts, refused or
// reset connections — are retried with exponential backoff and full
// jitter (retry.Backoff) up to Config.Retries times: for Open until the
// body starts streaming (then broken transfers are resumed, above), for
// Stat and for each listing page. A Retry-After (seconds or a date) makes
// the wait that long, up to Config.Timeout. Other 4xx answers are final.
// The retry decorator is therefore not needed on top of this driver.
//
// # Listing
//
// List reads HTML directory indexes as nginx autoindex, Apache mod_autoindex
// and Python's http.server write them: the relative links of a page are its
// entries; those ending in "/" are directories and are walked. Links with a
// query, to the parent, or outside the page's directory are ignored. When
// the text after a link gives an exact byte size and a date (nginx, Apache
// for small files) the entry takes them, with the listing's precision
// (minutes) and no ETag; otherwise the file is Stat-ed (HEAD), 8 at a time.
//
// # Mirrors
//
// Config.URL and Config.URLs may name several mirrors of one tree; see
// mirror.go for how a failing one is set aside and probed again.
//
// # Credentials
//
// User info in a mirror's URL is sent as basic authentication and never
// appears in an error message; other secrets belong in Config.Headers.
package http

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/health"
	"github.com/datagate/datagate/backends/retry"
)

// Config configures an HTTP provider.
type Config struct {
	// URL is the base; provider paths are relative to it.
	URL string `yaml:"url"`
	// URLs are mirrors: bases serving the same files under the same
	// paths, tried in order after URL (which may then be left out).
	URLs []string `yaml:"urls"`
	// MirrorBackoff is how long a mirror that failed is passed over
	// before it is tried again (default 30s, ±25 %); it doubles with
	// each failed retry, up to 32 times. Unused with a single URL.
	MirrorBackoff time.Duration `yaml:"mirror_backoff"`
	// Timeout bounds connecting, response headers and each wait for body
	// bytes (default 30s).
	Timeout time.Duration `yaml:"timeout"`
	// Retries after a failure that may pass (default 4; negative: none).
	Retries int `yaml:"retries"`
	// Headers are sent with every request (e.g. Authorization).
	Headers map[string]string `yaml:"headers"`
	// InsecureSkipVerify accepts any TLS certificate. For tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// MaxConns bounds the connections to the server (default 16).
	MaxConns int `yaml:"max_conns"`
}

const (
	defaultTimeout  = 30 * time.Second
	defaultRetries  = 4
	defaultMaxConns = 16
	defaultBackoff  = 30 * time.Second
	statParallel    = 8
)

// Provider reads from one HTTP(S) base URL, or from the first mirror
// of several that answers.
type Provider struct {
	// immutable after New
	name      string
	mirrors   []*mirror       // at least one, in the configured order
	health    *health.Tracker // of the mirrors, when there are several
	header    http.Header
	host      string // a configured Host header, "" if none
	client    *http.Client
	timeout   time.Duration
	retries   int
	retryBase time.Duration
	retryMax  time.Duration
}

// New returns a provider for cfg.URL and cfg.URLs. It does not contact
// the servers.
func New(name string, cfg Config) (*Provider, error) {
	raw := cfg.URLs
	if cfg.URL != "" {
		raw = append([]string{cfg.URL}, raw...)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("http provider %q: no url: %w", name, iofs.ErrInvalid)
	}
	if cfg.Timeout < 0 || cfg.MaxConns < 0 || cfg.MirrorBackoff < 0 {
		return nil, fmt.Errorf("http provider %q: negative timeout, max_conns or mirror_backoff: %w", name, iofs.ErrInvalid)
	}
	p := &Provider{
		name:      name,
		header:    make(http.Header),
		timeout:   cfg.Timeout,
		retries:   cfg.Retries,
		retryBase: 100 * time.Millisecond,
		retryMax:  5 * time.Second,
	}
	if p.timeout == 0 {
		p.timeout = defaultTimeout
	}
	backoff := cfg.MirrorBackoff
	if backoff == 0 {
		backoff = defaultBackoff
	}
	p.health = health.New(health.Options{Base: backoff, Max: maxBackoff * backoff})
	if p.retries == 0 {
		p.retries = defaultRetries
	} else if p.retries < 0 {
		p.retries = 0
	}
	maxConns := cfg.MaxConns
	if maxConns == 0 {
		maxConns = defaultMaxConns
	}
	for _, r := range raw {
		m, err := newMirror(name, r)
		if err != nil {
			return nil, err
		}
		p.mirrors = append(p.mirrors, m)
	}
	p.header.Set("User-Agent", "datagate")
	for k, v := range cfg.Headers {
		if strings.EqualFold(k, "Host") {
			p.host = v
			continue
		}
		p.header.Set(k, v)
	}
	dialer := &net.Dialer{Timeout: p.timeout, KeepAlive: 30 * time.Second}
	p.client = &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       &tls.Config{InsecureSkipVerify: cfg.InsecureSkipVerify},
		TLSHandshakeTimeout:   p.timeout,
		ResponseHeaderTimeout: p.timeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          maxConns,
		MaxIdleConnsPerHost:   maxConns,
		MaxConnsPerHost:       maxConns,
		IdleConnTimeout:       90 * time.Second,
		// Byte ranges and lengths must be those of the stored file,
		// not of a compressed encoding.
		DisableCompression: true,
		ForceAttemptHTTP2:  true,
	}}
	return p, nil
}

// Name returns the configured name.
func (p *Provider) Name() string { return p.name }

// Close releases idle connections. The provider stays usable.
func (p *Provider) Close() error {
	p.client.CloseIdleConnections()
	return nil
}

// checkPath rejects paths that are not relative, clean and slash-separated.
func checkPath(path string) error {
	if path == "" || strings.HasPrefix(path, "/") || strings.IndexByte(path, 0) >= 0 {
		return fmt.Errorf("path %q: %w", path, iofs.ErrInvalid)
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("path %q: %w", path, iofs.ErrInvalid)
		}
	}
	return nil
}

// urlFor joins a checked path (or "" for the base) to the mirror's base
// URL, escaping each segment; dir adds the trailing slash of a directory.
func (m *mirror) urlFor(path string, dir bool) *url.URL {
	u := *m.base
	if path == "" {
		return &u
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	rel := strings.Join(segs, "/")
	if dir {
		rel += "/"
		path += "/"
	}
	u.RawPath = m.base.EscapedPath() + rel
	u.Path = m.base.Path + path
	return &u
}

// fail names the provider, operation and URL. URLs never hold user info.
func (p *Provider) fail(op string, u *url.URL, err error) error {
	return fmt.Errorf("http provider %q: %s %s: %w", p.name, op, u, err)
}

// errIdle is the cause of a request cancelled for want of body bytes.
var errIdle = errors.New("no data within the timeout")

// classify turns a response status or a transport error into the backends
// vocabulary. ctx is the request's context: its cause tells an idle
// timeout from the caller giving up.
func classify(ctx context.Context, status string, code int, err error) error {
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in our own message already
		}
		if context.Cause(ctx) == errIdle {
			return fmt.Errorf("%w: %w", backends.ErrUnavailable, errIdle)
		}
		if ctx.Err() != nil {
			return err // the caller cancelled: not the server's fault
		}
		var certErr *tls.CertificateVerificationError
		var hostErr x509.HostnameError
		var authErr x509.UnknownAuthorityError
		if errors.As(err, &certErr) || errors.As(err, &hostErr) || errors.As(err, &authErr) {
			return err // retrying will not fix a certificate
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			// Cut off before the announced length: the transfer
			// failed; the file itself may be fine.
			return fmt.Errorf("transfer cut short: %w: %w", io.ErrUnexpectedEOF, backends.ErrUnavailable)
		}
		// Refused, reset, timed out, DNS, TLS handshake: transient or
		// at least not ours to judge.
		return fmt.Errorf("%w: %w", backends.ErrUnavailable, err)
	}
	switch {
	case code == http.StatusNotFound || code == http.StatusGone:
		return fmt.Errorf("%s: %w", status, iofs.ErrNotExist)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return fmt.Errorf("%s: %w", status, iofs.ErrPermission)
	case code == http.StatusRequestedRangeNotSatisfiable || code == http.StatusBadRequest:
		return fmt.Errorf("%s: %w", status, iofs.ErrInvalid)
	case code >= 500, code == http.StatusTooManyRequests:
		// 429: a rate limit, which passes like an overload does.
		return fmt.Errorf("%s: %w", status, backends.ErrUnavailable)
	}
	return fmt.Errorf("unexpected status %s", status)
}

// answerErr classifies the status of resp, keeping its Retry-After (of a
// 429 or 503) for the retry loop.
func answerErr(ctx context.Context, resp *http.Response) error {
	err := classify(ctx, resp.Status, resp.StatusCode, nil)
	if d, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok && errors.Is(err, backends.ErrUnavailable) {
		return &waitError{err: err, wait: d}
	}
	return err
}

// retryAfter parses a Retry-After header: seconds, or an HTTP date.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	if h == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(h, 10, 64); err == nil {
		return time.Duration(max(n, 0)) * time.Second, n >= 0
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// waitError is a failure whose server asked for a pause before the next
// attempt (Retry-After).
type waitError struct {
	err  error
	wait time.Duration
}

func (e *waitError) Error() string { return e.err.Error() }
func (e *waitError) Unwrap() error { return e.err }

// retry retries fn while it fails with ErrUnavailable, up to retries
// times; with fast set, a refused connection is not retried (another
// mirror will be asked instead).
func (p *Provider) retry(ctx context.Context, retries int, fast bool, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || !errors.Is(err, backends.ErrUnavailable) || attempt >= retries || ctx.Err() != nil ||
			fast && errors.Is(err, syscall.ECONNREFUSED) {
			return err
		}
		t := time.NewTimer(p.pause(attempt, err))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (retry abandoned: %w)", err, ctx.Err())
		case <-t.C:
		}
	}
}

// pause is the wait before retry attempt+1 after err: the back-off, or
// longer when the server asked for it with Retry-After, but never more
// than the timeout, so that an operation on a server that keeps asking
// still fails within its bound ((1 + retries) × 2 × timeout at most).
func (p *Provider) pause(attempt int, err error) time.Duration {
	d := retry.Backoff(attempt, p.retryBase, p.retryMax)
	var we *waitError
	if errors.As(err, &we) {
		d = max(d, min(we.wait, p.timeout))
	}
	return d
}

// send issues one request. The caller closes the body of a non-nil
// response. Transport errors come back classified.
func (p *Provider) send(ctx context.Context, m *mirror, method string, u *url.URL, rng string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	for k, v := range p.header {
		req.Header[k] = v
	}
	if p.host != "" {
		req.Host = p.host
	}
	if m.user != nil && req.Header.Get("Authorization") == "" {
		pw, _ := m.user.Password()
		req.SetBasicAuth(m.user.Username(), pw)
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, classify(ctx, "", 0, err)
	}
	return resp, nil
}

// redirectedToDir reports whether the server answered for a directory: it
// redirected a file URL to one ending in "/".
func redirectedToDir(asked *url.URL, resp *http.Response) bool {
	return resp.Request != nil && strings.HasSuffix(resp.Request.URL.Path, "/") && !strings.HasSuffix(asked.Path, "/")
}

// Open returns bytes [off, off+length) of the file, or [off, EOF) when
// length < 0; see the package comment.
func (p *Provider) Open(ctx context.Context, path string, off, length int64) (io.ReadCloser, error) {
	return p.open(ctx, path, off, length, -1)
}

// OpenSized is Open for a file that must be size bytes long: the answer's
// Content-Range (or the Content-Length of a whole-file answer) gives the
// file's size, and another size is backends.ErrChanged.
func (p *Provider) OpenSized(ctx context.Context, path string, off, length, size int64) (io.ReadCloser, error) {
	return p.open(ctx, path, off, length, size)
}

// open is Open; size is the file's expected size, < 0 if unknown.
func (p *Provider) open(ctx context.Context, path string, off, length, size int64) (io.ReadCloser, error) {
	if err := checkPath(path); err != nil {
		return nil, p.fail("open", p.mirrors[0].base, err)
	}
	if off < 0 {
		u := p.mirrors[0].urlFor(path, false)
		return nil, p.fail("open", u, fmt.Errorf("negative offset %d: %w", off, iofs.ErrInvalid))
	}
	if length == 0 {
		// No Range header can ask for nothing; check the file is there
		// and long enough.
		e, err := p.Stat(ctx, path)
		if err != nil {
			return nil, err
		}
		if size >= 0 && e.Size != size {
			return nil, p.fail("open", p.mirrors[0].urlFor(path, false), changed(e.Size, size))
		}
		if off > e.Size {
			return nil, p.fail("open", p.mirrors[0].urlFor(path, false), fmt.Errorf("offset %d beyond size %d: %w", off, e.Size, iofs.ErrInvalid))
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	var rc io.ReadCloser
	err := p.do(ctx, func(m *mirror) error {
		var err error
		rc, err = p.openOnce(ctx, m, path, off, length, size)
		return err
	})
	return rc, err
}

// changed is the error for a file of size got where want was registered.
func changed(got, want int64) error {
	return fmt.Errorf("%w: %d bytes, registered with %d", backends.ErrChanged, got, want)
}

func (p *Provider) openOnce(ctx context.Context, m *mirror, path string, off, length, size int64) (io.ReadCloser, error) {
	u := m.urlFor(path, false)
	rng := ""
	switch {
	case length > 0:
		rng = fmt.Sprintf("bytes=%d-%d", off, off+length-1)
	case off > 0:
		rng = fmt.Sprintf("bytes=%d-", off)
	}
	rctx, cancel := context.WithCancelCause(ctx)
	resp, err := p.send(rctx, m, http.MethodGet, u, rng)
	if err != nil {
		cancel(nil)
		return nil, p.fail("open", u, err)
	}
	b := newBody(rctx, cancel, resp.Body, p.timeout)
	bad := func(err error) (io.ReadCloser, error) {
		b.Close()
		return nil, p.fail("open", u, err)
	}
	if redirectedToDir(u, resp) {
		return bad(fmt.Errorf("is a directory: %w", iofs.ErrInvalid))
	}
	var declared int64 // bytes the response promises from off; -1: unknown
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, end, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != off || end < start {
			return bad(fmt.Errorf("asked for %s, got Content-Range %q", rng, resp.Header.Get("Content-Range")))
		}
		if size >= 0 && total >= 0 && total != size {
			return bad(changed(total, size))
		}
		declared = end - start + 1
	case http.StatusOK:
		// The whole file: we asked for it, or the server ignores Range.
		declared = resp.ContentLength
		// With a Content-Encoding the length is the encoded one's, as the
		// bytes are: a file registered with its decoded size (a server
		// compressing unasked) is refused here rather than served in
		// its encoded form.
		if size >= 0 && declared >= 0 && declared != size {
			return bad(changed(declared, size))
		}
		if off > 0 {
			if declared >= 0 && declared < off {
				return bad(fmt.Errorf("offset %d beyond size %d: %w", off, declared, iofs.ErrInvalid))
			}
			n, err := io.CopyN(io.Discard, b, off)
			if err == io.EOF {
				return bad(fmt.Errorf("offset %d beyond size %d: %w", off, n, iofs.ErrInvalid))
			}
			if err != nil {
				return bad(classify(rctx, "", 0, err))
			}
			if declared >= 0 {
				declared -= off
			}
		}
	case http.StatusRequestedRangeNotSatisfiable:
		// Reading from the very end is valid and empty.
		_, _, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if ok && size >= 0 && total != size {
			return bad(changed(total, size))
		}
		if ok && total == off && length < 0 {
			b.Close()
			return io.NopCloser(strings.NewReader("")), nil
		}
		return bad(answerErr(rctx, resp))
	default:
		return bad(answerErr(rctx, resp))
	}
	return &reader{p: p, ctx: ctx, path: path, start: off, want: length, size: size, m: m, u: u, b: b, declared: declared}, nil
}

// parseContentRange parses "bytes start-end/size" and "bytes */size".
// size is -1 when given as "*"; start and end are -1 in the second form.
func parseContentRange(s string) (start, end, size int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, total, found := strings.Cut(strings.TrimSpace(rest), "/")
	if !found {
		return 0, 0, 0, false
	}
	size = -1
	if total != "*" {
		n, err := strconv.ParseInt(total, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, 0, false
		}
		size = n
	}
	if rng == "*" {
		return -1, -1, size, size >= 0
	}
	a, z, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(z, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, 0, false
	}
	return start, end, size, true
}

// Stat describes the file with a HEAD request, or a one-byte GET when the
// server refuses HEAD or gives no length.
func (p *Provider) Stat(ctx context.Context, path string) (backends.Entry, error) {
	if err := checkPath(path); err != nil {
		return backends.Entry{}, p.fail("stat", p.mirrors[0].base, err)
	}
	var e backends.Entry
	err := p.do(ctx, func(m *mirror) error {
		var err error
		e, err = p.statOnce(ctx, m, path, m.urlFor(path, false))
		return err
	})
	return e, err
}

func (p *Provider) statOnce(ctx context.Context, m *mirror, path string, u *url.URL) (backends.Entry, error) {
	resp, err := p.send(ctx, m, http.MethodHead, u, "")
	if err != nil {
		return backends.Entry{}, p.fail("stat", u, err)
	}
	resp.Body.Close()
	code, size := resp.StatusCode, resp.ContentLength
	if code == http.StatusMethodNotAllowed || code == http.StatusNotImplemented || code == http.StatusOK && size < 0 {
		resp, err = p.send(ctx, m, http.MethodGet, u, "bytes=0-0")
		if err != nil {
			return backends.Entry{}, p.fail("stat", u, err)
		}
		// Closing unread drops the connection if the server sent the
		// whole file, which is cheaper than draining it.
		resp.Body.Close()
		code, size = resp.StatusCode, resp.ContentLength
		switch code {
		case http.StatusPartialContent, http.StatusRequestedRangeNotSatisfiable:
			// A 416 carries "*/0": an empty file has no byte 0.
			_, _, size, _ = parseContentRange(resp.Header.Get("Content-Range"))
			code = http.StatusOK
		}
	}
	if code != http.StatusOK {
		return backends.Entry{}, p.fail("stat", u, answerErr(ctx, resp))
	}
	if redirectedToDir(u, resp) {
		return backends.Entry{}, p.fail("stat", u, fmt.Errorf("is a directory: %w", iofs.ErrInvalid))
	}
	if size < 0 {
		return backends.Entry{}, p.fail("stat", u, errors.New("server gives no size"))
	}
	e := backends.Entry{Path: path, Size: size, ETag: resp.Header.Get("ETag")}
	if lm := resp.Header.Get("Last-Modified"); lm != "" {
		if t, err := http.ParseTime(lm); err == nil {
			e.ModTime = t
		}
	}
	return e, nil
}

var (
	_ backends.Provider    = (*Provider)(nil)
	_ backends.SizedOpener = (*Provider)(nil)
)
