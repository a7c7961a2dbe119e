package admin

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/datagate/datagate/fs"
)

// Inspector gives the store's statistics for the stats, replication and
// object detail routes. cmd/datagate adapts fs/store.Store to it, so the
// API's JSON shapes are defined here, in one place, and stay stable when
// the store's counters grow.
type Inspector interface {
	// Stats is a point-in-time summary; it must be cheap (no catalogue scan).
	Stats(ctx context.Context) (Stats, error)
	// Replication is the copy queue per store and the recent transfers.
	Replication(ctx context.Context) (Replication, error)
	// Locations says where an object's content is; NotExist for an
	// unknown id.
	Locations(ctx context.Context, id fs.ID) (Locations, error)
}

// Stats is the answer of GET /api/v1/stats.
type Stats struct {
	Objects   int64           `json:"objects"`
	Bytes     int64           `json:"bytes"`
	Exact     bool            `json:"exact"` // false while counts are rebuilt after an unclean shutdown
	Cache     CacheStats      `json:"cache"`
	Stores    []StoreStats    `json:"stores"` // the primary first
	Providers []ProviderStats `json:"providers"`
	Collected uint64          `json:"collected"` // objects removed by the collector since start
	Index     IndexStats      `json:"index"`
}

// CacheStats describes the chunk cache; HitRatio is Hits/(Hits+Misses),
// 0 before any read.
type CacheStats struct {
	Size         int64   `json:"size"`
	MaxSize      int64   `json:"max_size"`
	Entries      int64   `json:"entries"`
	Hits         uint64  `json:"hits"`
	Misses       uint64  `json:"misses"`
	HitRatio     float64 `json:"hit_ratio"`
	BytesServed  uint64  `json:"bytes_served"`
	BytesFetched uint64  `json:"bytes_fetched"`
	Evictions    uint64  `json:"evictions"`
}

// StoreStats is one store's usage; -1 = unknown.
type StoreStats struct {
	Name      string `json:"name"`
	UsedBytes int64  `json:"used_bytes"`
	FreeBytes int64  `json:"free_bytes"`
	Copies    int64  `json:"copies"`
}

// ProviderStats counts one provider's fetches.
type ProviderStats struct {
	Name         string  `json:"name"`
	Fetches      uint64  `json:"fetches"`
	FetchErrors  uint64  `json:"fetch_errors"`
	Retries      uint64  `json:"retries"`
	BytesFetched uint64  `json:"bytes_fetched"`
	FetchSeconds float64 `json:"fetch_seconds"`
}

// IndexStats is the catalogue's size on disk.
type IndexStats struct {
	LSMBytes  int64 `json:"lsm_bytes"`
	VLogBytes int64 `json:"vlog_bytes"`
}

// Replication is the answer of GET /api/v1/replication.
type Replication struct {
	Stores   []QueueStats `json:"stores"`   // the primary first
	Prefetch int64        `json:"prefetch"` // registered objects queued for prefetch
	Exact    bool         `json:"exact"`    // as Stats.Exact, for the queue counts
	Recent   []Transfer   `json:"recent"`   // newest first
}

// QueueStats is one store's copy queue.
type QueueStats struct {
	Name     string `json:"name"`
	Queued   int64  `json:"queued"`
	InFlight int64  `json:"in_flight"`
	Done     uint64 `json:"done"`
	Failed   uint64 `json:"failed"`
	Bytes    uint64 `json:"bytes"`
}

// Transfer is one copy to a store; Error is empty when it succeeded.
type Transfer struct {
	ID             string    `json:"id"`
	Store          string    `json:"store"`
	Bytes          int64     `json:"bytes"`
	Start          time.Time `json:"start"`
	Seconds        float64   `json:"seconds"`
	BytesPerSecond float64   `json:"bytes_per_second"`
	Error          string    `json:"error,omitempty"`
}

// Locations says where an object's content is: the stores holding a
// good copy, those a copy is queued for, the bytes of it in the cache,
// and whether the whole content is at hand (cached or stored).
type Locations struct {
	Stores   []string `json:"stores"`
	Pending  []string `json:"pending"`
	Cached   int64    `json:"cached"`
	Complete bool     `json:"complete"`
}

// UserInfo is a front-end user as the configuration defines them. It
// names the kinds of credentials a user has, never a secret or a hash.
type UserInfo struct {
	Name        string     `json:"name"`
	Views       []UserView `json:"views"`
	CreateViews bool       `json:"create_views"`
	Credentials []string   `json:"credentials"` // "password", "ssh_key", "s3_key"
}

// UserView is a view a user sees and the rights they have in it.
type UserView struct {
	View   string `json:"view"`
	Rights string `json:"rights"`
}

// Job is a background job: the collector or an acquisition.
type Job interface {
	// Status is the job's state now; cheap.
	Status() JobStatus
	// Trigger asks for a run now, without waiting for it: a job already
	// running runs once more when done (triggers while one is pending
	// coalesce). Unavailable when the job has stopped.
	Trigger(ctx context.Context) error
}

