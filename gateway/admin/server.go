package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
	"github.com/datagate/datagate/fs/ingest"
	"github.com/datagate/datagate/fs/pathtmpl"
	"github.com/datagate/datagate/fs/store"
	"github.com/datagate/datagate/gateway/httpserve"
	"github.com/datagate/datagate/views"
)

type ingestCrawlStats = ingest.CrawlStats

// Store is what the API needs of the object store.
type Store interface {
	ingest.Registrar
	Put(ctx context.Context, req store.PutRequest, r io.Reader) (*fs.Object, error)
	Get(ctx context.Context, id fs.ID) (*fs.Object, error)
	Open(ctx context.Context, id fs.ID) (*store.Reader, error)
	Find(ctx context.Context, conds []index.Cond, opts index.FindOptions, fn func(*fs.Object) error) error
	Update(ctx context.Context, id fs.ID, fn func(o *fs.Object) error) (*fs.Object, error)
	Delete(ctx context.Context, ids ...fs.ID) error
	Provider(name string) (backends.Provider, bool)
}

// Options configure a Server. Only Store is required; a route whose
// source is nil answers 501 (Unsupported).
type Options struct {
	Store Store
	// Auth checks callers. nil lets every caller in with the full role:
	// for the Unix socket, which file permissions guard.
	Auth   *Auth
	Logger *slog.Logger
	// Audit receives one record per authentication failure and per write
	// (who, what, from where, the request id), in the format of the
	// views' audit records; nil = Logger.
	Audit *slog.Logger
	// Walk lists every object in id order after a cursor (fs/index
	// Index.Walk), for a search without conditions; nil refuses those.
	Walk func(ctx context.Context, after fs.ID, fn func(*fs.Object) error) error
	// Views gives the views an object's paths are computed in (views.Set).
	Views ViewLister
	// Inspect gives statistics, replication status and object locations
	// (fs/store.Store).
	Inspect Inspector
	// Users lists the users of the front-ends, as currently configured.
	Users func() []UserInfo
	// Jobs lists the background jobs (collector, acquisitions).
	Jobs func() []Job
	// Ready lists the readiness checks of /readyz; all must pass.
	Ready []Check
	// Reload re-reads the configuration; its error says why a new
	// configuration was refused.
	Reload func(ctx context.Context) error
	// Metrics serves GET /metrics (Prometheus), for the read role.
	Metrics http.Handler
	// MaxBody caps JSON request bodies (default 1 MiB); MaxRegisterBody
	// caps an NDJSON registration (default 1 GiB). Larger bodies are 413.
	MaxBody, MaxRegisterBody int64
}

// Check is one readiness check.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// Page sizes of GET /api/v1/objects.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Server serves the admin API.
type Server struct {
	// immutable after New
	opts Options
	st   Store
	log  *slog.Logger
}

// New returns the API server configured by opts.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Audit == nil {
		opts.Audit = opts.Logger
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = 1 << 20
	}
	if opts.MaxRegisterBody <= 0 {
		opts.MaxRegisterBody = 1 << 30
	}
	return &Server{opts: opts, st: opts.Store, log: opts.Logger}
}

// NewServer returns the API over st alone. With a non-empty token every
// request but the public routes must carry "Authorization: Bearer <token>".
func NewServer(st Store, token string, log *slog.Logger) *Server {
	opts := Options{Store: st, Logger: log}
	if token != "" {
		opts.Auth = NewAuth(nil, token)
	}
	return New(opts)
}

// route is one API route. The OpenAPI test checks that every route is
// described in openapi.json.
type route struct {
	method, pattern string
	public          bool // no authentication (health, readiness, the API description)
	h               http.HandlerFunc
}

