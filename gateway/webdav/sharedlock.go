package webdav

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/webdav"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/views"
)

// lockInfo is a LOCK request body.
type lockInfo struct {
	XMLName   xml.Name  `xml:"DAV: lockinfo"`
	Exclusive *struct{} `xml:"DAV: lockscope>exclusive"`
	Shared    *struct{} `xml:"DAV: lockscope>shared"`
	Write     *struct{} `xml:"DAV: locktype>write"`
	Owner     struct {
		InnerXML string `xml:",innerxml"`
	} `xml:"DAV: owner"`
}

// readLockInfo parses a LOCK body asking for a write lock, exclusive or
// shared; anything else is left to x/net/webdav (which refuses it).
func readLockInfo(body []byte) (lockInfo, bool) {
	var li lockInfo
	if len(bytes.TrimSpace(body)) == 0 || xml.Unmarshal(body, &li) != nil {
		return li, false
	}
	return li, li.Write != nil && (li.Shared != nil) != (li.Exclusive != nil)
}

// parseTimeout reads the first value of a Timeout header; -1 is Infinite.
func parseTimeout(h string) (time.Duration, bool) {
	if h == "" {
		return -1, true
	}
	first, _, _ := strings.Cut(h, ",")
	first = strings.TrimSpace(first)
	if first == "Infinite" {
		return -1, true
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(first, "Second-"), 10, 32)
	if err != nil || !strings.HasPrefix(first, "Second-") {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

// serveLock takes a write lock on the request's resource (x/net/webdav
// has no shared locks, and states the timeout asked for rather than the
// one given), making an empty file if nothing is there, and answers with
// its lockdiscovery.
func (s *Server) serveLock(w http.ResponseWriter, r *http.Request, rfs *reqFS, locks *treeLocks, li lockInfo) {
	depth := r.Header.Get("Depth")
	if depth != "" && depth != "0" && depth != "infinity" {
		http.Error(w, "bad Depth header", http.StatusBadRequest)
		return
	}
	dur, ok := parseTimeout(r.Header.Get("Timeout"))
	if !ok {
		http.Error(w, "bad Timeout header", http.StatusBadRequest)
		return
	}
	p := clean(r.URL.Path)
	// A lock keeps every other writer out: it needs the w right, as
	// Apache's LOCK does. Without this check a user who could only read
	// a view locked it whole (Depth infinity) and refused its writers'
	// changes for up to max_lock_timeout; the root of several views has
	// no rights and cannot be locked. (A path with nothing there is
	// checked by the empty file made below.)
	if fi, err := rfs.stat(r.Context(), p); err == nil && fi.Rights()&views.Write == 0 {
		http.Error(w, "Forbidden: LOCK "+p+" needs the w right", http.StatusForbidden)
		return
	}
	now := time.Now()
	d := webdav.LockDetails{Root: p, Duration: dur, OwnerXML: li.Owner.InnerXML, ZeroDepth: depth == "0"}
	shared := li.Shared != nil
	token, err := locks.create(now, d, shared)
	if errors.Is(err, webdav.ErrLocked) {
		http.Error(w, webdav.StatusText(webdav.StatusLocked), webdav.StatusLocked)
		return
	}
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	created := false
	ctx := r.Context()
	if _, err := rfs.stat(ctx, p); fs.KindOf(err) == fs.NotExist {
		f, err := rfs.OpenFile(ctx, p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
		if err == nil {
			err = f.Close()
		}
		if err != nil {
			locks.Unlock(now, token)
			if cause := rfs.last(); cause != nil {
				err = cause
			}
			s.httpError(w, r, err)
			return
		}
		created = true
	} else if err != nil {
		locks.Unlock(now, token)
		s.httpError(w, r, err)
		return
	}
	w.Header().Set("Lock-Token", "<"+token+">")
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	writeLockDiscovery(w, code, locks.ls, token, p)
}

// serveRefresh refreshes the lock an If header names (a LOCK without
// body).
func (s *Server) serveRefresh(w http.ResponseWriter, r *http.Request, locks *treeLocks) {
	dur, ok := parseTimeout(r.Header.Get("Timeout"))
	if !ok {
		http.Error(w, "bad Timeout header", http.StatusBadRequest)
		return
	}
	token := ifToken(r.Header.Get("If"))
	if token == "" {
		http.Error(w, "a lock refresh names its lock in the If header", http.StatusBadRequest)
		return
	}
	d, err := locks.Refresh(time.Now(), token, dur)
	switch {
	case errors.Is(err, webdav.ErrNoSuchLock):
		http.Error(w, "no such lock", http.StatusPreconditionFailed)
		return
	case errors.Is(err, webdav.ErrLocked):
		http.Error(w, webdav.StatusText(webdav.StatusLocked), webdav.StatusLocked)
		return
	case err != nil:
		s.httpError(w, r, err)
		return
	}
	writeLockDiscovery(w, http.StatusOK, locks.ls, token, d.Root)
}

// ifToken returns the one lock token of an If header such as
// "(<urn:uuid:...>)" or "<http://host/path> (<urn:uuid:...>)".
func ifToken(h string) string {
	i := strings.IndexByte(h, '(')
	if i < 0 {
		return ""
	}
	rest := h[i+1:]
	j := strings.IndexByte(rest, '<')
	k := strings.IndexByte(rest, '>')
	if j < 0 || k < j {
		return ""
	}
	return rest[j+1 : k]
}

// writeLockDiscovery answers a LOCK with the lock as it now is.
func writeLockDiscovery(w http.ResponseWriter, code int, ls *LockStore, token, root string) {
	ls.mu.Lock()
	c := lock{token: token}
	if l := ls.byToken[token]; l != nil {
		c = *l
	}
	ls.mu.Unlock()
	var b bytes.Buffer
	writeActiveLock(&b, &c, root, time.Time{})
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?>`+"\n"+
		`<D:prop xmlns:D="DAV:"><D:lockdiscovery>%s</D:lockdiscovery></D:prop>`, b.Bytes())
}

// writeActiveLock writes lock c, whose root is the user's path root, as
// a DAV:activelock. With now set, the timeout is the time left (as
// Apache's lockdiscovery states it); else the lock's full timeout, which
// is what a LOCK or refresh just granted.
func writeActiveLock(b *bytes.Buffer, c *lock, root string, now time.Time) {
	timeout := "Infinite"
	if c.duration >= 0 {
		d := c.duration
		if !now.IsZero() && !c.expiry.IsZero() {
			d = max(c.expiry.Sub(now).Round(time.Second), 0)
		}
		timeout = "Second-" + strconv.FormatInt(int64(d/time.Second), 10)
	}
	depth, scope := "infinity", "exclusive"
	if c.zeroDepth {
		depth = "0"
	}
	if c.shared {
		scope = "shared"
	}
	fmt.Fprintf(b, `<D:activelock>`+
		`<D:locktype><D:write/></D:locktype><D:lockscope><D:%s/></D:lockscope>`+
		`<D:depth>%s</D:depth><D:owner>%s</D:owner><D:timeout>%s</D:timeout>`+
		`<D:locktoken><D:href>%s</D:href></D:locktoken><D:lockroot><D:href>%s</D:href></D:lockroot>`+
		`</D:activelock>`,
		scope, depth, c.owner, timeout, xmlEscape(c.token), xmlEscape((&url.URL{Path: root}).EscapedPath()))
}

// lockScope returns copies of the LOCK locks a PROPFIND of the user's
// path name can show: those covering name and those below it. Taken once
// per PROPFIND, so a listing costs nothing per entry when no lock is in
// scope.
func (t *treeLocks) lockScope(name string, now time.Time) []lock {
	ls := t.ls
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if len(ls.byRoot) == 0 {
		return nil
	}
	ls.expire(now)
	root := t.viewPath(name)
	var found []lock
	for _, l := range ls.covering(root) {
		found = append(found, *l)
	}
	if ls.below[root] > len(ls.byRoot[root]) {
		for r, at := range ls.byRoot {
			if r != root && under(r, root) {
				for _, l := range at {
					found = append(found, *l)
				}
			}
		}
	}
	return found
}

// lockDiscovery returns the DAV:lockdiscovery value of the user's path
// name, from the locks of lockScope: those on it and the infinite-depth
// ones above it, as cadaver's discover, davfs2 and Windows read them
// before editing.
func (t *treeLocks) lockDiscovery(scope []lock, name string, now time.Time) string {
	if len(scope) == 0 {
		return ""
	}
	vp := t.viewPath(name)
	var b bytes.Buffer
	for i := range scope {
		l := &scope[i]
		if l.root == vp || (!l.zeroDepth && under(vp, l.root)) {
			writeActiveLock(&b, l, t.userPath(l.root), now)
		}
	}
	return b.String()
}
