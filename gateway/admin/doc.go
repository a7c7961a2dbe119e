// Package admin is datagate's operator API over HTTP: search, detail,
// registration (NDJSON), push, read, update and delete of objects; the
// front-end users and views; store statistics and the replication queue;
// the background jobs (collector, acquisitions) with a trigger; health,
// readiness and configuration reload. Every route is described in
// openapi.json (served at /api/v1/openapi.json); routes() is the list a
// test holds the file to.
//
// The server serves it on a loopback TCP listener and on a Unix socket in
// the data directory (protected by file permissions, so no credentials
// there), through which the CLI reaches a running server. Client is that
// CLI side.
//
// Authentication (Auth): HTTP Basic against bcrypt hashes, a verified
// login cached for a minute under a digest of name, password and hash;
// bearer tokens compared by SHA-256 in constant time. Roles: read (GET
// routes) and full (everything). No or bad credentials are 401, a weak
// role 403. The caller rides on the request's context as a views.Actor
// with a request id, and writes and failed logins go to the audit logger.
//
// Errors are JSON {"error": "...", "kind": "..."} with the status errors.go
// maps each fs.Kind to; bodies over their cap are 413, NDJSON line errors
// carry "line". Bodies are decoded strictly (unknown fields refused).
//
// Search pages in index id order with the last id as the cursor, which
// keeps paging stable under concurrent inserts (see Page).
//
// Statistics, object locations, users, jobs, readiness and reload come
// through Options from cmd/datagate, which owns the store and the
// configuration; a route whose source is absent answers 501.
package admin
