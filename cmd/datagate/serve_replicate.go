package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/cmd/datagate/config"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/store"
	"github.com/datagate/datagate/views"
)

// replication builds the store's Replication options from the stores,
// replicas, keep_fetched and prefetch settings. The returned closers
// release the stores' connections.
func replication(cfg *config.Config, vs *views.Set, log *slog.Logger) (store.Replication, []io.Closer, error) {
	rep := store.Replication{Replicas: cfg.Replicas, KeepFetched: cfg.KeepFetched}
	var closers []io.Closer
	fail := func(err error) (store.Replication, []io.Closer, error) {
		for _, c := range closers {
			c.Close()
		}
		return store.Replication{}, nil, err
	}
	for i := range cfg.Stores {
		sc := &cfg.Stores[i]
		p, closer, err := buildBackend(sc.Name, &sc.Provider, log, true)
		if err != nil {
			return fail(fmt.Errorf("store %s: %w", sc.Name, err))
		}
		if closer != nil {
			closers = append(closers, closer)
		}
		w, ok := p.(backends.Writer)
		if !ok {
			return fail(fmt.Errorf("store %s: a %s provider cannot hold copies", sc.Name, sc.Type))
		}
		rep.Stores = append(rep.Stores, store.Target{Name: sc.Name, W: w, Concurrency: sc.Concurrency})
	}
	if len(cfg.Prefetch) == 0 {
		return rep, closers, nil
	}
	// Per provider, and per configured view (membership is the view's
	// filter and template, as for its paths).
	provPrio := map[string]store.Priority{}
	type viewRule struct {
		v    *views.View
		prio store.Priority
	}
	var viewRules []viewRule
	var sig []string
	for _, p := range cfg.Prefetch {
		prio, err := store.ParsePriority(p.Priority)
		if err != nil {
			return fail(err)
		}
		if p.Provider != "" {
			if old, dup := provPrio[p.Provider]; dup {
				prio = min(prio, old)
			}
			provPrio[p.Provider] = prio
			sig = append(sig, "provider="+p.Provider+":"+prio.String())
			continue
		}
		v, ok := vs.View(p.View)
		if !ok {
			return fail(fmt.Errorf("prefetch: no view %q", p.View))
		}
		viewRules = append(viewRules, viewRule{v, prio})
		// The view's definition is part of the rule: a changed filter
		// changes which objects are queued.
		sig = append(sig, fmt.Sprintf("view=%s:%s:%+v", p.View, prio, v.Def()))
	}
	sort.Strings(sig)
	rep.Signature = strings.Join(sig, ";")
	rep.Prefetch = func(o *fs.Object) (bool, store.Priority) {
		prio, ok := provPrio[o.Source.Provider]
		for _, r := range viewRules {
			if ok && prio <= r.prio {
				continue // nothing better to gain
			}
			if _, in := r.v.PathOf(o); in {
				prio, ok = r.prio, true
			}
		}
		return ok, prio
	}
	// Fetched content is kept at its prefetch priority.
	rep.Priority = func(o *fs.Object) store.Priority {
		if o.State == fs.StateStored {
			return store.High
		}
		if ok, p := rep.Prefetch(o); ok {
			return p
		}
		return store.Low
	}
	return rep, closers, nil
}

// startReplication serves the replication and prefetch queues in the
// background for as long as the server runs.
func startReplication(ctx context.Context, env *serveEnv) (func(context.Context) error, error) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		env.app.store.RunReplication(ctx)
	}()
	return func(context.Context) error {
		cancel()
		<-done
		return nil
	}, nil
}
