package http

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// site serves files like a static web server: ServeContent (with Range)
// for files, a redirect to "dir/" for a directory without its slash, and a
// generated index page in one of three styles for directories.
type site struct {
	files map[string][]byte
	mod   time.Time
	style string // "nginx", "apache" or "python"
	mount string // the path the site is served under, e.g. "/data"
	heads atomic.Int32
	gets  atomic.Int32
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodHead:
		s.heads.Add(1)
	case http.MethodGet:
		s.gets.Add(1)
	}
	if r.URL.Path == s.mount {
		http.Redirect(w, r, s.mountURL()+"/", http.StatusMovedPermanently)
		return
	}
	p, ok := strings.CutPrefix(r.URL.Path, s.mount+"/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if data, ok := s.files[p]; ok {
		w.Header().Set("ETag", fmt.Sprintf(`"%x"`, md5.Sum(data)))
		http.ServeContent(w, r, p, s.mod, bytes.NewReader(data))
		return
	}
	dir := strings.TrimSuffix(p, "/")
	names := s.children(dir)
	if names == nil {
		http.NotFound(w, r)
		return
	}
	if !strings.HasSuffix(r.URL.Path, "/") {
		http.Redirect(w, r, r.URL.EscapedPath()+"/", http.StatusMovedPermanently)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	var b strings.Builder
	switch s.style {
	case "nginx":
		fmt.Fprintf(&b, "<html>\r\n<head><title>Index of %s/%s</title></head>\r\n<body>\r\n<h1>Index of %[1]s/%[2]s</h1><hr><pre><a href=\"../\">../</a>\r\n", s.mount, p)
		for _, n := range names {
			size := "-"
			if data, ok := s.files[join(dir, n)]; ok {
				size = fmt.Sprint(len(data))
			}
			fmt.Fprintf(&b, "<a href=\"%s\">%s</a>%s %s %19s\r\n", html.EscapeString(escape(n)), html.EscapeString(n), strings.Repeat(" ", max(1, 50-len(n))), s.mod.UTC().Format("02-Jan-2006 15:04"), size)
		}
		b.WriteString("</pre><hr></body>\r\n</html>\r\n")
	case "apache":
		// Absolute links, sort links, a parent link and sizes that are
		// exact only below 1 KiB, as mod_autoindex prints them.
		b.WriteString(`<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN"><html><head><title>Index</title></head><body><table>`)
		b.WriteString(`<tr><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th><th><a href="?C=S;O=A">Size</a></th></tr>` + "\n")
		fmt.Fprintf(&b, "<tr><td><a href=\"%s/\">Parent Directory</a></td><td>&nbsp;</td><td align=\"right\">  - </td></tr>\n", s.mountURL())
		for _, n := range names {
			size := "  - "
			if data, ok := s.files[join(dir, n)]; ok {
				if len(data) < 1024 {
					size = fmt.Sprintf(" %d ", len(data))
				} else {
					size = fmt.Sprintf("%.1fM", float64(len(data))/(1<<20))
				}
			}
			abs := s.mountURL() + "/" + escape(join(dir, n))
			if strings.HasSuffix(n, "/") {
				abs = s.mountURL() + "/" + escape(join(dir, strings.TrimSuffix(n, "/"))) + "/"
			}
			fmt.Fprintf(&b, "<tr><td valign=\"top\"><img src=\"/icons/unknown.gif\" alt=\"[   ]\"></td><td><a href=\"%s\">%s</a></td><td align=\"right\">%s  </td><td align=\"right\">%s</td><td>&nbsp;</td></tr>\n",
				html.EscapeString(abs), html.EscapeString(n), s.mod.UTC().Format("2006-01-02 15:04"), size)
		}
		b.WriteString("</table></body></html>\n")
	default: // python -m http.server, plus links a crawler must ignore
		fmt.Fprintf(&b, "<!DOCTYPE HTML>\n<html><head><title>Directory listing for /%s</title></head><body><ul>\n", p)
		for _, n := range names {
			fmt.Fprintf(&b, "<li><a href=\"%s\">%s</a></li>\n", html.EscapeString(escape(n)), html.EscapeString(n))
		}
		b.WriteString(`<li><a href="http://example.invalid/x.txt">elsewhere</a></li><li><a href="/">root</a></li><li><a href="#top">top</a></li><li><a href="sub/c.txt">deep</a></li>` + "\n</ul></body></html>\n")
	}
	fmt.Fprint(w, b.String())
}

// children lists the direct children of dir, directories with a trailing
// slash; nil if dir has none.
func (s *site) children(dir string) []string {
	seen := map[string]bool{}
	for name := range s.files {
		rest := name
		if dir != "" {
			var ok bool
			if rest, ok = strings.CutPrefix(name, dir+"/"); !ok {
				continue
			}
		}
		first, _, deeper := strings.Cut(rest, "/")
		if deeper {
			first += "/"
		}
		seen[first] = true
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// escape escapes each segment of a relative path, keeping a trailing
// slash. Colons are escaped too, as servers do: "a:b" would be a scheme.
func escape(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = strings.ReplaceAll(url.PathEscape(s), ":", "%3A")
	}
	return strings.Join(segs, "/")
}

// serve starts s under s.mount on 127.0.0.1 and returns the base URL.
func serve(t testing.TB, s *site) string {
	t.Helper()
	if s.mod.IsZero() {
		s.mod = time.Date(2024, 1, 12, 10, 0, 0, 0, time.UTC)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv.URL + s.mountURL() + "/"
}

// mountURL is the mount path, escaped for a URL.
func (s *site) mountURL() string { return (&url.URL{Path: s.mount}).EscapedPath() }

// newTest makes a provider for tests: fast retries, closed at the end.
func newTest(t testing.TB, cfg Config) *Provider {
	t.Helper()
	p, err := New("test", cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.retryBase, p.retryMax = time.Millisecond, 5*time.Millisecond
	t.Cleanup(func() { p.Close() })
	return p
}