func (s *Server) routes() []route {
	return []route{
		{"GET", "/healthz", true, s.healthz},
		{"GET", "/readyz", true, s.readyz},
		{"GET", "/api/v1/openapi.json", true, serveOpenAPI},
		{"GET", "/api/v1/whoami", false, s.whoami},
		{"POST", "/api/v1/objects", false, s.register},
		{"PUT", "/api/v1/objects", false, s.put},
		{"GET", "/api/v1/objects", false, s.find},
		{"GET", "/api/v1/objects/{id}", false, s.detail},
		{"PATCH", "/api/v1/objects/{id}", false, s.patch},
		{"DELETE", "/api/v1/objects/{id}", false, s.delete},
		{"GET", "/api/v1/objects/{id}/content", false, s.content},
		{"POST", "/api/v1/crawl", false, s.crawl},
		{"GET", "/api/v1/users", false, s.users},
		{"GET", "/api/v1/users/{name}", false, s.user},
		{"GET", "/api/v1/views", false, s.views},
		{"GET", "/api/v1/stats", false, s.stats},
		{"GET", "/api/v1/replication", false, s.replication},
		{"GET", "/api/v1/jobs", false, s.jobs},
		{"GET", "/api/v1/jobs/{name}", false, s.job},
		{"POST", "/api/v1/jobs/{name}/run", false, s.runJob},
		{"POST", "/api/v1/reload", false, s.reload},
		{"GET", "/metrics", false, s.metrics},
	}
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	paths := http.NewServeMux() // the same paths, any method: tells 405 from 404
	allow := map[string][]string{}
	for _, rt := range s.routes() {
		h := rt.h
		if !rt.public {
			h = s.guard(rt.method, h)
		}
		mux.HandleFunc(rt.method+" "+rt.pattern, h)
		if allow[rt.pattern] == nil {
			paths.HandleFunc(rt.pattern, func(http.ResponseWriter, *http.Request) {})
		}
		allow[rt.pattern] = append(allow[rt.pattern], rt.method)
	}
	// The mux answers unknown routes in plain text; the API answers in
	// JSON like every other error.
	return s.recover(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pat := mux.Handler(r); pat != "" {
			mux.ServeHTTP(w, r)
			return
		}
		if _, pat := paths.Handler(r); pat != "" {
			w.Header().Set("Allow", strings.Join(allow[pat], ", "))
			writeStatus(w, http.StatusMethodNotAllowed, fs.E(fs.Unsupported, r.Method, r.URL.Path,
				fmt.Errorf("method not allowed (allowed: %s)", strings.Join(allow[pat], ", "))))
			return
		}
		writeStatus(w, http.StatusNotFound, fs.E(fs.NotExist, r.Method, r.URL.Path, errors.New("no such route (see /api/v1/openapi.json)")))
	}))
}

type principalKey struct{}

// principal returns the caller a guarded route was called by.
func principal(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}

// guard authenticates the caller (401 when that fails) and checks the
// role the method needs (403): GET needs read, anything else full. The
// caller rides on the context as a views.Actor, with the request's id
// (httpserve.Begin). An address serving a penalty for failed logins is
// answered 429 with Retry-After (Auth).
func (s *Server) guard(method string, next http.HandlerFunc) http.HandlerFunc {
	need := RoleFull
	if method == "GET" || method == "HEAD" {
		need = RoleRead
	}
	return func(w http.ResponseWriter, r *http.Request) {
		r = httpserve.Begin(w, r, "admin", nil)
		actor, _ := views.ActorFrom(r.Context())
		p := Principal{Name: "socket", Role: RoleFull, Via: "socket"}
		if s.opts.Auth != nil {
			var claimed string
			var err error
			p, claimed, err = s.opts.Auth.Authenticate(r)
			var pe *PenaltyError
			if errors.As(err, &pe) {
				w.Header().Set("Retry-After", strconv.Itoa(int(pe.Wait.Seconds())+1))
				writeStatus(w, http.StatusTooManyRequests, fs.E(fs.Permission, "admin", "", err))
				return
			}
			if err != nil {
				if !errors.Is(err, errNoCredentials) {
					a := actor
					a.User = claimed
					method := "bearer"
					if claimed != "" {
						method = "password"
					}
					views.AuditAuthFailure(s.opts.Audit, a, method, "wrong credentials")
				}
				w.Header().Add("WWW-Authenticate", `Basic realm="datagate admin", charset="UTF-8"`)
				w.Header().Add("WWW-Authenticate", `Bearer realm="datagate admin"`)
				writeStatus(w, http.StatusUnauthorized, fs.E(fs.Permission, "admin", "", err))
				return
			}
		}
		actor.User = p.Name
		ctx := context.WithValue(r.Context(), principalKey{}, p)
		r = r.WithContext(views.WithActor(ctx, actor))
		op, write := writeOps[r.Pattern]
		if p.Role < need {
			err := fs.E(fs.Permission, "admin", r.URL.Path,
				fmt.Errorf("user %s has the %s role; %s %s needs %s", p.Name, p.Role, r.Method, r.URL.Path, need))
			if write {
				s.audit(r, op, err)
			}
			writeStatus(w, http.StatusForbidden, err)
			return
		}
		if !write {
			next(w, r)
			return
		}
		done := new(bool)
		rec := &refusals{ResponseWriter: w}
		next(rec, r.WithContext(context.WithValue(r.Context(), auditedKey{}, done)))
		if !*done && rec.code >= 400 {
			s.audit(r, op, rec.err())
		}
	}
}

