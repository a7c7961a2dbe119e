package http

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/html"

	"github.com/datagate/datagate/backends"
)

const (
	// maxPage bounds one index page, against a server streaming forever.
	maxPage = 256 << 20
	// maxDepth bounds the directory walk: servers that follow symbolic
	// links can serve a loop as an endless path.
	maxDepth = 64
)

// child is one link of an index page.
type child struct {
	name    string // unescaped, one segment
	dir     bool
	size    int64 // -1 when the listing gives none
	modTime time.Time
}

// List walks the directory indexes under prefix; see the package comment.
func (p *Provider) List(ctx context.Context, prefix string, fn func(backends.Entry) error) error {
	if len(prefix) > 1 {
		prefix = strings.TrimSuffix(prefix, "/")
	}
	if prefix != "" {
		if err := checkPath(prefix); err != nil {
			return p.fail("list", p.mirrors[0].base, err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l := &lister{p: p, ctx: ctx, cancel: cancel, fn: fn, sem: make(chan struct{}, statParallel)}
	l.walk(prefix)
	l.wg.Wait()
	return l.err
}

// lister runs one List: the walk in the calling goroutine, Stats of
// entries the index gives no size for in up to statParallel others.
type lister struct {
	p      *Provider
	ctx    context.Context
	cancel context.CancelFunc
	sem    chan struct{}
	wg     sync.WaitGroup

	mu  sync.Mutex // serialises fn; guards err
	fn  func(backends.Entry) error
	err error // the first error; stops everything
}

func (l *lister) failed(err error) {
	l.mu.Lock()
	if l.err == nil {
		l.err = err
		l.cancel()
	}
	l.mu.Unlock()
}

func (l *lister) emit(e backends.Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return
	}
	if err := l.fn(e); err != nil {
		l.err = err // the caller's own error, unwrapped
		l.cancel()
	}
}

func (l *lister) stopped() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err != nil
}

// walk lists dir and, depth first, its subdirectories.
func (l *lister) walk(top string) {
	type pending struct {
		dir   string
		depth int
	}
	stack := []pending{{top, 0}}
	for len(stack) > 0 && !l.stopped() {
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if d.depth > maxDepth {
			l.failed(l.p.fail("list", l.p.mirrors[0].urlFor(d.dir, true), fmt.Errorf("deeper than %d levels, a link loop? %w", maxDepth, iofs.ErrInvalid)))
			return
		}
		var children []child
		err := l.p.do(l.ctx, func(m *mirror) error {
			var err error
			children, err = l.p.page(l.ctx, m, m.urlFor(d.dir, true))
			return err
		})
		if err != nil {
			if d.dir == "" && errors.Is(err, iofs.ErrNotExist) {
				// Not an empty listing (which a crawl of a prefix not
				// there yet is): the configured URL lists nothing.
				err = fmt.Errorf("%v: the provider's base URL lists nothing: %w", err, iofs.ErrInvalid)
			}
			l.failed(err)
			return
		}
		for _, c := range children {
			path := c.name
			if d.dir != "" {
				path = d.dir + "/" + c.name
			}
			switch {
			case c.dir:
				stack = append(stack, pending{path, d.depth + 1})
			case c.size >= 0 && !c.modTime.IsZero():
				l.emit(backends.Entry{Path: path, Size: c.size, ModTime: c.modTime})
			default:
				l.statLater(path)
			}
			if l.stopped() {
				return
			}
		}
	}
}

// statLater Stats path in the background, at most statParallel at once.
func (l *lister) statLater(path string) {
	select {
	case l.sem <- struct{}{}:
	case <-l.ctx.Done():
		return
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer func() { <-l.sem }()
		e, err := l.p.Stat(l.ctx, path)
		switch {
		case err == nil:
			l.emit(e)
		case errors.Is(err, iofs.ErrNotExist):
			// Removed since the index was read.
		default:
			l.failed(err)
		}
	}()
}

// page fetches and parses one directory index.
func (p *Provider) page(ctx context.Context, m *mirror, u *url.URL) ([]child, error) {
	rctx, cancel := context.WithCancelCause(ctx)
	resp, err := p.send(rctx, m, http.MethodGet, u, "")
	if err != nil {
		cancel(nil)
		return nil, p.fail("list", u, err)
	}
	b := newBody(rctx, cancel, resp.Body, p.timeout)
	defer b.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, p.fail("list", u, answerErr(rctx, resp))
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/html" && mt != "application/xhtml+xml" {
		return nil, p.fail("list", u, fmt.Errorf("not an HTML directory index (%s): %w", mt, iofs.ErrInvalid))
	}
	lr := &io.LimitedReader{R: b, N: maxPage + 1}
	children, err := parseIndex(lr, resp.Request.URL, u)
	if err != nil {
		return nil, p.fail("list", u, classify(rctx, "", 0, err))
	}
	if lr.N <= 0 {
		return nil, p.fail("list", u, fmt.Errorf("index larger than %d bytes: %w", maxPage, iofs.ErrInvalid))
	}
	return children, nil
}

