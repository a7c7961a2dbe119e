// Package metrics exposes what the server does in the Prometheus text
// format, with github.com/prometheus/client_golang on a Registry of its
// own (never the global one), served at /metrics.
//
// Two kinds of metric live here:
//
//   - Front-end metrics, counted as requests are served: requests by
//     operation and outcome, latency histograms, errors by kind, bytes in
//     and out, in-flight HTTP requests, active SFTP sessions and FUSE
//     mounts. Each front-end is fed by one hook: HTTP wraps the WebDAV,
//     S3 and admin handlers; SFTP satisfies gateway/sftp's Metrics
//     interface; FUSE wraps the mount's fuse.RawFileSystem.
//   - Core metrics, read at scrape time: a Collector calls a CoreSource
//     (cmd/datagate adapts the store's Stats and ReplicationStatus to it)
//     and turns the snapshot into gauges and counters. Nothing is kept
//     between scrapes, so the store stays the one source of those numbers.
//     Provider fetch latency is the exception: the store reports each
//     fetch to ObserveFetch, which feeds a histogram.
//
// Label values are bounded: operations come from fixed lists (HTTP
// methods outside the list count as "OTHER", SFTP and FUSE operations
// likewise as "other"), error kinds from the fs vocabulary, provider and
// store names from the configuration. No path, object id or user name is
// ever a label value.
//
// Cost: the request path allocates nothing. Every series a request
// touches is resolved once, on first use, into a table indexed by
// operation, status and kind; the HTTP response writer and body counter
// come from a pool. What remains per request is two clock reads, a few
// atomic adds and one histogram observation (see BenchmarkHTTP).
//
// Errors by kind: SFTP and FUSE report the kind of the error itself (SFTP
// before it becomes a status code; FUSE from the errno the kernel gets).
// The HTTP front-ends are measured from outside, so their kind is read
// back from the status their error mapping chose (KindOfStatus): 404 is
// not_exist, 401 and 403 permission, 409 and 412 exist (WebDAV and S3 also
// answer 409 for not_empty and not_dir), 507 no_space, 503 unavailable,
// 501 and 405 unsupported, other 4xx invalid and other 5xx other.
package metrics