// audit records a write done by the caller of r, as the views' audit
// records are: op, result, who, from where, through what, which request.
func (s *Server) audit(r *http.Request, op string, err error, attrs ...slog.Attr) {
	if done, ok := r.Context().Value(auditedKey{}).(*bool); ok {
		*done = true
	}
	a, _ := views.ActorFrom(r.Context())
	lvl, result := slog.LevelInfo, "ok"
	as := append(make([]slog.Attr, 0, 8+len(attrs)), slog.String("op", op))
	if err != nil {
		lvl, result = slog.LevelWarn, "error"
	}
	as = append(as, slog.String("result", result), slog.String("user", a.User), slog.String("via", principal(r.Context()).Via))
	as = append(as, attrs...)
	if err != nil {
		as = append(as, slog.String("kind", errorBodyOf(errorStatus(err), err).Kind), slog.String("error", err.Error()))
	}
	as = append(as, slog.String("remote", a.Remote), slog.String("frontend", "admin"), slog.String("request_id", a.RequestID))
	s.opts.Audit.LogAttrs(r.Context(), lvl, "audit", as...)
}

func (s *Server) recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in admin handler", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				writeError(w, fmt.Errorf("internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	writeJSONStatus(w, http.StatusOK, v)
}

func writeJSONStatus(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]string{"status": "ok"})
}

// readyz runs every readiness check, each bounded in time.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	checks := map[string]string{}
	ready := true
	for _, c := range s.opts.Ready {
		if err := c.Check(ctx); err != nil {
			checks[c.Name], ready = err.Error(), false
		} else {
			checks[c.Name] = "ok"
		}
	}
	body := map[string]any{"status": "ready", "checks": checks}
	if !ready {
		body["status"] = "not ready"
		writeJSONStatus(w, http.StatusServiceUnavailable, body)
		return
	}
	writeJSON(w, body)
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.opts.Metrics == nil {
		writeError(w, fs.E(fs.Unsupported, "metrics", "", errNotWired))
		return
	}
	s.opts.Metrics.ServeHTTP(w, r)
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	p := principal(r.Context())
	writeJSON(w, map[string]string{"name": p.Name, "role": p.Role.String(), "via": p.Via})
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	if !s.onlyParams(w, r, "batch") {
		return
	}
	var batch int
	if b := r.URL.Query().Get("batch"); b != "" {
		// As limit: batch=abc or 0 was the default batch, silently.
		var err error
		if batch, err = strconv.Atoi(b); err != nil || batch <= 0 {
			writeError(w, fs.E(fs.Invalid, "register", b, fmt.Errorf("batch %q: want a positive number of records", b)))
			return
		}
	}
	body := &capped{r: http.MaxBytesReader(w, r.Body, s.opts.MaxRegisterBody)}
	res, err := ingest.Register(r.Context(), callerRecords{s.st}, body, batch, nil)
	if body.err != nil {
		// The scanner hands the cut line over as if it were the last one,
		// so the error would blame it: say what happened instead.
		err = fmt.Errorf("%w: the registration is capped at %d bytes; %d records added and %d updated before the cap stay",
			body.err, s.opts.MaxRegisterBody, res.Added, res.Updated)
	}
	var le *ingest.LineError
	if errors.As(err, &le) && le.Line == 1 && res.Lines == 1 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		// curl -d @file (a form) drops the file's newlines: every record
		// came on line 1. Say so, rather than only "more than one value".
		le.Err = fmt.Errorf("%w (sent as a form: curl -d drops newlines; send NDJSON with --data-binary)", le.Err)
	}
	s.audit(r, "register", err, slog.Int("added", res.Added), slog.Int("updated", res.Updated))
	if err != nil {
		writeRegisterError(w, err, res)
		return
	}
	writeJSON(w, res)
}

