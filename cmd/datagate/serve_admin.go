package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/datagate/datagate/cmd/datagate/config"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/store"
	"github.com/datagate/datagate/gateway/admin"
	gwmetrics "github.com/datagate/datagate/gateway/metrics"
)

// adminState is the admin API's share of serve: the background jobs it
// reports and triggers, and whether the front-ends have started (for
// readiness).
type adminState struct {
	started atomic.Bool

	mu sync.Mutex
	// guarded by mu
	jobs []admin.Job
}

func newAdminState() *adminState { return &adminState{} }

// addJob makes a job visible to the API (GET/POST /api/v1/jobs).
func (s *adminState) addJob(j admin.Job) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs = append(s.jobs, j)
}

func (s *adminState) jobList() []admin.Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]admin.Job(nil), s.jobs...)
}

// startAdmin serves the admin API on the data directory's Unix socket
// (no credentials: only users who may enter the data directory reach it,
// 0700 directory, 0600 socket) and, when listen.admin is set, on TCP
// with the admin users of the configuration and the data directory's
// token. A listener that fails later is reported on errc. stop shuts
// both down gracefully.
func startAdmin(ctx context.Context, env *serveEnv, errc chan<- error) (stop func(context.Context) error, err error) {
	cfg, log := env.cfg, env.log
	token, err := adminToken(cfg.Data)
	if err != nil {
		return nil, err
	}
	var servers []*http.Server
	var wg sync.WaitGroup
	serve := func(l net.Listener, h http.Handler, what string) {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		servers = append(servers, srv)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s: %w", what, err)
			}
		}()
	}
	shutdown := func(ctx context.Context) error {
		var err error
		for _, s := range servers {
			err = errors.Join(err, s.Shutdown(ctx))
		}
		wg.Wait()
		return err
	}

	sock := socketPath(cfg)
	os.Remove(sock) // stale from a crash: we hold the data directory's lock
	ul, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", sock, err)
	}
	os.Chmod(sock, 0o600)
	sockMux := http.NewServeMux()
	// Both listeners' requests are counted in the metrics' "admin" front-end.
	sockMux.Handle("/", env.app.metrics.HTTP(gwmetrics.Admin, admin.New(adminOptions(env, nil)).Handler()))
	sockMux.Handle("POST /api/v1/run", cliHandler(env.app, cfg, env))
	serve(ul, sockMux, "admin socket")

	if cfg.Listen.Admin != "" {
		tl, err := net.Listen("tcp", cfg.Listen.Admin)
		if err != nil {
			shutdown(ctx)
			os.Remove(sock)
			return nil, fmt.Errorf("admin listener %s (listen.admin): %w", cfg.Listen.Admin, err)
		}
		tl = limitListen(tl, "admin", maxConns, maxConnsPerAddr, log)
		if host, _, _ := net.SplitHostPort(tl.Addr().String()); !net.ParseIP(host).IsLoopback() {
			log.Warn("admin API listens beyond loopback", "addr", tl.Addr().String()) // a *net.TCPAddr is a JSON object
		}
		auth := admin.NewAuth(adminCredentials(env.config()), token)
		h := followAdminUsers(env, auth, token, admin.New(adminOptions(env, auth)).Handler())
		serve(tl, env.app.metrics.HTTP(gwmetrics.Admin, h), "admin listener")
		log.Info("admin API", "addr", "http://"+tl.Addr().String(), "token_file", filepath.Join(cfg.Data, "admin.token"),
			"admin_users", len(env.config().Admin.Users))
	}
	return func(ctx context.Context) error {
		defer os.Remove(sock)
		return shutdown(ctx)
	}, nil
}

// adminOptions is the API over env; auth nil for the socket.
func adminOptions(env *serveEnv, auth *admin.Auth) admin.Options {
	st := env.app.store
	return admin.Options{
		Store:   st,
		Auth:    auth,
		Logger:  env.log.With("frontend", "admin"),
		Audit:   env.app.views.Audit(),
		Views:   env.app.views,
		Walk:    st.Index().Walk,
		Inspect: storeInspector{st},
		Users:   func() []admin.UserInfo { return userInfos(env.config()) },
		Jobs:    env.admin.jobList,
		Ready:   readiness(env),
		Reload:  env.reload,
		Metrics: metricsHandler(env), // serve_metrics.go
	}
}

