package webdav

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/net/webdav"

	"github.com/datagate/datagate/fs/store"
	"github.com/datagate/datagate/gateway/httpserve"
	"github.com/datagate/datagate/views"
)

// Options configure New. Zero values take the defaults given.
type Options struct {
	// PasswordHash returns a user's bcrypt password hash; false (or an
	// empty hash) for a user who cannot log in with a password. Required.
	PasswordHash func(user string) ([]byte, bool)
	// Tree returns the file system of an authenticated user. Required.
	Tree func(user string) *views.Tree
	// Store gives the object records behind a Tree's entries (checksums
	// for ETags, content types, metadata properties). Required.
	Store *store.Store
	// Locks keeps the WebDAV locks. Required (NewLockStore).
	Locks *LockStore
	// Views is the view set behind the Trees. Nothing needs it any more
	// (PROPPATCH changes metadata with Tree.SetMeta, which checks the
	// views); optional.
	Views *views.Set
	// Realm is the Basic authentication realm; default "datagate".
	Realm string
	// CreateParents lets PUT, MKCOL, COPY and MOVE create missing parent
	// collections, as the views allow; by default they are refused with
	// 409 Conflict as RFC 4918 requires.
	CreateParents bool
	// MaxXMLBody caps the body of PROPFIND, PROPPATCH and LOCK; default
	// 1 MiB.
	MaxXMLBody int64
	// AuthCacheTTL is how long a successful password check is remembered;
	// default 30s. Negative disables the cache.
	AuthCacheTTL time.Duration
	// An address with MaxAuthFailures failed logins in a row is answered
	// 429 for AuthPenalty; defaults 10 and 30s.
	MaxAuthFailures int
	AuthPenalty     time.Duration
	Logger          *slog.Logger
	// Audit gets failed logins (views.AuditAuthFailure); nil: the audit
	// logger of Views, if any.
	Audit *slog.Logger
}

// Server is the WebDAV handler. Safe for concurrent use.
type Server struct {
	// immutable after New
	opts    Options
	log     *slog.Logger
	auth    *authCache
	penalty *penaltyBox
	logins  *httpserve.Logins // bcrypt checks in flight per address
	// drainGrace is the time a refused request's body may take to be
	// read before it must keep drainRate (drainBody).
	drainGrace time.Duration
	dummyHash  []byte    // compared against for unknown users
	started    time.Time // the time of directories that have none
}

// New checks opts and returns the server.
func New(opts Options) (*Server, error) {
	if opts.PasswordHash == nil || opts.Tree == nil || opts.Store == nil || opts.Locks == nil {
		return nil, errors.New("webdav: Options.PasswordHash, Tree, Store and Locks are required")
	}
	if opts.Realm == "" {
		opts.Realm = "datagate"
	}
	if opts.MaxXMLBody <= 0 {
		opts.MaxXMLBody = 1 << 20
	}
	if opts.AuthCacheTTL == 0 {
		opts.AuthCacheTTL = 30 * time.Second
	}
	if opts.MaxAuthFailures <= 0 {
		opts.MaxAuthFailures = 10
	}
	if opts.AuthPenalty <= 0 {
		opts.AuthPenalty = 30 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("no such user"), bcrypt.DefaultCost)
	if err != nil {
		return nil, err
	}
	return &Server{
		opts: opts, log: log.With("frontend", "webdav"), dummyHash: dummy, started: time.Now().UTC().Truncate(time.Second),
		auth:       newAuthCache(max(opts.AuthCacheTTL, 0), 10000),
		penalty:    newPenaltyBox(opts.MaxAuthFailures, opts.AuthPenalty),
		logins:     httpserve.NewLogins(opts.MaxAuthFailures),
		drainGrace: 10 * time.Second,
	}, nil
}

