package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Core is a point-in-time summary of the store, read at each scrape.
// Counters (uint64) only grow while the process runs; gauges (int64) are
// current values, -1 where unknown (then left out).
type Core struct {
	Objects int64 // objects in the catalogue
	Bytes   int64 // the sum of their sizes
	Exact   bool  // false while the counts are rebuilt after an unclean shutdown

	Cache     CacheStats
	Stores    []StoreStats    // the primary first
	Providers []ProviderStats // configured providers
	Queues    []QueueStats    // replication, per target store
	Prefetch  int64           // registered objects queued for prefetch

	Collected  uint64 // objects removed by the collector
	Collisions uint64 // objects superseded at a path they shared with a newer one

	LSMBytes, VLogBytes int64 // Badger's LSM tree and value log
}

// CacheStats is the chunk cache's state.
type CacheStats struct {
	Size, MaxSize, Entries                             int64
	Hits, Misses, BytesServed, BytesFetched, Evictions uint64
}

// StoreStats is one store's usage.
type StoreStats struct {
	Name                 string
	UsedBytes, FreeBytes int64 // -1: unknown
	Copies               int64 // object copies it holds
}

// ProviderStats is one provider's fetch counts.
type ProviderStats struct {
	Name                                        string
	Fetches, FetchErrors, Retries, BytesFetched uint64
	FetchSeconds                                float64 // the sum over Fetches
}

// QueueStats is one target store's replication queue.
type QueueStats struct {
	Name                string
	Queued, InFlight    int64
	Done, Failed, Bytes uint64
}

// CoreSource reads the store's summary; the collector calls it once per
// scrape, with a deadline. It must be cheap (no scan of the catalogue).
type CoreSource func(ctx context.Context) (Core, error)

// coreTimeout bounds one scrape's read of the core source.
const coreTimeout = 5 * time.Second

// AddCore registers a collector that reads src at every scrape. Call it
// once, when the store is open. A failing source leaves the core metrics
// out of that scrape, logs why and counts it in
// datagate_core_scrape_errors_total; the front-end metrics are served
// regardless.
func (m *Metrics) AddCore(src CoreSource) {
	c := newCoreCollector(m, src)
	m.reg.MustRegister(c)
}

type coreCollector struct {
	m      *Metrics
	src    CoreSource
	errors prometheus.Counter

	objects, bytes, exact                                *prometheus.Desc
	cacheSize, cacheMax, cacheEntries                    *prometheus.Desc
	cacheHits, cacheMisses, cacheServed, cacheFetched    *prometheus.Desc
	cacheEvictions                                       *prometheus.Desc
	storeUsed, storeFree, storeCopies                    *prometheus.Desc
	provFetches, provErrors, provRetries, provBytes      *prometheus.Desc
	provSeconds                                          *prometheus.Desc
	repQueued, repInFlight, repDone, repFailed, repBytes *prometheus.Desc
	collected, collisions, lsm, vlog, prefetch           *prometheus.Desc
}

func newCoreCollector(m *Metrics, src CoreSource) *coreCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
	}
	c := &coreCollector{m: m, src: src}
	c.errors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "core_scrape_errors_total",
		Help: "Scrapes whose read of the store's statistics failed (core metrics left out).",
	})
	c.objects = d("catalogue_objects", "Objects in the catalogue.")
	c.bytes = d("catalogue_bytes", "Sum of the sizes of the objects in the catalogue.")
	c.exact = d("catalogue_counts_exact", "1 when the catalogue counts are exact; 0 while they are rebuilt after an unclean shutdown.")
	c.cacheSize = d("cache_size_bytes", "Bytes in the chunk cache.")
	c.cacheMax = d("cache_max_size_bytes", "The chunk cache's size limit (0: unlimited).")
	c.cacheEntries = d("cache_entries", "Objects with content in the chunk cache.")
	c.cacheHits = d("cache_hits_total", "Reads served from the cache.")
	c.cacheMisses = d("cache_misses_total", "Reads that had to fetch.")
	c.cacheServed = d("cache_served_bytes_total", "Bytes served from the cache.")
	c.cacheFetched = d("cache_fetched_bytes_total", "Bytes fetched into the cache.")
	c.cacheEvictions = d("cache_evictions_total", "Cache entries evicted to stay within the size limit.")
	c.storeUsed = d("store_used_bytes", "Bytes used on a store.", "store")
	c.storeFree = d("store_free_bytes", "Bytes free on a store.", "store")
	c.storeCopies = d("store_copies", "Object copies a store holds.", "store")
	c.provFetches = d("provider_fetches_total", "Fetches from a provider.", "provider")
	c.provErrors = d("provider_fetch_errors_total", "Fetches from a provider that failed.", "provider")
	c.provRetries = d("provider_retries_total", "Retries of provider calls.", "provider")
	c.provBytes = d("provider_fetched_bytes_total", "Bytes fetched from a provider.", "provider")
	c.provSeconds = d("provider_fetch_seconds_total", "Time spent fetching from a provider.", "provider")
	c.repQueued = d("replication_queued", "Copies waiting in a store's replication queue.", "store")
	c.repInFlight = d("replication_in_flight", "Copies being made to a store.", "store")
	c.repDone = d("replication_done_total", "Copies made to a store.", "store")
	c.repFailed = d("replication_failed_total", "Copies to a store that failed.", "store")
	c.repBytes = d("replication_bytes_total", "Bytes copied to a store.", "store")
	c.prefetch = d("prefetch_queued", "Registered objects queued for prefetch.")
	c.collected = d("gc_removed_total", "Objects removed by the collector (expiry).")
	c.collisions = d("path_collisions_total", "Objects superseded at a view path by a newer object that took the same path.")
	c.lsm = d("badger_lsm_bytes", "Size of the index's LSM tree (Badger).")
	c.vlog = d("badger_vlog_bytes", "Size of the index's value log (Badger).")
	return c
}