// followAdminUsers keeps auth's users those of the configuration in force:
// a reload (SIGHUP or the API) swaps the configuration, and the next
// request sees its admin users. Comparing one pointer costs nothing.
func followAdminUsers(env *serveEnv, auth *admin.Auth, token string, next http.Handler) http.Handler {
	var seen atomic.Pointer[config.Config]
	seen.Store(env.config())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cur := env.config(); seen.Swap(cur) != cur {
			auth.SetUsers(adminCredentials(cur), token)
		}
		next.ServeHTTP(w, r)
	})
}

// adminCredentials turns admin.users into the API's credentials.
func adminCredentials(cfg *config.Config) []admin.Credential {
	var out []admin.Credential
	for _, name := range cfg.AdminUserNames() {
		u := cfg.Admin.Users[name]
		role, _ := admin.ParseRole(u.Role) // validated
		out = append(out, admin.Credential{Name: name, Role: role, PasswordHash: u.PasswordHash, TokenSHA256: u.Token()})
	}
	return out
}

// userInfos describes the front-end users: views, rights, and which kinds
// of credentials they have, never the credentials.
func userInfos(cfg *config.Config) []admin.UserInfo {
	out := []admin.UserInfo{}
	for _, name := range cfg.UserNames() {
		u := cfg.Users[name]
		ui := admin.UserInfo{Name: name, Views: []admin.UserView{}, CreateViews: u.CreateViews, Credentials: []string{}}
		for _, v := range slices.Sorted(maps.Keys(u.Views)) {
			ui.Views = append(ui.Views, admin.UserView{View: v, Rights: u.Views[v]})
		}
		if u.PasswordHash != "" {
			ui.Credentials = append(ui.Credentials, "password")
		}
		if len(u.SSHKeys) > 0 {
			ui.Credentials = append(ui.Credentials, "ssh_key")
		}
		if len(u.S3Keys) > 0 {
			ui.Credentials = append(ui.Credentials, "s3_key")
		}
		out = append(out, ui)
	}
	return out
}

// readiness lists what /readyz checks: the store answers a lookup, the
// index can take writes (open, not read-only, space left on the data
// directory's file system), and every front-end has started.
func readiness(env *serveEnv) []admin.Check {
	st := env.app.store
	return []admin.Check{
		{Name: "store", Check: func(ctx context.Context) error {
			// The zero id is never an object: NotExist proves a lookup ran.
			if _, err := st.Get(ctx, fs.ID{}); err != nil && fs.KindOf(err) != fs.NotExist {
				return err
			}
			return nil
		}},
		{Name: "index", Check: func(ctx context.Context) error {
			db := st.Index().DB()
			switch {
			case db.IsClosed():
				return errors.New("the index is closed")
			case db.Opts().ReadOnly:
				return errors.New("the index is read-only")
			}
			var sfs syscall.Statfs_t
			if err := syscall.Statfs(env.cfg.Data, &sfs); err == nil && sfs.Bavail == 0 {
				return fmt.Errorf("no space left on the file system of %s", env.cfg.Data)
			}
			return nil
		}},
		{Name: "frontends", Check: func(ctx context.Context) error {
			if !env.admin.started.Load() {
				return errors.New("starting")
			}
			return nil
		}},
	}
}

// storeInspector adapts the store's statistics to the API's shapes.
type storeInspector struct{ st *store.Store }

func (i storeInspector) Stats(ctx context.Context) (admin.Stats, error) {
	s, err := i.st.Stats(ctx)
	if err != nil {
		return admin.Stats{}, err
	}
	c := s.Cache
	out := admin.Stats{
		Objects: s.Objects, Bytes: s.Bytes, Exact: s.Exact, Collected: s.Collected,
		Cache: admin.CacheStats{Size: c.Size, MaxSize: c.MaxSize, Entries: c.Entries, Hits: c.Hits, Misses: c.Misses,
			BytesServed: c.BytesServed, BytesFetched: c.BytesFetched, Evictions: c.Evictions},
		Index: admin.IndexStats{LSMBytes: s.Index.LSMBytes, VLogBytes: s.Index.VLogBytes},
	}
	for _, x := range s.Stores {
		out.Stores = append(out.Stores, admin.StoreStats{Name: x.Name, UsedBytes: x.UsedBytes, FreeBytes: x.FreeBytes, Copies: x.Copies})
	}
	for _, p := range s.Providers {
		out.Providers = append(out.Providers, admin.ProviderStats{Name: p.Name, Fetches: p.Fetches, FetchErrors: p.FetchErrors,
			Retries: p.Retries, BytesFetched: p.BytesFetched, FetchSeconds: p.FetchSeconds})
	}
	return out, nil
}

