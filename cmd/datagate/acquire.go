package main

import (
	"context"
	"fmt"
	"time"

	"github.com/datagate/datagate/cmd/datagate/config"
	"github.com/datagate/datagate/fs/ingest"
)

// startAcquisition runs each configured acquisition at once and then every
// interval, each as a job of the admin API ("acquire-0", "acquire-1"...
// in the order of the configuration) that can also be run on demand.
// Crawls are idempotent, so a run that overlaps a restart or a manual
// crawl registers nothing twice.
func startAcquisition(ctx context.Context, env *serveEnv) (func(context.Context) error, error) {
	if len(env.cfg.Acquire) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	var jobs []*loopJob
	for i := range env.cfg.Acquire {
		a := &env.cfg.Acquire[i]
		desc := fmt.Sprintf("crawls provider %s", a.Provider)
		if a.Prefix != "" {
			desc += ", prefix " + a.Prefix
		}
		desc += fmt.Sprintf(", every %v", time.Duration(a.Interval))
		j := newLoopJob(fmt.Sprintf("acquire-%d", i), desc, time.Duration(a.Interval), func(ctx context.Context) (int64, error) {
			return acquireOnce(ctx, env, a)
		})
		env.admin.addJob(j)
		jobs = append(jobs, j)
		go j.loop(ctx)
	}
	return func(context.Context) error {
		cancel()
		for _, j := range jobs {
			<-j.done
		}
		return nil
	}, nil
}

// acquireOnce crawls once and returns the objects it registered (added or
// updated).
func acquireOnce(ctx context.Context, env *serveEnv, a *config.Acquire) (int64, error) {
	st := env.app.store
	p, ok := st.Provider(a.Provider)
	if !ok {
		return 0, fmt.Errorf("no provider %q", a.Provider) // checked at load time; a reload may have removed it
	}
	start := time.Now()
	stats, err := ingest.Crawl(ctx, st, p, ingest.CrawlOptions{
		Prefix: a.Prefix, Match: a.Match, Regexp: a.Re, Template: a.Template, Meta: a.Meta,
		MinAge: time.Duration(a.MinAge), MinSize: int64(a.MinSize), MaxSize: int64(a.MaxSize),
	}, nil)
	log := env.log.With("provider", a.Provider, "prefix", a.Prefix, "listed", stats.Listed,
		"added", stats.Added, "updated", stats.Updated, "skipped", stats.Skipped, "took", time.Since(start).Round(time.Millisecond))
	n := int64(stats.Added + stats.Updated)
	if err != nil && ctx.Err() == nil {
		log.Warn("acquisition failed", "err", err)
		return n, err
	}
	log.Info("acquisition")
	return n, nil
}
