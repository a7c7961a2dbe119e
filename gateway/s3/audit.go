package s3

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

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
