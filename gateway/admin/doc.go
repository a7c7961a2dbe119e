// Package admin is datagate's operator API: health, registration (NDJSON),
// push, read, find, delete and crawl over HTTP. The server serves it on a
// loopback TCP listener (bearer token required) and on a Unix socket in
// the data directory (protected by file permissions), through which the
// CLI reaches a running server. Client is that CLI side.
//
// Routes:
//
//	GET    /healthz                       {"status":"ok"}
//	POST   /api/v1/objects                NDJSON records → ingest.Result
//	PUT    /api/v1/objects?name=N&meta=k=v&content_type=T   body = content → object
//	GET    /api/v1/objects?q=k=v[&q=..][&limit=N]            NDJSON objects
//	GET    /api/v1/objects/{id}           object
//	GET    /api/v1/objects/{id}/content   content (Range supported)
//	DELETE /api/v1/objects/{id}
//	POST   /api/v1/crawl                  CrawlRequest → NDJSON progress, last line final
//
// Errors are JSON {"error": "...", "kind": "..."} with the status errors.go
// maps each fs.Kind to.
package admin