// parseIndex reads the links of an index page served from at (links
// resolve against it) for the directory dir (children must be in it).
func parseIndex(r io.Reader, at, dir *url.URL) ([]child, error) {
	z := html.NewTokenizer(r)
	var (
		out  []child
		seen = map[string]bool{}
		cur  *child // the last link, whose row text is being collected
		text strings.Builder
		inA  bool
	)
	finish := func() {
		if cur != nil {
			cur.size, cur.modTime = rowFacts(text.String())
			out = append(out, *cur)
		}
		cur = nil
		text.Reset()
	}
	for {
		switch z.Next() {
		case html.ErrorToken:
			if err := z.Err(); err != io.EOF {
				return nil, err
			}
			finish()
			return out, nil
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			switch string(name) {
			case "a":
				finish()
				inA = true
				for hasAttr {
					var k, v []byte
					k, v, hasAttr = z.TagAttr()
					if string(k) == "href" {
						if c, ok := linkChild(string(v), at, dir); ok && !seen[c.name] {
							seen[c.name] = true
							cur = &c
						}
						break
					}
				}
			case "tr", "li", "br", "p", "div":
				finish()
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "a":
				inA = false
			case "tr", "li", "pre", "table", "ul":
				finish()
			}
		case html.TextToken:
			if cur != nil && !inA && text.Len() < 1024 {
				text.Write(z.Text())
			}
		}
	}
}

// linkChild turns an href into a child of dir, if it is one.
func linkChild(href string, at, dir *url.URL) (child, bool) {
	ref, err := url.Parse(strings.TrimSpace(href))
	if err != nil || ref.RawQuery != "" || ref.ForceQuery || ref.User != nil {
		return child{}, false // sort links such as Apache's "?C=M;O=A"
	}
	u := at.ResolveReference(ref)
	if u.Scheme != dir.Scheme || u.Host != dir.Host {
		return child{}, false
	}
	rest, ok := strings.CutPrefix(u.Path, dir.Path)
	if !ok {
		return child{}, false // the parent, the root, elsewhere
	}
	name, isDir := strings.CutSuffix(rest, "/")
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") || strings.IndexByte(name, 0) >= 0 {
		return child{}, false // the page itself, or not a direct child
	}
	return child{name: name, dir: isDir, size: -1}, true
}

// Layouts of the dates indexes print next to a link: nginx, Apache.
var rowDates = []string{"02-Jan-2006 15:04", "2006-01-02 15:04"}

// rowFacts reads the size and date printed after a link: nginx puts
// "02-Jan-2006 15:04   1234" on the line, Apache the same in table cells.
// Sizes in K/M/G are rounded and not used; neither is a row without both.
func rowFacts(text string) (int64, time.Time) {
	line, _, _ := strings.Cut(strings.TrimLeft(text, " \t\r\n\u00a0"), "\n")
	f := strings.Fields(line)
	if len(f) < 3 {
		return -1, time.Time{}
	}
	size, err := strconv.ParseInt(f[len(f)-1], 10, 64)
	if err != nil || size < 0 {
		return -1, time.Time{}
	}
	for _, layout := range rowDates {
		if t, err := time.Parse(layout, f[0]+" "+f[1]); err == nil {
			return size, t
		}
	}
	return -1, time.Time{}
}
