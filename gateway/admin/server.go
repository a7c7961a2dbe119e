package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
)

type ingestCrawlStats = ingest.CrawlStats

// Store is what the API needs of the object store.
type Store interface {
	ingest.Registrar
	Put(ctx context.Context, req store.PutRequest, r io.Reader) (*fs.Object, error)
	Get(ctx context.Context, id fs.ID) (*fs.Object, error)
	Open(ctx context.Context, id fs.ID) (*store.Reader, error)
	Find(ctx context.Context, conds []index.Cond, opts index.FindOptions, fn func(*fs.Object) error) error
	Delete(ctx context.Context, ids ...fs.ID) error
	Provider(name string) (backends.Provider, bool)
}

// Server serves the admin API.
type Server struct {
	st    Store
	log   *slog.Logger
	token string // required as a bearer token when non-empty
}

// NewServer returns the API over st. With a non-empty token every request
// but /healthz must carry "Authorization: Bearer <token>".
func NewServer(st Store, token string, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{st: st, log: log, token: token}
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("POST /api/v1/objects", s.register)
	mux.HandleFunc("PUT /api/v1/objects", s.put)
	mux.HandleFunc("GET /api/v1/objects", s.find)
	mux.HandleFunc("GET /api/v1/objects/{id}", s.stat)
	mux.HandleFunc("GET /api/v1/objects/{id}/content", s.content)
	mux.HandleFunc("DELETE /api/v1/objects/{id}", s.delete)
	mux.HandleFunc("POST /api/v1/crawl", s.crawl)
	return s.recover(s.auth(mux))
}

func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.token != "" && r.URL.Path != "/healthz" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="datagate"`)
				writeError(w, fs.E(fs.Permission, "admin", "", errors.New("missing or wrong bearer token")))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
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
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	batch, _ := strconv.Atoi(r.URL.Query().Get("batch"))
	res, err := ingest.Register(r.Context(), s.st, r.Body, batch, nil)
	if err != nil {
		s.log.Warn("register", "err", err, "applied", res.Added+res.Updated)
		writeError(w, err)
		return
	}
	writeJSON(w, res)
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
	q := r.URL.Query()
	meta, err := ParseMeta(q["meta"])
	if err != nil {
		writeError(w, err)
		return
	}
	req := store.PutRequest{Name: q.Get("name"), Meta: meta, ContentType: q.Get("content_type"), Size: r.ContentLength}
	if mt := q.Get("mtime"); mt != "" {
		if req.ModTime, err = time.Parse(time.RFC3339Nano, mt); err != nil {
			writeError(w, fs.E(fs.Invalid, "put", mt, err))
			return
		}
	}
	o, err := s.st.Put(r.Context(), req, r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusCreated)
	writeJSON(w, ToJSON(o))
}

func (s *Server) find(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	meta, err := ParseMeta(q["q"])
	if err != nil {
		writeError(w, err)
		return
	}
	var conds []index.Cond
	for k, v := range meta {
		conds = append(conds, index.Cond{Key: k, Value: v})
	}
	limit, _ := strconv.Atoi(q.Get("limit"))
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	wrote := false
	err = s.st.Find(r.Context(), conds, index.FindOptions{Limit: limit}, func(o *fs.Object) error {
		wrote = true
		return enc.Encode(ToJSON(o))
	})
	if err != nil && !wrote {
		writeError(w, err)
		return
	}
	if err != nil {
		// Headers are gone: end the stream with an error line.
		enc.Encode(errorBody{Error: err.Error(), Kind: fs.KindOf(err).String()})
	}
}

func (s *Server) id(w http.ResponseWriter, r *http.Request) (fs.ID, bool) {
	id, err := fs.ParseID(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return id, false
	}
	return id, true
}

func (s *Server) stat(w http.ResponseWriter, r *http.Request) {
	id, ok := s.id(w, r)
	if !ok {
		return
	}
	o, err := s.st.Get(r.Context(), id)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, ToJSON(o))
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
	if o.ETag != "" {
		w.Header().Set("ETag", strconv.Quote(o.ETag))
	}
	// ServeContent handles Range; over a plain file it uses sendfile.
	if f, ok := rd.File(); ok {
		http.ServeContent(w, r, o.Name, o.ModTime, io.NewSectionReader(f, 0, o.Size))
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

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	id, ok := s.id(w, r)
	if !ok {
		return
	}
	if err := s.st.Delete(r.Context(), id); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) crawl(w http.ResponseWriter, r *http.Request) {
	var req CrawlRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, fs.E(fs.Invalid, "crawl", "", fmt.Errorf("malformed request: %w", err)))
		return
	}
	opts, p, err := CrawlSetup(s.st, req)
	if err != nil {
		writeError(w, err)
		return
	}
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
