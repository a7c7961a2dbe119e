package webdav

import (
	"net/http"

	"github.com/datagate/datagate/views"
)

// auditFailedLogin records a failed Basic login: the user name the client
// claimed, never the password.
func (s *Server) auditFailedLogin(r *http.Request, claimed string) {
	audit := s.opts.Audit
	if audit == nil && s.opts.Views != nil {
		audit = s.opts.Views.Audit()
	}
	a, _ := views.ActorFrom(r.Context())
	a.User = claimed
	views.AuditAuthFailure(audit, a, "password", "wrong user name or password")
}
