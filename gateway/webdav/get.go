package webdav

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/gateway/httpserve"
	"github.com/datagate/datagate/views"
)

// serveGet answers GET and HEAD itself rather than through x/net/webdav:
// whole local content goes to http.ServeContent as the plain *os.File, so
// the kernel sends it (sendfile) and Range, If-Match, If-None-Match,
// If-Modified-Since and multipart ranges are the standard library's; the
// ETag is the content's SHA-256. A collection gets an HTML listing.
func (s *Server) serveGet(w http.ResponseWriter, r *http.Request, tree *views.Tree) {
	ctx := r.Context()
	p := clean(r.URL.Path)
	f, err := tree.Open(ctx, p) // one lookup for the common case, a file
	if fs.KindOf(err) == fs.IsDir {
		s.serveListing(w, r, tree, p)
		return
	}
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	defer f.Close()
	info := f.Stat()
	o := f.Object()
	h := w.Header()
	h.Set("ETag", etagOf(o))
	sameVersion(r, o)
	h.Set("Content-Type", contentType(o, info.Name()))
	h["Content-Security-Policy"] = sandboxed
	if len(o.SHA256) == 32 {
		// What ownCloud clients (and rclone for them) read to verify.
		h.Set("OC-Checksum", "SHA256:"+fmt.Sprintf("%x", o.SHA256))
	}
	var content io.ReadSeeker = f
	if osf, ok := f.File(); ok && sizeIs(osf, o.Size) {
		content = osf
	} else {
		// Content still to fetch: its first byte before the status, so a
		// failing provider is an error status, not a 200 cut short.
		if err := httpserve.Prime(ctx, f, r, o.Size); err != nil {
			s.httpError(w, r, httpserve.FetchErr(err))
			return
		}
		content = &httpserve.LogBreak{ReadSeeker: f, Log: s.log, What: p}
	}
	http.ServeContent(w, r, info.Name(), o.ModTime, content)
}

// sandboxed is the Content-Security-Policy of file content: users'
// files are served on the origin whose Basic credentials a browser keeps
// (the HTML listings), so an HTML file a user put in a view another user
// reads ran its scripts with that user's credentials: it could read,
// write and delete in their views. Sandboxed, a page still shows, with
// no script and an origin of its own.
var sandboxed = []string{"sandbox"}

// sameVersion rewrites the conditions of a GET that name o's earlier
// "id-version" ETag (etagsOf) to the current one, which ServeContent
// compares with: a client that cached lazily fetched content before its
// SHA-256 was known revalidates it (304; If-Range: the range) instead of
// downloading it again.
func sameVersion(r *http.Request, o *fs.Object) {
	if len(o.SHA256) != 32 || r.Header.Get("If-None-Match") == "" && r.Header.Get("If-Match") == "" && r.Header.Get("If-Range") == "" {
		return // no earlier tag, or no condition: the plain GET costs nothing more
	}
	tags := etagsOf(o)
	if len(tags) < 2 {
		return
	}
	for _, k := range []string{"If-None-Match", "If-Match", "If-Range"} {
		if v := r.Header.Get(k); v != "" && etagListMatch(v, tags[1:], k == "If-None-Match") {
			r.Header.Set(k, tags[0])
		}
	}
}

// sizeIs reports whether f holds exactly size bytes, so ServeContent,
// which takes the size from Seek(0, io.SeekEnd), sends exactly the object.
func sizeIs(f *os.File, size int64) bool {
	st, err := f.Stat()
	return err == nil && st.Mode().IsRegular() && st.Size() == size
}

// httpError writes the status of a failed lookup.
func (s *Server) httpError(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	switch {
	case r.Context().Err() != nil:
		// The client went away: not the server's fault.
		s.log.DebugContext(r.Context(), "request ended: the client went away", "method", r.Method, "path", r.URL.Path, "err", err)
	case code >= 500:
		s.log.WarnContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	http.Error(w, http.StatusText(code)+reason(code, err), code)
}

// serveListing writes an HTML page listing collection p, streamed in the
// Tree's pages, so a browser can walk the tree without a WebDAV client.
func (s *Server) serveListing(w http.ResponseWriter, r *http.Request, tree *views.Tree, p string) {
	ctx := r.Context()
	first, err := tree.ReadDir(ctx, p, "", listPage)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	if r.Method == "HEAD" {
		return
	}
	bw := bufio.NewWriterSize(w, 32<<10)
	defer bw.Flush()
	base := (&url.URL{Path: p}).EscapedPath()
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	title := html.EscapeString(p)
	fmt.Fprintf(bw, `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>%s</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{padding:.2em 1em;text-align:left}td.n{text-align:right}tr:nth-child(even){background:#f4f4f4}</style>
</head><body><h1>%s</h1><table><tr><th>Name</th><th>Size</th><th>Modified (UTC)</th></tr>
`, title, title)
	if p != "/" {
		up := path.Dir(p)
		if up != "/" {
			up += "/"
		}
		fmt.Fprintf(bw, "<tr><td><a href=\"%s\">../</a></td><td></td><td></td></tr>\n", html.EscapeString((&url.URL{Path: up}).EscapedPath()))
	}
	ents := first
	for {
		for _, e := range ents {
			writeRow(bw, base, e)
		}
		if len(ents) < listPage || ctx.Err() != nil {
			break
		}
		if ents, err = tree.ReadDir(ctx, p, ents[len(ents)-1].Name(), listPage); err != nil {
			// Headers are gone: say so in the page and in the log.
			fmt.Fprintf(bw, "<tr><td colspan=3>listing failed: %s</td></tr>\n", html.EscapeString(err.Error()))
			s.log.WarnContext(ctx, "listing failed", "path", p, "err", err)
			break
		}
	}
	fmt.Fprint(bw, "</table></body></html>\n")
}

const listPage = 1000

func writeRow(w io.Writer, base string, e *views.Info) {
	name := e.Name()
	href := base + url.PathEscape(name)
	size := ""
	if e.IsDir() {
		name += "/"
		href += "/"
	} else {
		size = humanSize(e.Size())
	}
	mt := ""
	if !e.ModTime().IsZero() {
		mt = e.ModTime().UTC().Format(time.DateTime)
	}
	fmt.Fprintf(w, "<tr><td><a href=\"%s\">%s</a></td><td class=n>%s</td><td>%s</td></tr>\n",
		html.EscapeString(href), html.EscapeString(name), size, mt)
}

func humanSize(n int64) string {
	if n < 0 {
		return "?"
	}
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
