package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/datagate/datagate/cmd/datagate/config"
	gwfuse "github.com/datagate/datagate/gateway/fuse"
	"github.com/datagate/datagate/views"
)

// startFUSE makes the server's mounts (mounts: and --mount), one per
// user tree, each with its own change feed.
func startFUSE(ctx context.Context, env *serveEnv) (func(context.Context) error, error) {
	if len(env.cfg.Mounts) == 0 {
		return nil, nil
	}
	if err := env.cfg.CheckMounts(); err != nil {
		return nil, err
	}
	var stops []func(context.Context) error
	stopAll := func(ctx context.Context) error {
		var err error
		for i := len(stops) - 1; i >= 0; i-- {
			err = errors.Join(err, stops[i](ctx))
		}
		return err
	}
	for _, mc := range env.cfg.Mounts {
		stop, err := mountTree(ctx, env.app, env.cfg, mc, env.log)
		if err != nil {
			stopAll(context.Background())
			return nil, err
		}
		stops = append(stops, stop)
	}
	return stopAll, nil
}

// mountTree mounts one user's tree and returns how to unmount it.
func mountTree(ctx context.Context, a *app, cfg *config.Config, mc config.Mount, log *slog.Logger) (func(context.Context) error, error) {
	u, ok := cfg.Users[mc.User]
	if !ok {
		return nil, fmt.Errorf("mount: no user %q in the configuration", mc.User)
	}
	tree := views.NewTree(views.TreeOptions{Set: a.views, Store: a.store, User: mc.User, Profile: u.Profile(), StatfsDir: cfg.Data})
	w := views.Watch(a.views, a.store.Index(), 4096)
	m, err := gwfuse.Mount(ctx, mc.Path, gwfuse.Options{
		Tree:       tree,
		Set:        a.views,
		Events:     w.C,
		SpoolDir:   filepath.Join(cfg.Data, "spool", "fuse"),
		ReadOnly:   mc.ReadOnly,
		AllowOther: mc.AllowOther,
		OpTimeout:  time.Duration(mc.Timeout),
		Logger:     log,
		WrapRaw:    a.metrics.FUSE(), // serve_metrics.go
	})
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("mount %s for %s: %w", mc.Path, mc.User, err)
	}
	return func(ctx context.Context) error {
		err := m.Unmount(ctx)
		w.Close()
		return err
	}, nil
}

// mountFlags adds serve's --mount NAME:MOUNTPOINT flags to cfg.Mounts.
func mountFlags(cfg *config.Config, flags []string) error {
	for _, f := range flags {
		m, err := config.ParseMountFlag(f)
		if err != nil {
			return err
		}
		cfg.Mounts = append(cfg.Mounts, m)
	}
	return nil
}
