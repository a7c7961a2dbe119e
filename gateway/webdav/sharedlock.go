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
)

// lockInfo is a LOCK request body.
type lockInfo struct {
	XMLName xml.Name  `xml:"DAV: lockinfo"`
	Shared  *struct{} `xml:"DAV: lockscope>shared"`
	Write   *struct{} `xml:"DAV: locktype>write"`
	Owner   struct {
		InnerXML string `xml:",innerxml"`
	} `xml:"DAV: owner"`
}

// isSharedLock reports whether body asks for a shared lock: x/net/webdav
// answers those with 501, so Server takes them (serveSharedLock).
func isSharedLock(body []byte) (lockInfo, bool) {
	var li lockInfo
	if len(bytes.TrimSpace(body)) == 0 || xml.Unmarshal(body, &li) != nil {
		return li, false
	}
	return li, li.Shared != nil && li.Write != nil
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

// serveSharedLock takes a shared write lock on the request's resource,
// making an empty file if nothing is there (as x/net/webdav does for
// exclusive locks), and answers with its lockdiscovery.
func (s *Server) serveSharedLock(w http.ResponseWriter, r *http.Request, rfs *reqFS, locks *treeLocks, li lockInfo) {
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
	now := time.Now()
	d := webdav.LockDetails{Root: p, Duration: dur, OwnerXML: li.Owner.InnerXML, ZeroDepth: depth == "0"}
	token, err := locks.create(now, d, true)
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
	timeout := "Infinite"
	if dur, ok := locks.ls.duration(token); ok && dur >= 0 {
		timeout = "Second-" + strconv.FormatInt(int64(dur/time.Second), 10)
	}
	depthText := "infinity"
	if d.ZeroDepth {
		depthText = "0"
	}
	w.Header().Set("Lock-Token", "<"+token+">")
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	if created {
		w.WriteHeader(http.StatusCreated)
	}
	fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?>`+"\n"+
		`<D:prop xmlns:D="DAV:"><D:lockdiscovery><D:activelock>`+
		`<D:locktype><D:write/></D:locktype><D:lockscope><D:shared/></D:lockscope>`+
		`<D:depth>%s</D:depth><D:owner>%s</D:owner><D:timeout>%s</D:timeout>`+
		`<D:locktoken><D:href>%s</D:href></D:locktoken><D:lockroot><D:href>%s</D:href></D:lockroot>`+
		`</D:activelock></D:lockdiscovery></D:prop>`,
		depthText, li.Owner.InnerXML, timeout, xmlEscape(token), xmlEscape((&url.URL{Path: p}).EscapedPath()))
}

// duration returns the timeout of the lock of token (capped as it was).
func (ls *LockStore) duration(token string) (time.Duration, bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l := ls.byToken[token]; l != nil {
		return l.duration, true
	}
	return 0, false
}
