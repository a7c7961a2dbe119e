package metrics

import (
	"io"
	"net/http"
	"sync"

	"github.com/datagate/datagate/fs"
)

// httpMethods are the methods counted under their own name: HTTP's, and
// WebDAV's (RFC 4918). Anything else is OTHER, so a client cannot grow
// the label set.
var httpMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete,
	http.MethodOptions, http.MethodPatch,
	"PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK",
}

// methodIndex is method's index in httpMethods, len(httpMethods) for
// OTHER: a switch, cheaper than a map lookup per request.
func methodIndex(method string) int {
	switch method {
	case http.MethodGet:
		return 0
	case http.MethodHead:
		return 1
	case http.MethodPut:
		return 2
	case http.MethodPost:
		return 3
	case http.MethodDelete:
		return 4
	case http.MethodOptions:
		return 5
	case http.MethodPatch:
		return 6
	case "PROPFIND":
		return 7
	case "PROPPATCH":
		return 8
	case "MKCOL":
		return 9
	case "COPY":
		return 10
	case "MOVE":
		return 11
	case "LOCK":
		return 12
	case "UNLOCK":
		return 13
	}
	return len(httpMethods)
}

// httpStatuses are the status label values of HTTP front-ends: the class
// of the status code.
var httpStatuses = []string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// statusSlot is code's slot in httpStatuses.
func statusSlot(code int) int {
	if c := code / 100; c >= 1 && c <= 5 {
		return c
	}
	return 0
}

// KindOfStatus reads the error kind back from the status of a failed
// HTTP request (see the package doc); ok is false below 400.
func KindOfStatus(code int) (k fs.Kind, ok bool) {
	switch {
	case code < 400:
		return fs.Other, false
	case code == http.StatusNotFound || code == http.StatusGone:
		return fs.NotExist, true
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return fs.Permission, true
	case code == http.StatusTooManyRequests:
		// The HTTP front-ends answer 429 only to an address serving a
		// penalty for failed logins: a refused login, not a bad request.
		return fs.Permission, true
	case code == http.StatusConflict || code == http.StatusPreconditionFailed:
		return fs.Exist, true
	case code == http.StatusInsufficientStorage:
		return fs.NoSpace, true
	case code == http.StatusServiceUnavailable || code == http.StatusBadGateway || code == http.StatusGatewayTimeout:
		return fs.Unavailable, true
	case code == http.StatusNotImplemented || code == http.StatusMethodNotAllowed:
		return fs.Unsupported, true
	case code < 500:
		return fs.Invalid, true
	}
	return fs.Other, true
}

// HTTP wraps an HTTP front-end's handler: requests by method and status
// class, latency, errors by kind, bytes in (the request body as read) and
// out (the response body as written), requests in flight. The response
// writer it passes on keeps http.Flusher, io.ReaderFrom (so sendfile
// still applies) and Unwrap (for http.ResponseController).
func (m *Metrics) HTTP(frontend string, h http.Handler) http.Handler {
	f := m.frontOf(frontend, httpMethods, "OTHER", httpStatuses)
	return &httpHandler{f: f, next: h}
}

type httpHandler struct {
	f    *front
	next http.Handler
	pool sync.Pool // of *httpState
}

// httpState is one request's accounting, pooled: the request path must
// not allocate. It relies on net/http's rule that a handler does not use
// its ResponseWriter or Request once it has returned.
type httpState struct {
	w    respWriter
	body countingBody
	// req is a copy of a request with a body, whose Body counts. The
	// server's own *Request keeps its Body: net/http looks at its type
	// while answering (an unread "Expect: 100-continue" body closes the
	// connection instead of being waited for).
	req http.Request
}

func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := now()
	f := h.f
	f.inFlight.Inc()
	st, _ := h.pool.Get().(*httpState)
	if st == nil {
		st = new(httpState)
	}
	st.w = respWriter{w: w}
	req, counted := r, false
	if r.Body != nil && r.Body != http.NoBody {
		st.body = countingBody{rc: r.Body}
		st.req = *r
		st.req.Body = &st.body
		req, counted = &st.req, true
	}
	completed := false
	// Deferred so a panic the front-end lets through (http.ErrAbortHandler)
	// still counts; the state is then not reused.
	defer func() {
		f.inFlight.Dec()
		code := st.w.status
		switch {
		case !completed && code == 0:
			code = http.StatusInternalServerError // the client got nothing
		case code == 0:
			code = http.StatusOK // net/http sends 200, no body
		}
		if counted {
			f.in.Add(float64(st.body.n))
		}
		f.out.Add(float64(st.w.written))
		k, failed := KindOfStatus(code)
		if failed && r.Context().Err() != nil {
			failed = false // its client went away: no error of ours
		}
		f.list[methodIndex(r.Method)].done(statusSlot(code), now()-start, failed, k)
		if completed {
			st.w, st.body, st.req = respWriter{}, countingBody{}, http.Request{}
			h.pool.Put(st)
		}
	}()
	h.next.ServeHTTP(&st.w, req)
	completed = true
}

// respWriter records the status and counts the body bytes written.
type respWriter struct {
	w       http.ResponseWriter
	status  int   // the final status sent (1xx informational ones are not)
	written int64 // body bytes
}

func (w *respWriter) Header() http.Header { return w.w.Header() }

func (w *respWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.w.WriteHeader(code)
}

func (w *respWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.w.Write(p)
	w.written += int64(n)
	return n, err
}

// ReadFrom passes on to the connection's ReadFrom, which sends a file
// with sendfile(2).
func (w *respWriter) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.w.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(writerOnly{w.w}, src)
	}
	w.written += n
	return n, err
}

// Flush passes on, so streamed answers (PROPFIND, listings) stream.
func (w *respWriter) Flush() {
	if f, ok := w.w.(http.Flusher); ok {
		if w.status == 0 {
			w.status = http.StatusOK
		}
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.w }

// writerOnly hides a writer's ReadFrom from io.Copy (it would recurse).
type writerOnly struct{ io.Writer }

// countingBody counts the request body bytes the handler reads.
type countingBody struct {
	rc io.ReadCloser
	n  int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }
