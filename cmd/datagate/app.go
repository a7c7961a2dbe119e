package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/cache"
	httpbackend "github.com/datagate/datagate/backends/http"
	"github.com/datagate/datagate/backends/local"
	"github.com/datagate/datagate/backends/retry"
	s3backend "github.com/datagate/datagate/backends/s3"
	sftpbackend "github.com/datagate/datagate/backends/sftp"
	"github.com/datagate/datagate/cmd/datagate/config"
	"github.com/datagate/datagate/fs/store"
	"github.com/datagate/datagate/views"
)

// app is an opened store with the providers it owns.
type app struct {
	store   *store.Store
	views   *views.Set // the index's Deriver: every view's path entries
	closers []io.Closer
}

func (a *app) Close() error {
	err := a.store.Close()
	for _, c := range a.closers {
		err = errors.Join(err, c.Close())
	}
	return err
}

// openApp builds the providers from the configuration and opens the store.
func openApp(ctx context.Context, cfg *config.Config, log *slog.Logger) (*app, error) {
	a := &app{}
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
			a.closers = append(a.closers, closer)
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
	})
	if err != nil {
		a.closeProviders()
		return nil, err
	}
	if err := a.views.Attach(ctx, a.store); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

func (a *app) closeProviders() {
	for _, c := range a.closers {
		c.Close()
	}
}

// buildProvider makes one provider. Remote drivers without retries of
// their own are wrapped in the retry decorator.
func buildProvider(name string, pc *config.Provider, log *slog.Logger) (backends.Provider, io.Closer, error) {
	switch {
	case pc.Local != nil:
		p, err := local.New(name, *pc.Local)
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
