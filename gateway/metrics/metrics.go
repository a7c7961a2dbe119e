package metrics

import (
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/datagate/datagate/fs"
)

// Front-end names, the values of the frontend label.
const (
	WebDAV = "webdav"
	S3     = "s3"
	SFTP   = "sftp"
	FUSE   = "fuse"
	Admin  = "admin"
)

// namespace prefixes every metric name.
const namespace = "datagate"

// latencyBuckets span a cached 4 KiB read (~50 µs) to a slow provider
// fetch behind a large upload (a minute).
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// epoch is the origin of the request paths' clock readings: now reads
// the monotonic clock only, where time.Now also reads the wall clock,
// which a duration does not need.
var epoch = time.Now()

// now is the monotonic time since epoch.
func now() time.Duration { return time.Since(epoch) }

// kindLabels names every fs.Kind as a label value. The table test runs
// over fs.AllKinds, so a new kind fails it until it is named here.
var kindLabels = [...]string{
	fs.Other:       "other",
	fs.NotExist:    "not_exist",
	fs.Exist:       "exist",
	fs.Permission:  "permission",
	fs.NotEmpty:    "not_empty",
	fs.IsDir:       "is_dir",
	fs.NotDir:      "not_dir",
	fs.Invalid:     "invalid",
	fs.Unavailable: "unavailable",
	fs.NoSpace:     "no_space",
	fs.Unsupported: "unsupported",
}

const numKinds = len(kindLabels)

// kindIndex is k's slot in kindLabels; an unknown kind counts as other.
func kindIndex(k fs.Kind) int {
	if int(k) < numKinds {
		return int(k)
	}
	return int(fs.Other)
}

// KindLabel is the label value of k.
func KindLabel(k fs.Kind) string { return kindLabels[kindIndex(k)] }

// Metrics holds the registry and every instrument. Safe for concurrent
// use; create one per process with New.
type Metrics struct {
	// immutable after New
	reg      *prometheus.Registry
	log      *slog.Logger
	requests *prometheus.CounterVec   // frontend, op, status
	errors   *prometheus.CounterVec   // frontend, op, kind
	latency  *prometheus.HistogramVec // frontend, op
	bytesIn  *prometheus.CounterVec   // frontend
	bytesOut *prometheus.CounterVec   // frontend
	inFlight *prometheus.GaugeVec     // frontend
	sessions prometheus.Gauge         // SFTP
	sessTot  *prometheus.CounterVec   // SFTP sessions by kind
	mounts   prometheus.Gauge         // FUSE
	fetch    *prometheus.HistogramVec // provider
	fetchErr *prometheus.CounterVec   // provider, kind

	mu sync.Mutex
	// guarded by mu
	fronts map[string]*front
	fetchs map[string]*fetchSeries
	sftp   *SFTPMetrics
}

// Options configure New.
type Options struct {
	// Logger gets scrape errors (a failing core source); nil: slog.Default.
	Logger *slog.Logger
}

// New makes the registry with the Go runtime and process collectors and
// every front-end instrument. Core metrics are added with AddCore.
func New(opts Options) *Metrics {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	m := &Metrics{
		reg:    prometheus.NewRegistry(),
		log:    log,
		fronts: map[string]*front{},
		fetchs: map[string]*fetchSeries{},
	}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "requests_total",
		Help: "Requests served, by front-end, operation (HTTP method; SFTP or FUSE operation) and status (HTTP status class 2xx..5xx; ok or error for SFTP and FUSE).",
	}, []string{"frontend", "op", "status"})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "request_errors_total",
		Help: "Failed requests by front-end, operation and error kind (the fs vocabulary; HTTP front-ends: read back from the status).",
	}, []string{"frontend", "op", "kind"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "request_duration_seconds",
		Help:    "Time to serve a request, by front-end and operation (HTTP: until the handler returns, the body sent).",
		Buckets: latencyBuckets,
	}, []string{"frontend", "op"})
	m.bytesIn = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "received_bytes_total",
		Help: "Bytes received from clients: HTTP request bodies, SFTP/SCP session payload, FUSE writes.",
	}, []string{"frontend"})
	m.bytesOut = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "sent_bytes_total",
		Help: "Bytes sent to clients: HTTP response bodies, SFTP/SCP session payload, FUSE reads served by the daemon (not those passed through to the cache file).",
	}, []string{"frontend"})
	m.inFlight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "http_requests_in_flight",
		Help: "HTTP requests being served, by front-end.",
	}, []string{"frontend"})
	m.sessions = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "sftp_sessions_active",
		Help: "SSH sessions being served: SFTP subsystems and exec commands (scp, md5sum, sha256sum).",
	})
	m.sessTot = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "sftp_sessions_total",
		Help: "SSH sessions started, by kind (sftp, scp, md5sum, sha256sum, other).",
	}, []string{"kind"})
	m.mounts = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "fuse_mounts_active",
		Help: "FUSE mounts being served.",
	})
	m.fetch = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "provider_fetch_duration_seconds",
		Help:    "Time of each fetch from a provider into the cache, by provider.",
		Buckets: latencyBuckets,
	}, []string{"provider"})
	m.fetchErr = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "provider_fetch_failures_total",
		Help: "Fetches from a provider that failed, by provider and error kind.",
	}, []string{"provider", "kind"})
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.errors, m.latency, m.bytesIn, m.bytesOut, m.inFlight,
		m.sessions, m.sessTot, m.mounts, m.fetch, m.fetchErr,
	)
	return m
}