// capped remembers that a MaxBytesReader hit its cap.
type capped struct {
	r   io.Reader
	err error
}

func (c *capped) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if isTooLarge(err) {
		c.err = err
	}
	return n, err
}

// ParseMeta parses "key=value" pairs.
func ParseMeta(pairs []string) (map[string]string, error) {
	m := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fs.E(fs.Invalid, "metadata", p, errors.New("want key=value"))
		}
		m[k] = v
	}
	return m, nil
}

func (s *Server) put(w http.ResponseWriter, r *http.Request) {
	if !s.onlyParams(w, r, "name", "meta", "content_type", "mtime") {
		return
	}
	q := r.URL.Query()
	meta, err := parseParams(q, "meta")
	if err == nil {
		err = CheckMeta(meta)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	req := store.PutRequest{Name: q.Get("name"), Meta: meta, ContentType: q.Get("content_type"), Size: r.ContentLength}
	if req.ContentType == "" {
		req.ContentType = bodyType(r)
	}
	if mt := q.Get("mtime"); mt != "" {
		if req.ModTime, err = time.Parse(time.RFC3339Nano, mt); err != nil {
			writeError(w, fs.E(fs.Invalid, "put", mt, err))
			return
		}
	}
	o, err := s.st.Put(r.Context(), req, r.Body)
	if err != nil {
		s.audit(r, "put", err, slog.String("name", req.Name))
		writeError(w, err)
		return
	}
	s.audit(r, "put", nil, slog.String("name", req.Name), slog.String("id", o.ID.String()), slog.Int64("size", o.Size))
	// A 201 names what it created, so that a REST client can follow it.
	w.Header().Set("Location", "/api/v1/objects/"+o.ID.String())
	writeJSONStatus(w, http.StatusCreated, ToJSON(o))
}

// bodyType is the type a PUT's Content-Type gives its content (curl -T
// -H 'Content-Type: text/csv' was stored untyped, served as
// application/octet-stream). The types curl and browsers put on bodies
// of their own accord say nothing of the content: a form (curl
// --data-binary), multipart, and octet-stream, which would only hide
// the type front-ends derive from the name.
func bodyType(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	switch {
	case err != nil, mt == "application/x-www-form-urlencoded", mt == "application/octet-stream",
		strings.HasPrefix(mt, "multipart/"):
		return ""
	}
	return ct
}

func (s *Server) id(w http.ResponseWriter, r *http.Request) (fs.ID, bool) {
	id, err := fs.ParseID(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return id, false
	}
	return id, true
}

func (s *Server) content(w http.ResponseWriter, r *http.Request) {
	id, ok := s.id(w, r)
	if !ok {
		return
	}
	rd, err := s.st.Open(r.Context(), id)
	if err != nil {
		writeError(w, err)
		return
	}
	defer rd.Close()
	o := rd.Object()
	if o.ContentType != "" {
		w.Header().Set("Content-Type", o.ContentType)
	} else {
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	w.Header().Set("ETag", contentETag(o))
	w.Header().Set("Content-Disposition", contentDisposition(o.Name))
	// The API's origin is one whose credentials a browser keeps: content
	// shown inline (an HTML file a front-end user put) ran its scripts
	// with an operator's role. Sandboxed, a page shows with no script
	// and an origin of its own.
	w.Header().Set("Content-Security-Policy", "sandbox")
	jw := &jsonRefusals{ResponseWriter: w}
	defer jw.end()
	w = jw
	// ServeContent handles Range; over a plain file it uses sendfile
	// (jsonRefusals passes ReadFrom on).
	if f, ok := rd.File(); ok {
		// The file itself when it is the content (a SectionReader hides
		// it from sendfile: every GiB went through a 32 KiB buffer).
		var content io.ReadSeeker = io.NewSectionReader(f, 0, o.Size)
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() == o.Size {
			content = f
		}
		http.ServeContent(w, r, o.Name, o.ModTime, content)
		return
	}
	// Fetch the first byte before a status is sent: a failing provider is
	// then an error status with its cause, not a 200 cut short.
	if err := httpserve.Prime(r.Context(), rd, r, o.Size); err != nil {
		writeError(w, err)
		return
	}
	http.ServeContent(w, r, o.Name, o.ModTime, &httpserve.LogBreak{ReadSeeker: rd, Log: s.log, What: id.String()})
}

// contentETag is the entity tag of o's content: its ETag, or, for content
// that has none (registered from a provider, a big PUT until its MD5 is
// made), its id and version, which changes with the content. Such
// content had no validator at all (and no Last-Modified without an
// mtime), so neither If-None-Match nor a resume's If-Range could be used.
func contentETag(o *fs.Object) string {
	if o.ETag != "" {
		return strconv.Quote(o.ETag)
	}
	return `"` + o.ContentKey() + `"`
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	id, ok := s.id(w, r)
	if !ok {
		return
	}
	err := s.st.Delete(r.Context(), id)
	s.audit(r, "delete", err, slog.String("id", id.String()))
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) crawl(w http.ResponseWriter, r *http.Request) {
	var req CrawlRequest
	if !s.decodeBody(w, r, "crawl", &req) {
		return
	}
	opts, p, err := CrawlSetup(s.st, req)
	if err == nil {
		err = CheckMeta(req.Meta)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	s.audit(r, "crawl", nil, slog.String("provider", req.Provider), slog.String("prefix", req.Prefix))
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	fl, _ := w.(http.Flusher)
	last := time.Now()
	stats, err := ingest.Crawl(r.Context(), s.st, p, opts, func(st ingest.CrawlStats) {
		if time.Since(last) > 200*time.Millisecond {
			enc.Encode(crawlLine{Stats: &st})
			if fl != nil {
				fl.Flush()
			}
			last = time.Now()
		}
	})
	line := crawlLine{Stats: &stats, Done: true}
	if err != nil {
		line.Error = &errorBody{Error: err.Error(), Kind: fs.KindOf(err).String()}
	}
	enc.Encode(line)
}

// CrawlSetup checks a crawl request and resolves its provider and template.
func CrawlSetup(st interface {
	Provider(string) (backends.Provider, bool)
}, req CrawlRequest) (ingest.CrawlOptions, backends.Provider, error) {
	p, ok := st.Provider(req.Provider)
	if !ok {
		return ingest.CrawlOptions{}, nil, fs.E(fs.Invalid, "crawl", req.Provider, fmt.Errorf("unknown provider %q", req.Provider))
	}
	opts := ingest.CrawlOptions{Prefix: req.Prefix, Match: req.Match, Meta: req.Meta}
	if req.PathTemplate != "" {
		t, err := pathtmpl.Parse(req.PathTemplate)
		if err != nil {
			return opts, nil, err
		}
		opts.Template = t
	}
	return opts, p, nil
}
