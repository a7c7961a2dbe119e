package s3

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/datagate/datagate/gateway/httpserve"
	"github.com/datagate/datagate/gateway/s3/sigv4"
	"github.com/datagate/datagate/views"
)

// begin starts serving r: its id is the client's X-Request-Id when sane,
// else S3's own (requestID), and it is both the x-amz-request-id and the
// id on the request's log lines and audit records.
func (s *Server) begin(w http.ResponseWriter, r *http.Request) *req {
	r = httpserve.Begin(w, r, "s3", s.requestID)
	a, _ := views.ActorFrom(r.Context())
	return &req{w: w, r: r, id: a.RequestID}
}

// auditFailedAuth records a request whose signature did not verify, with
// the access key id it claimed (an identifier, not the secret) and the
// user of that key when it exists. Neither signatures nor the query are
// recorded.
func (s *Server) auditFailedAuth(q *req, err error) {
	audit := s.opts.Audit
	if audit == nil {
		audit = s.opts.Views.Audit()
	}
	a, _ := views.ActorFrom(q.r.Context())
	reason := "AccessDenied"
	var se *sigv4.Error
	if errors.As(err, &se) {
		reason = se.Code
	}
	write, dropped := s.failAudit.allow(a.Remote, time.Now())
	if !write {
		return
	}
	if dropped > 0 {
		reason += fmt.Sprintf("; %d more from this address in the minute before not recorded", dropped)
	}
	method := "sigv4"
	if errors.Is(err, sigv4.ErrMissingAuth) {
		method = "anonymous"
	}
	if id := accessKeyID(q.r); id != "" {
		reason += " (access key " + id + ")"
		k, ok := s.opts.Keys[id]
		if s.opts.Key != nil {
			k, ok = s.opts.Key(id)
		}
		if ok {
			a.User = k.User
		}
	}
	views.AuditAuthFailure(audit, a, method, reason)
}

// auditLimit bounds the failed logins recorded per address: S3 records
// every request whose signature does not verify, anonymous ones
// included, and has no login penalty (a secret key cannot be guessed),
// so one anonymous client on one connection wrote 700 KiB of audit log a
// second, as long as it liked, on the data directory's disk. The first
// burst failures of an address in a window are recorded; the rest are
// counted, and the address's next record says how many were not. Memory
// is bounded as httpserve.Penalty's is. Safe for concurrent use.
type auditLimit struct {
	// immutable after newAuditLimit
	burst  int
	window time.Duration

	mu sync.Mutex
	// guarded by mu
	m map[string]*auditWindow
}

type auditWindow struct {
	start   time.Time
	n       int // recorded in this window
	dropped int // not recorded in this window
}

const (
	auditTracked   = 10000
	failAuditBurst = 10 // failed logins recorded per address and minute
)

func newAuditLimit(burst int, window time.Duration) *auditLimit {
	return &auditLimit{burst: burst, window: window, m: map[string]*auditWindow{}}
}

// allow reports whether a failed login from addr is recorded, and how
// many of addr's were not in its window before (for that record).
func (l *auditLimit) allow(addr string, now time.Time) (write bool, dropped int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.m[addr]
	if w == nil || now.Sub(w.start) >= l.window {
		if w != nil {
			dropped = w.dropped
		}
		if w == nil && len(l.m) >= auditTracked {
			for a, o := range l.m {
				if now.Sub(o.start) >= l.window {
					delete(l.m, a)
				}
			}
			if len(l.m) >= auditTracked {
				clear(l.m) // bounded memory beats exact counts in a flood
			}
		}
		w = &auditWindow{start: now}
		l.m[addr] = w
	}
	if w.n >= l.burst {
		w.dropped++
		return false, 0
	}
	w.n++
	return true, dropped
}

// accessKeyID is the access key id a request claims, from its
// Authorization header or a presigned URL's X-Amz-Credential; "" when
// none or implausible.
func accessKeyID(r *http.Request) string {
	var cred string
	if h := r.Header.Get("Authorization"); h != "" {
		if _, after, ok := strings.Cut(h, "Credential="); ok {
			cred = after
		}
	} else if strings.Contains(r.URL.RawQuery, "X-Amz-Credential=") {
		qs, _ := url.ParseQuery(r.URL.RawQuery)
		cred = qs.Get("X-Amz-Credential")
	}
	id, _, _ := strings.Cut(cred, "/")
	if len(id) > 128 || strings.ContainsAny(id, " ,\t\r\n\"") {
		return ""
	}
	return id
}
