package httpserve

import (
	"net"
	"net/http"

	"github.com/datagate/datagate/views"
)

// Begin names request r for the logs and the audit: its id is the
// client's X-Request-Id when sane (views.SaneRequestID: a proxy's id
// then follows the request through), else newID() (nil: a random one).
// The id is echoed in the response's X-Request-Id, and r's context gets
// a views.Actor with the id, the client's address and frontend; the
// front-end adds the user once authenticated (views.WithUser). A request
// that already has an actor with an id (an outer handler began it) keeps
// it.
func Begin(w http.ResponseWriter, r *http.Request, frontend string, newID func() string) *http.Request {
	a, ok := views.ActorFrom(r.Context())
	if !ok || a.RequestID == "" {
		a = views.Actor{Frontend: frontend, Remote: remoteHost(r.RemoteAddr)}
		if id := r.Header.Get("X-Request-Id"); views.SaneRequestID(id) {
			a.RequestID = id
		} else if newID != nil {
			a.RequestID = newID()
		} else {
			a.RequestID = views.NewRequestID()
		}
		r = r.WithContext(views.WithActor(r.Context(), a))
	}
	w.Header().Set("X-Request-Id", a.RequestID)
	return r
}

// remoteHost is the host part of a RemoteAddr.
func remoteHost(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
