package main

import (
	"context"
	"sync"
	"time"

	"github.com/datagate/datagate/cmd/datagate/config"
	"github.com/datagate/datagate/fs/ingest"
)

// startAcquisition runs each configured acquisition at once and then every
// interval. Crawls are idempotent, so a run that overlaps a restart or a
// manual crawl registers nothing twice.
func startAcquisition(ctx context.Context, env *serveEnv) (func(context.Context) error, error) {
	if len(env.cfg.Acquire) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range env.cfg.Acquire {
		a := &env.cfg.Acquire[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(time.Duration(a.Interval))
			defer t.Stop()
			for {
				acquireOnce(ctx, env, a)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	return func(context.Context) error {
		cancel()
		wg.Wait()
		return nil
	}, nil
}

func acquireOnce(ctx context.Context, env *serveEnv, a *config.Acquire) {
	st := env.app.store
	p, ok := st.Provider(a.Provider)
	if !ok {
		return // checked at load time
	}
	start := time.Now()
	stats, err := ingest.Crawl(ctx, st, p, ingest.CrawlOptions{
		Prefix: a.Prefix, Match: a.Match, Regexp: a.Re, Template: a.Template, Meta: a.Meta,
		MinAge: time.Duration(a.MinAge), MinSize: int64(a.MinSize), MaxSize: int64(a.MaxSize),
	}, nil)
	log := env.log.With("provider", a.Provider, "prefix", a.Prefix, "listed", stats.Listed,
		"added", stats.Added, "updated", stats.Updated, "skipped", stats.Skipped, "took", time.Since(start).Round(time.Millisecond))
	if err != nil && ctx.Err() == nil {
		log.Warn("acquisition failed", "err", err)
		return
	}
	log.Info("acquisition")
}