// Registry is the registry every metric is on, for tests and for adding
// collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:          slogPrinter{m.log},
		ErrorHandling:     promhttp.ContinueOnError, // a failing collector must not hide the rest
		Registry:          m.reg,
		EnableOpenMetrics: true,
	})
}

// slogPrinter gives promhttp a logger.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Warn("metrics", "err", v) }

// front is one front-end's instruments, with every series a request can
// touch resolved on first use into fixed slots, so the request path does
// no label lookups and no allocations.
type front struct {
	// immutable after frontOf
	m        *Metrics
	name     string
	statuses []string // the status label values, by slot
	in, out  prometheus.Counter
	inFlight prometheus.Gauge
	ops      map[string]*op // by operation name; read-only
	other    *op            // operations outside ops
	list     []*op          // by index, for the HTTP method table
}

// op is one operation's series.
type op struct {
	f       *front
	name    string
	status  []atomic.Pointer[prometheus.Counter] // by status slot
	kinds   [numKinds]atomic.Pointer[prometheus.Counter]
	latency atomic.Pointer[prometheus.Observer]
}

// frontOf returns the instruments of front-end name, made on first call
// with the given operations and status values.
func (m *Metrics) frontOf(name string, ops []string, otherOp string, statuses []string) *front {
	m.mu.Lock()
	defer m.mu.Unlock()
	if f, ok := m.fronts[name]; ok {
		return f
	}
	f := &front{
		m: m, name: name, statuses: statuses,
		in: m.bytesIn.WithLabelValues(name), out: m.bytesOut.WithLabelValues(name),
		inFlight: m.inFlight.WithLabelValues(name),
		ops:      make(map[string]*op, len(ops)),
	}
	for _, o := range ops {
		x := f.newOp(o)
		f.ops[o] = x
		f.list = append(f.list, x)
	}
	f.other = f.newOp(otherOp)
	f.list = append(f.list, f.other)
	m.fronts[name] = f
	return f
}

func (f *front) newOp(name string) *op {
	return &op{f: f, name: name, status: make([]atomic.Pointer[prometheus.Counter], len(f.statuses))}
}

// done records one request of o: its status slot, how long it took and,
// when failed, the kind of its error.
func (o *op) done(slot int, d time.Duration, failed bool, k fs.Kind) {
	o.counter(slot).Inc()
	o.observer().Observe(d.Seconds())
	if failed {
		o.kindCounter(k).Inc()
	}
}

func (o *op) counter(slot int) prometheus.Counter {
	if c := o.status[slot].Load(); c != nil {
		return *c
	}
	c := o.f.m.requests.WithLabelValues(o.f.name, o.name, o.f.statuses[slot])
	o.status[slot].Store(&c)
	return c
}

func (o *op) kindCounter(k fs.Kind) prometheus.Counter {
	i := kindIndex(k)
	if c := o.kinds[i].Load(); c != nil {
		return *c
	}
	c := o.f.m.errors.WithLabelValues(o.f.name, o.name, kindLabels[i])
	o.kinds[i].Store(&c)
	return c
}

func (o *op) observer() prometheus.Observer {
	if h := o.latency.Load(); h != nil {
		return *h
	}
	h := o.f.m.latency.WithLabelValues(o.f.name, o.name)
	o.latency.Store(&h)
	return h
}
