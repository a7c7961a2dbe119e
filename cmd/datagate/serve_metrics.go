package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/datagate/datagate/fs/store"
	gwmetrics "github.com/datagate/datagate/gateway/metrics"
	"github.com/datagate/datagate/views"
)

// Prometheus metrics (gateway/metrics). The app makes them before the
// store opens, so the store reports each provider fetch to them
// (store.Options.OnFetch), and adds the core collector once it is open.
// Each front-end feeds them through its one hook: serveHTTP wraps the
// WebDAV and S3 handlers (and the admin one), SFTP gets Options.Metrics,
// FUSE mounts Options.WrapRaw.
//
// /metrics is served by metricsHandler on the admin listener, behind the
// admin authentication like the rest of the API (Prometheus sends a
// bearer token or basic credentials with authorization / basic_auth in
// its scrape config), and on the Unix socket, which needs none.

// statsSource is what the core metrics read from the store at each
// scrape: two calls that keep counters, no scan.
type statsSource interface {
	Stats(ctx context.Context) (store.Stats, error)
	ReplicationStatus(ctx context.Context) (store.ReplicationStatus, error)
}

// coreSource adapts the store's statistics, and the views' path
// collisions, to the metrics' snapshot.
func coreSource(st statsSource, set *views.Set) gwmetrics.CoreSource {
	return func(ctx context.Context) (gwmetrics.Core, error) {
		s, err := st.Stats(ctx)
		if err != nil {
			return gwmetrics.Core{}, err
		}
		rs, err := st.ReplicationStatus(ctx)
		if err != nil {
			return gwmetrics.Core{}, err
		}
		c := gwmetrics.Core{
			Objects: s.Objects, Bytes: s.Bytes, Exact: s.Exact,
			Cache: gwmetrics.CacheStats{
				Size: s.Cache.Size, MaxSize: s.Cache.MaxSize, Entries: s.Cache.Entries,
				Hits: s.Cache.Hits, Misses: s.Cache.Misses, BytesServed: s.Cache.BytesServed,
				BytesFetched: s.Cache.BytesFetched, Evictions: s.Cache.Evictions,
			},
			Prefetch:  rs.Prefetch,
			Collected: s.Collected,
			LSMBytes:  s.Index.LSMBytes, VLogBytes: s.Index.VLogBytes,
		}
		if set != nil {
			c.Collisions = set.Collisions()
		}
		for _, x := range s.Stores {
			c.Stores = append(c.Stores, gwmetrics.StoreStats{Name: x.Name, UsedBytes: x.UsedBytes, FreeBytes: x.FreeBytes, Copies: x.Copies})
		}
		for _, p := range s.Providers {
			c.Providers = append(c.Providers, gwmetrics.ProviderStats{
				Name: p.Name, Fetches: p.Fetches, FetchErrors: p.FetchErrors, Retries: p.Retries,
				BytesFetched: p.BytesFetched, FetchSeconds: p.FetchSeconds,
			})
		}
		for _, q := range rs.Stores {
			c.Queues = append(c.Queues, gwmetrics.QueueStats{Name: q.Name, Queued: q.Queued, InFlight: q.InFlight, Done: q.Done, Failed: q.Failed, Bytes: q.Bytes})
		}
		return c, nil
	}
}

// fetchObserver makes the app's metrics and gives the store their fetch
// observer (the store opens after it, so its fetches are all seen).
func (a *app) fetchObserver(log *slog.Logger) store.FetchObserver {
	a.metrics = gwmetrics.New(gwmetrics.Options{Logger: log})
	return a.metrics.ObserveFetch
}

// metricsHandler serves /metrics for the admin listener and the socket.
func metricsHandler(env *serveEnv) http.Handler { return env.app.metrics.Handler() }
