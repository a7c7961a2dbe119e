package webdav

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/datagate/datagate/fs"
)

// checkPreconditions evaluates If-Match, If-Unmodified-Since and
// If-None-Match (RFC 9110 13.2.2) for a request other than GET and HEAD
// (http.ServeContent does those) against the request's resource, and
// reports whether they hold. x/net/webdav reads only the WebDAV If
// header, so without this a PUT with If-None-Match: * overwrote an
// existing file and one with a stale If-Match replaced the newer version
// a client meant to protect (davfs2 and editors' "save only if unchanged"
// rely on both); Apache answers 412. The check is not atomic with the
// write that follows: two clients racing with one ETag can both pass, as
// with the If header's ETags.
func (s *Server) checkPreconditions(r *http.Request, rfs *reqFS) bool {
	im, ius, inm := r.Header.Get("If-Match"), r.Header.Get("If-Unmodified-Since"), r.Header.Get("If-None-Match")
	if im == "" && ius == "" && inm == "" {
		return true
	}
	ctx := r.Context()
	fi, err := rfs.stat(ctx, clean(r.URL.Path))
	exists := err == nil
	if err != nil && fs.KindOf(err) != fs.NotExist {
		// Let the method itself meet and report the failure.
		return true
	}
	var etags []string
	if exists && !fi.IsDir() {
		if o, err := fi.object(ctx); err == nil {
			etags = etagsOf(o)
		}
	}
	if im != "" {
		if !exists || !etagListMatch(im, etags, false) {
			return false
		}
	} else if ius != "" && exists {
		if t, err := http.ParseTime(ius); err == nil && fi.ModTime().Truncate(time.Second).After(t) {
			return false
		}
	}
	if inm != "" && exists && etagListMatch(inm, etags, true) {
		return false
	}
	return true
}

// etagListMatch reports whether a list of entity tags (or "*", which
// matches any existing resource: the caller checks existence) holds one
// of etags, the tags of the resource's current version. Weak comparison
// ignores the W/ prefix; strong comparison never matches a weak tag. A
// collection has no ETag: only "*" matches it.
func etagListMatch(list string, etags []string, weak bool) bool {
	if strings.TrimSpace(list) == "*" {
		return true
	}
	for t := range strings.SplitSeq(list, ",") {
		t = strings.TrimSpace(t)
		if w, ok := strings.CutPrefix(t, "W/"); ok {
			if !weak {
				continue
			}
			t = w
		}
		if slices.Contains(etags, t) {
			return true
		}
	}
	return false
}