// ServeHTTP authenticates the request and serves it from the user's tree.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r = httpserve.Begin(w, r, "webdav", nil) // request id and actor (audit.go)
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler { //nolint:errorlint // a sentinel value, not an error chain
				panic(v)
			}
			s.log.ErrorContext(r.Context(), "panic serving request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			http.Error(w, "internal server error", http.StatusInternalServerError)
		}
	}()
	addr, _, _ := net.SplitHostPort(r.RemoteAddr)
	if wait := s.penalty.blocked(addr, time.Now()); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		http.Error(w, "too many failed logins", http.StatusTooManyRequests)
		return
	}
	if r.Body != nil && r.Body != http.NoBody { // GET, HEAD, PROPFIND without a body: nothing to drain
		rc := http.NewResponseController(w)
		body := &drainBody{ReadCloser: r.Body, expect: r.Header.Get("Expect") != "", grace: s.drainGrace, setDeadline: rc.SetReadDeadline}
		r.Body = body
		defer body.drain()
	}
	user, ok, busy := s.authenticate(r, addr)
	if busy {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "too many logins at once from this address", http.StatusTooManyRequests)
		return
	}
	if ok {
		s.penalty.ok(addr)
	} else if claimed, _, sent := r.BasicAuth(); sent {
		s.penalty.fail(addr, time.Now())
		s.log.InfoContext(r.Context(), "failed login", "addr", addr)
		s.auditFailedLogin(r, claimed)
	}
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm=`+strconv.Quote(s.opts.Realm)+`, charset="UTF-8"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	r = r.WithContext(views.WithUser(r.Context(), user))
	tree := s.opts.Tree(user)
	if tree == nil {
		http.Error(w, "no such user", http.StatusForbidden)
		return
	}
	if why := badPath(r.URL.Path); why != "" {
		http.Error(w, "bad path: "+why, http.StatusBadRequest)
		return
	}
	rfs := &reqFS{s: s, tree: tree}
	switch r.Method {
	case "GET", "HEAD":
		s.serveGet(w, r, tree)
		return
	case "OPTIONS", "POST":
	default:
		if !s.checkPreconditions(r, rfs) {
			http.Error(w, "precondition failed", http.StatusPreconditionFailed)
			return
		}
	}
	switch r.Method {
	case "POST":
		w.Header().Set("Allow", "OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH, LOCK, UNLOCK")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	case "PROPFIND":
		// Depth infinity (also the default) would walk a whole view:
		// refused as RFC 4918 9.1 allows.
		if d := r.Header.Get("Depth"); d != "0" && d != "1" && d != "" && d != "infinity" {
			http.Error(w, "bad Depth header", http.StatusBadRequest)
			return
		} else if d != "0" && d != "1" {
			w.Header().Set("Content-Type", "application/xml; charset=utf-8")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<?xml version="1.0" encoding="utf-8"?>`+"\n"+`<D:error xmlns:D="DAV:"><D:propfind-finite-depth/></D:error>`)
			return
		}
	case "DELETE":
		// RFC 4918 9.6.1: a DELETE of a collection is Depth infinity;
		// x/net/webdav ignored the header and removed the whole tree
		// when asked for Depth 0, as Apache refuses to.
		if d := r.Header.Get("Depth"); d != "" && d != "infinity" {
			if fi, err := rfs.stat(r.Context(), r.URL.Path); err == nil && fi.IsDir() {
				http.Error(w, "DELETE of a collection must be Depth infinity", http.StatusBadRequest)
				return
			}
		}
	case "COPY", "MOVE":
		if code, why := s.checkDestination(r); code != 0 {
			http.Error(w, why, code)
			return
		}
		// RFC 4918 10.6: no Overwrite header means T; x/net/webdav's
		// MOVE takes it as F.
		if r.Header.Get("Overwrite") == "" {
			r.Header.Set("Overwrite", "T")
		}
	}
	if r.Method == "MOVE" {
		if u, err := url.Parse(r.Header.Get("Destination")); err == nil {
			rfs.moveFrom, rfs.moveTo = r.URL.Path, u.Path
		}
	}
	switch r.Method {
	case "PROPFIND", "PROPPATCH", "LOCK", "UNLOCK", "MKCOL", "OPTIONS":
		if r.ContentLength > s.opts.MaxXMLBody {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxXMLBody)
		if r.Method == "PROPFIND" || r.Method == "PROPPATCH" || r.Method == "LOCK" {
			body, code, why := checkXML(r.Body)
			if code != 0 {
				http.Error(w, why, code)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			if r.Method == "LOCK" {
				locks := s.opts.Locks.forTree(tree, true)
				if len(bytes.TrimSpace(body)) == 0 {
					s.serveRefresh(w, r, locks)
					return
				}
				if li, ok := readLockInfo(body); ok {
					s.serveLock(w, r, rfs, locks, li)
					return
				}
			}
		}
		if r.Method == "PROPFIND" {
			s.servePropfind(w, r, tree, rfs)
			return
		}
	case "PUT":
		// A partial PUT would replace the whole file with the range sent
		// (curl -C - -T sends one to resume an upload, and an upload cut
		// short leaves nothing to resume): refused as RFC 7231 4.3.4 says.
		if r.Header.Get("Content-Range") != "" {
			http.Error(w, "PUT with Content-Range (partial update) is not supported: send the whole file", http.StatusBadRequest)
			return
		}
		tb := &trackedBody{ReadCloser: r.Body}
		r.Body = tb
		rfs.put = putInfo{path: r.URL.Path, body: tb, opts: putOptions(r)}
	}
	locks := s.opts.Locks.forTree(tree, r.Method == "LOCK")
	locks.etags = func(name string) []string { return rfs.etags(r.Context(), name) }
	deep := r.Method == "DELETE" || r.Method == "MOVE" || r.Method == "COPY"
	if r.Method == "COPY" {
		locks.forRequest("", r.Header.Get("If"), deep)
	} else {
		locks.forRequest(r.URL.Path, r.Header.Get("If"), deep)
	}
	h := &webdav.Handler{
		FileSystem: rfs,
		LockSystem: locks,
		Logger: func(r *http.Request, err error) {
			if err != nil {
				s.log.DebugContext(r.Context(), "request", "user", user, "method", r.Method, "path", r.URL.Path, "err", err)
			}
		},
	}
	sw := &statusWriter{ResponseWriter: w, fs: rfs}
	h.ServeHTTP(sw, r)
	if (r.Method == "DELETE" || r.Method == "MOVE") && sw.code/100 == 2 {
		locks.dropUnder(r.URL.Path)
	}
	if m := rfs.moved(); m != "" {
		locks.dropUnder(m)
	}
}

// drainLimit bounds what drain reads: Apache's default LimitRequestBody.
const drainLimit = 1 << 30

// drainBody reads what is left of a request body once the request is
// answered, up to drainLimit. A refused PUT (403, 409, 423, 507, ...)
// leaves its body unread, and net/http then closes the connection
// rather than read more than 256 KiB: a client that sends the whole body
// before reading the answer (cadaver and davfs2's neon send no Expect:
// 100-continue) saw "connection was closed by server" instead of the
// status. Apache reads the rest and answers. A client that asked for
// 100 Continue and has not been told to send sends nothing: no drain.
//
// A drain is bounded in time too: it may take grace, and then must go on
// at drainRate on average, or the connection is closed. Unbounded, a
// client (without credentials: neon sends a PUT's first attempt without
// them) trickling a byte now and then held a connection and a goroutine
// as long as it liked, and was answered only at the end.
type drainBody struct {
	io.ReadCloser
	expect      bool
	grace       time.Duration
	setDeadline func(time.Time) error // the connection's read deadline
	mu          sync.Mutex
	read        bool // guarded by mu
}

// drainRate is the average rate a drain must keep after its grace.
const drainRate = 64 << 10 // bytes per second

func (b *drainBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	b.read = true
	b.mu.Unlock()
	return b.ReadCloser.Read(p)
}

func (b *drainBody) drain() {
	b.mu.Lock()
	started := b.read
	b.mu.Unlock()
	if b.expect && !started {
		return
	}
	start := time.Now()
	buf := make([]byte, 32<<10)
	for n := int64(0); n < drainLimit; {
		// Not supported (a writer that hides the connection): unbounded.
		b.setDeadline(start.Add(b.grace + time.Duration(n)*time.Second/drainRate))
		m, err := b.ReadCloser.Read(buf[:min(int64(len(buf)), drainLimit-n)])
		n += int64(m)
		if err != nil {
			break
		}
	}
	b.setDeadline(time.Time{})
}

// putOptions reads what a PUT says about its body.
func putOptions(r *http.Request) views.CreateOptions {
	o := views.CreateOptions{Size: r.ContentLength, ContentType: r.Header.Get("Content-Type")}
	if r.ContentLength < 0 {
		o.Size = -1
		// macOS Finder sends chunked PUTs with the size in this header.
		if n, err := strconv.ParseInt(r.Header.Get("X-Expected-Entity-Length"), 10, 64); err == nil && n >= 0 {
			o.Size = n
		}
	}
	// ownCloud/Nextcloud clients (and rclone for those vendors) send the
	// modification time as Unix seconds.
	if v := r.Header.Get("X-OC-Mtime"); v != "" {
		if sec, err := strconv.ParseInt(v, 10, 64); err == nil && sec > 0 {
			o.ModTime = time.Unix(sec, 0)
		}
	}
	// ... and may send checksums to verify the upload against.
	for _, f := range strings.Fields(r.Header.Get("OC-Checksum")) {
		alg, sum, _ := strings.Cut(f, ":")
		b, err := hex.DecodeString(sum)
		switch {
		case err != nil:
		case strings.EqualFold(alg, "MD5") && len(b) == md5.Size:
			o.MD5 = b
		case strings.EqualFold(alg, "SHA256") && len(b) == sha256.Size:
			o.SHA256 = b
		}
	}
	return o
}

// badPath refuses what no Tree path can be, before any lookup: NUL,
// "." and ".." segments (also when they came percent-encoded), and empty
// segments other than a trailing slash.
func badPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		return "not absolute"
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "NUL byte"
	}
	segs := strings.Split(strings.TrimSuffix(p[1:], "/"), "/")
	if len(segs) == 1 && segs[0] == "" {
		return ""
	}
	for _, s := range segs {
		switch s {
		case "":
			return "empty segment"
		case ".", "..":
			return "dot segment"
		}
	}
	return ""
}

// checkDestination refuses a COPY or MOVE whose Destination is on another
// server (502, RFC 4918 9.8.5) or is not a clean path of this tree (403).
func (s *Server) checkDestination(r *http.Request) (int, string) {
	d := r.Header.Get("Destination")
	if d == "" {
		return http.StatusBadRequest, "Destination header required"
	}
	u, err := url.Parse(d)
	if err != nil {
		return http.StatusBadRequest, "malformed Destination header"
	}
	if u.Host != "" && !strings.EqualFold(u.Host, r.Host) {
		return http.StatusBadGateway, "Destination is on another server"
	}
	if why := badPath(u.Path); why != "" {
		return http.StatusForbidden, "Destination outside the tree: " + why
	}
	return 0, ""
}

// statusWriter corrects the error status x/net/webdav writes with the kind
// of the error the file system returned (see overrideStatus), and then
// writes its own text for it.
type statusWriter struct {
	http.ResponseWriter
	fs       *reqFS
	replaced bool
	code     int // the status x/net/webdav chose
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	if code >= 400 {
		if err := w.fs.last(); err != nil {
			c := overrideStatus(code, err)
			why := reason(c, err)
			if c != code || why != "" {
				w.replaced = true
				w.ResponseWriter.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.ResponseWriter.WriteHeader(c)
				fmt.Fprintln(w.ResponseWriter, webdav.StatusText(c)+why)
				return
			}
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.replaced {
		return len(p), nil // x/net/webdav's text for the status it chose
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes on, so PROPFIND's multistatus streams.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// checkXML reads a request's XML body (capped by MaxBytesReader) and
// refuses what encoding/xml would let through to x/net/webdav: besides
// malformed XML, an empty namespace prefix declaration (xmlns:p=""),
// which XML namespaces 1.0 forbids. Entities beyond the five built-in
// ones are an error in encoding/xml, so nothing expands.
func checkXML(r io.Reader) ([]byte, int, string) {
	body, err := io.ReadAll(r)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, http.StatusRequestEntityTooLarge, "request body too large"
	}
	if err != nil {
		return nil, http.StatusBadRequest, "reading the body: " + err.Error()
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return body, 0, ""
	}
	dec := xml.NewDecoder(bytes.NewReader(body))
	for {
		t, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return body, 0, ""
		}
		if err != nil {
			return nil, http.StatusBadRequest, "malformed XML: " + err.Error()
		}
		if se, ok := t.(xml.StartElement); ok {
			for _, a := range se.Attr {
				if a.Name.Space == "xmlns" && a.Value == "" {
					return nil, http.StatusBadRequest, "malformed XML: empty namespace declaration xmlns:" + a.Name.Local
				}
			}
		}
	}
}