func (c *coreCollector) Describe(ch chan<- *prometheus.Desc) {
	c.errors.Describe(ch)
	for _, d := range []*prometheus.Desc{
		c.objects, c.bytes, c.exact, c.cacheSize, c.cacheMax, c.cacheEntries,
		c.cacheHits, c.cacheMisses, c.cacheServed, c.cacheFetched, c.cacheEvictions,
		c.storeUsed, c.storeFree, c.storeCopies,
		c.provFetches, c.provErrors, c.provRetries, c.provBytes, c.provSeconds,
		c.repQueued, c.repInFlight, c.repDone, c.repFailed, c.repBytes,
		c.prefetch, c.collected, c.collisions, c.lsm, c.vlog,
	} {
		ch <- d
	}
}

func (c *coreCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), coreTimeout)
	defer cancel()
	s, err := c.src(ctx)
	if err != nil {
		c.m.log.Warn("metrics: reading the store's statistics", "err", err)
		c.errors.Inc()
		c.errors.Collect(ch)
		return
	}
	c.errors.Collect(ch)
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		if v >= 0 {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
		}
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(c.objects, s.Objects)
	gauge(c.bytes, s.Bytes)
	exact := int64(0)
	if s.Exact {
		exact = 1
	}
	gauge(c.exact, exact)
	gauge(c.cacheSize, s.Cache.Size)
	gauge(c.cacheMax, s.Cache.MaxSize)
	gauge(c.cacheEntries, s.Cache.Entries)
	counter(c.cacheHits, float64(s.Cache.Hits))
	counter(c.cacheMisses, float64(s.Cache.Misses))
	counter(c.cacheServed, float64(s.Cache.BytesServed))
	counter(c.cacheFetched, float64(s.Cache.BytesFetched))
	counter(c.cacheEvictions, float64(s.Cache.Evictions))
	for _, st := range s.Stores {
		gauge(c.storeUsed, st.UsedBytes, st.Name)
		gauge(c.storeFree, st.FreeBytes, st.Name)
		gauge(c.storeCopies, st.Copies, st.Name)
	}
	for _, p := range s.Providers {
		counter(c.provFetches, float64(p.Fetches), p.Name)
		counter(c.provErrors, float64(p.FetchErrors), p.Name)
		counter(c.provRetries, float64(p.Retries), p.Name)
		counter(c.provBytes, float64(p.BytesFetched), p.Name)
		counter(c.provSeconds, p.FetchSeconds, p.Name)
	}
	for _, q := range s.Queues {
		gauge(c.repQueued, q.Queued, q.Name)
		gauge(c.repInFlight, q.InFlight, q.Name)
		counter(c.repDone, float64(q.Done), q.Name)
		counter(c.repFailed, float64(q.Failed), q.Name)
		counter(c.repBytes, float64(q.Bytes), q.Name)
	}
	gauge(c.prefetch, s.Prefetch)
	counter(c.collected, float64(s.Collected))
	counter(c.collisions, float64(s.Collisions))
	gauge(c.lsm, s.LSMBytes)
	gauge(c.vlog, s.VLogBytes)
}