// JobStatus is a job's state. LastCount is what its last run did:
// objects removed (collector) or registered (acquisition).
type JobStatus struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	LastStart   time.Time `json:"last_start,omitzero"`
	LastEnd     time.Time `json:"last_end,omitzero"`
	NextRun     time.Time `json:"next_run,omitzero"`
	LastErr     string    `json:"last_error,omitempty"`
	Runs        uint64    `json:"runs"`
	LastCount   int64     `json:"last_count"`
	Running     bool      `json:"running"`
	Pending     bool      `json:"pending"` // triggered, not started yet
}

var errNotWired = errors.New("not available on this server")

func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	if s.opts.Inspect == nil {
		writeError(w, fs.E(fs.Unsupported, "stats", "", errNotWired))
		return
	}
	st, err := s.opts.Inspect.Stats(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	if n := st.Cache.Hits + st.Cache.Misses; n > 0 {
		st.Cache.HitRatio = float64(st.Cache.Hits) / float64(n)
	}
	if st.Stores == nil {
		st.Stores = []StoreStats{}
	}
	if st.Providers == nil {
		st.Providers = []ProviderStats{}
	}
	writeJSON(w, st)
}

func (s *Server) replication(w http.ResponseWriter, r *http.Request) {
	if s.opts.Inspect == nil {
		writeError(w, fs.E(fs.Unsupported, "replication", "", errNotWired))
		return
	}
	rs, err := s.opts.Inspect.Replication(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	for i := range rs.Recent {
		if t := &rs.Recent[i]; t.Seconds > 0 && t.BytesPerSecond == 0 {
			t.BytesPerSecond = float64(t.Bytes) / t.Seconds
		}
	}
	if rs.Stores == nil {
		rs.Stores = []QueueStats{}
	}
	if rs.Recent == nil {
		rs.Recent = []Transfer{}
	}
	writeJSON(w, rs)
}

func (s *Server) usersList() []UserInfo {
	if s.opts.Users == nil {
		return []UserInfo{}
	}
	return s.opts.Users()
}

func (s *Server) users(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.usersList())
}

func (s *Server) user(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	for _, u := range s.usersList() {
		if u.Name == name {
			writeJSON(w, u)
			return
		}
	}
	writeError(w, fs.E(fs.NotExist, "user", name, errors.New("no such user")))
}

// ViewInfo describes a view: its definition and, for a view created at
// run time (S3 CreateBucket), its owner.
type ViewInfo struct {
	Name    string            `json:"name"`
	Path    string            `json:"path"`
	Filter  string            `json:"filter,omitempty"`
	Set     map[string]string `json:"set,omitempty"`
	Runtime bool              `json:"runtime"`
	Owner   string            `json:"owner,omitempty"`
}

func (s *Server) views(w http.ResponseWriter, r *http.Request) {
	out := []ViewInfo{}
	if s.opts.Views != nil {
		for _, v := range s.opts.Views.Views() {
			d := v.Def()
			owner, rt := v.Runtime()
			out = append(out, ViewInfo{Name: v.Name(), Path: d.Path, Filter: d.Filter, Set: d.Set, Runtime: rt, Owner: owner})
		}
	}
	writeJSON(w, out)
}

func (s *Server) jobList() []Job {
	if s.opts.Jobs == nil {
		return nil
	}
	return s.opts.Jobs()
}

func (s *Server) findJob(w http.ResponseWriter, r *http.Request) (Job, bool) {
	name := r.PathValue("name")
	for _, j := range s.jobList() {
		if j.Status().Name == name {
			return j, true
		}
	}
	writeError(w, fs.E(fs.NotExist, "job", name, errors.New("no such job")))
	return nil, false
}

func (s *Server) jobs(w http.ResponseWriter, r *http.Request) {
	out := []JobStatus{}
	for _, j := range s.jobList() {
		out = append(out, j.Status())
	}
	writeJSON(w, out)
}

func (s *Server) job(w http.ResponseWriter, r *http.Request) {
	if j, ok := s.findJob(w, r); ok {
		writeJSON(w, j.Status())
	}
}

// runJob triggers a run and answers 202 at once with the status; the
// caller polls GET /api/v1/jobs/{name} until runs grows.
func (s *Server) runJob(w http.ResponseWriter, r *http.Request) {
	j, ok := s.findJob(w, r)
	if !ok {
		return
	}
	err := j.Trigger(r.Context())
	s.audit(r, "job run", err, slog.String("job", r.PathValue("name")))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSONStatus(w, http.StatusAccepted, j.Status())
}

// reload re-reads the configuration. A refused configuration is a 400
// naming why; the old one stays in force.
func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	if s.opts.Reload == nil {
		writeError(w, fs.E(fs.Unsupported, "reload", "", errNotWired))
		return
	}
	err := s.opts.Reload(r.Context())
	s.audit(r, "reload", err)
	if err != nil {
		if fs.KindOf(err) == fs.Other {
			err = fs.E(fs.Invalid, "reload", "", err)
		}
		writeError(w, err)
		return
	}
	writeJSON(w, map[string]string{"status": "reloaded"})
}