func (i storeInspector) Replication(ctx context.Context) (admin.Replication, error) {
	r, err := i.st.ReplicationStatus(ctx)
	if err != nil {
		return admin.Replication{}, err
	}
	out := admin.Replication{Prefetch: r.Prefetch, Exact: r.Exact}
	for _, q := range r.Stores {
		out.Stores = append(out.Stores, admin.QueueStats{Name: q.Name, Queued: q.Queued, InFlight: q.InFlight, Done: q.Done, Failed: q.Failed, Bytes: q.Bytes})
	}
	for _, t := range r.Recent {
		out.Recent = append(out.Recent, admin.Transfer{ID: t.ID.String(), Store: t.Store, Bytes: t.Bytes, Start: t.Start,
			Seconds: t.Duration.Seconds(), Error: t.Err})
	}
	return out, nil
}

func (i storeInspector) Locations(ctx context.Context, id fs.ID) (admin.Locations, error) {
	l, err := i.st.Locations(ctx, id)
	if err != nil {
		return admin.Locations{}, err
	}
	out := admin.Locations{Stores: l.Stores, Pending: l.Pending, Cached: l.Cached, Complete: l.Complete}
	if out.Stores == nil {
		out.Stores = []string{}
	}
	if out.Pending == nil {
		out.Pending = []string{}
	}
	return out, nil
}

// loopJob is a background job run every interval and on demand (the
// collector, each acquisition), keeping the status the API reports.
type loopJob struct {
	// immutable after newLoopJob
	name, desc string
	interval   time.Duration
	run        func(ctx context.Context) (count int64, err error)
	trigger    chan struct{} // one slot: triggers while one is pending coalesce
	done       chan struct{} // closed when the loop has ended

	mu sync.Mutex
	// guarded by mu
	st admin.JobStatus
}

var _ admin.Job = (*loopJob)(nil)

func newLoopJob(name, desc string, interval time.Duration, run func(context.Context) (int64, error)) *loopJob {
	return &loopJob{name: name, desc: desc, interval: interval, run: run,
		trigger: make(chan struct{}, 1), done: make(chan struct{}),
		st: admin.JobStatus{Name: name, Description: desc, NextRun: time.Now()}}
}

// loop runs the job at once, then every interval or when triggered, until
// ctx ends. The interval counts from the end of a run, so a slow run is
// never overlapped by the next.
func (j *loopJob) loop(ctx context.Context) {
	defer close(j.done)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-j.trigger:
		}
		j.runOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		timer.Reset(j.interval)
		j.mu.Lock()
		j.st.NextRun = time.Now().Add(j.interval)
		j.mu.Unlock()
	}
}

func (j *loopJob) runOnce(ctx context.Context) {
	j.mu.Lock()
	j.st.Running, j.st.LastStart = true, time.Now()
	j.mu.Unlock()
	n, err := j.run(ctx)
	j.mu.Lock()
	defer j.mu.Unlock()
	j.st.Running, j.st.LastEnd, j.st.LastCount, j.st.LastErr = false, time.Now(), n, ""
	j.st.Runs++
	if err != nil && ctx.Err() == nil {
		j.st.LastErr = err.Error()
	}
}

func (j *loopJob) Status() admin.JobStatus {
	j.mu.Lock()
	st := j.st
	j.mu.Unlock()
	st.Pending = len(j.trigger) > 0
	return st
}

func (j *loopJob) Trigger(ctx context.Context) error {
	select {
	case <-j.done:
		return fs.E(fs.Unavailable, "run job", j.name, errors.New("the job has stopped (server shutting down)"))
	default:
	}
	select {
	case j.trigger <- struct{}{}:
	default: // one is pending already
	}
	return nil
}
