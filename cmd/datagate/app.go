package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/cache"
	httpbackend "github.com/datagate/datagate/backends/http"
	"github.com/datagate/datagate/backends/local"
	"github.com/datagate/datagate/backends/retry"
	s3backend "github.com/datagate/datagate/backends/s3"
	sftpbackend "github.com/datagate/datagate/backends/sftp"
	"github.com/datagate/datagate/cmd/datagate/config"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/store"
	gwmetrics "github.com/datagate/datagate/gateway/metrics"
	"github.com/datagate/datagate/views"
)

// app is an opened store with the providers it owns.
type app struct {
	store   *store.Store
	views   *views.Set  // the index's Deriver: every view's path entries
	closers []io.Closer // the further stores'
	live    *liveConfig // users, views, providers as reloaded; nil unless serving (reload.go)

	metrics *gwmetrics.Metrics // Prometheus, fed by the store and the front-ends (serve_metrics.go)

	mu sync.Mutex
	// guarded by mu
	provClosers map[string]io.Closer // by provider name; swapped on reload
	retired     []*retired           // replaced providers, closed after a grace
}

func (a *app) Close() error {
	a.views.Close() // stops a background re-derivation before the store goes
	err := a.store.Close()
	for _, c := range a.closers {
		err = errors.Join(err, c.Close())
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.provClosers {
		err = errors.Join(err, c.Close())
	}
	for _, r := range a.retired {
		r.close()
	}
	return err
}

// retireGrace is how long a provider replaced by a reload stays open for
// the reads already fetching through it.
const retireGrace = time.Minute

// retired is a replaced provider's closer, closed once.
type retired struct {
	once  sync.Once
	c     io.Closer
	timer *time.Timer
}

func (r *retired) close() {
	r.once.Do(func() {
		r.timer.Stop()
		r.c.Close()
	})
}

// swapProviders puts cfg's providers in force: built holds the added and
// changed ones (closers theirs), the others are kept. Replaced and removed
// providers are closed after retireGrace.
func (a *app) swapProviders(cfg *config.Config, built map[string]backends.Provider, closers map[string]io.Closer) {
	provs := make(map[string]backends.Provider, len(cfg.Providers))
	for name := range cfg.Providers {
		if p, ok := built[name]; ok {
			provs[name] = p
		} else if p, ok := a.store.Provider(name); ok {
			provs[name] = p
		}
	}
	a.store.SetProviders(provs)
	a.mu.Lock()
	defer a.mu.Unlock()
	for name, c := range a.provClosers {
		if _, kept := cfg.Providers[name]; kept && built[name] == nil {
			continue
		}
		r := &retired{c: c}
		r.timer = time.AfterFunc(retireGrace, r.close)
		a.retired = append(a.retired, r)
		delete(a.provClosers, name)
	}
	maps.Copy(a.provClosers, closers)
}

// openApp builds the providers from the configuration and opens the store.
func openApp(ctx context.Context, cfg *config.Config, log *slog.Logger) (*app, error) {
	a := &app{provClosers: map[string]io.Closer{}}
	if err := makeDataDir(cfg.Data); err != nil { // before the providers and stores make it 0755
		return nil, err
	}
	var err error
	if a.views, err = views.NewSet(cfg.Views, log); err != nil {
		return nil, err
	}
	provs := make(map[string]backends.Provider, len(cfg.Providers))
	for _, name := range cfg.ProviderNames() {
		p, closer, err := buildProvider(name, cfg.Providers[name], log)
		if err != nil {
			a.closeProviders()
			return nil, fmt.Errorf("provider %s: %w", name, err)
		}
		provs[name] = p
		if closer != nil {
			a.provClosers[name] = closer
		}
	}
	primary, err := local.New(store.PrimaryName, local.Config{Root: filepath.Join(cfg.Data, "objects")})
	if err != nil {
		a.closeProviders()
		return nil, err
	}
	// Further stores, replicas and prefetch (serve_replicate.go).
	rep, repClosers, err := replication(cfg, a.views, log)
	if err != nil {
		a.closeProviders()
		return nil, err
	}
	a.closers = append(a.closers, repClosers...)
	a.store, err = store.Open(ctx, store.Options{
		Dir:       cfg.Data,
		Providers: provs,
		Primary:   primary,
		Cache: cache.Options{
			ChunkSize: int64(cfg.Cache.ChunkSize),
			MaxSize:   int64(cfg.Cache.MaxSize),
			ReadAhead: cfg.Cache.ReadAhead,
		},
		Derive: a.views.Derive,
		Logger: log,
		// Expiry defaults and delete_at_source (lifecycle_cmd.go).
		Retention:      retentionFunc(cfg, a.views),
		DeleteAtSource: deleteAtSource(cfg),
		Replication:    rep,
		OnFetch:        a.fetchObserver(log), // serve_metrics.go
	})
	if err != nil {
		a.closeProviders()
		return nil, err
	}
	if err := a.views.Attach(ctx, a.store); err != nil {
		a.Close()
		return nil, err
	}
	a.metrics.AddCore(coreSource(a.store, a.views))
	return a, nil
}

func (a *app) closeProviders() {
	for _, c := range a.closers {
		c.Close()
	}
	for _, c := range a.provClosers {
		c.Close()
	}
}

// buildProvider makes one data provider. A local provider's root must
// exist (a mistyped one is an error naming it, not an empty tree), but
// for the default provider's, DATA/import, which is created.
func buildProvider(name string, pc *config.Provider, log *slog.Logger) (backends.Provider, io.Closer, error) {
	return buildBackend(name, pc, log, pc.Implicit)
}

// buildBackend makes one provider or store; createRoot creates a local
// root that is missing (a store's: datagate writes it). Remote drivers
// without retries of their own are wrapped in the retry decorator.
func buildBackend(name string, pc *config.Provider, log *slog.Logger, createRoot bool) (backends.Provider, io.Closer, error) {
	switch {
	case pc.Local != nil && createRoot:
		p, err := local.New(name, *pc.Local)
		return p, nil, err
	case pc.Local != nil:
		p, err := local.Open(name, *pc.Local)
		if errors.Is(err, iofs.ErrNotExist) {
			err = fs.E(fs.Invalid, "", "", fmt.Errorf("%w (a provider's root is not created: check providers.%s.root)", err, name))
		}
		return p, nil, err
	case pc.HTTP != nil:
		p, err := httpbackend.New(name, *pc.HTTP)
		return p, nil, err
	case pc.S3 != nil:
		p, err := s3backend.New(name, *pc.S3)
		if err != nil {
			return nil, nil, err
		}
		return retry.New(p, retry.Options{Logger: log}), nil, nil
	case pc.SFTP != nil:
		p, err := sftpbackend.New(name, *pc.SFTP, log)
		if err != nil {
			return nil, nil, err
		}
		return retry.New(p, retry.Options{Logger: log}), p, nil
	}
	return nil, nil, fmt.Errorf("no driver for type %q", pc.Type)
}

// makeDataDir creates a new data directory for its owner alone, as its
// cache, index and spool are: objects/ keeps every pushed object in a
// 0644 file, which any local user could read around the views' rights
// (and the default provider's import/ holds what is crawled). An existing
// directory keeps its mode: an operator may have opened it to a group.
func makeDataDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(dir)), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}
