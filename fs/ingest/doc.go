// Package ingest turns outside descriptions of content into catalogue
// entries: NDJSON registration records (Register) and provider listings
// (Crawl). The CLI and the admin API both call it, so `datagate register`
// behaves the same with or without a running server.
//
// # NDJSON batch semantics
//
// Records are read one per line and grouped in batches (1,000 lines by
// default). A batch is parsed whole before anything of it is written, and
// written in one atomic transaction. When a line is malformed — bad JSON,
// an unknown field, a missing location, an unknown provider, a bad
// checksum — the error names the line, its batch is not applied at all,
// the batches before it stay applied, and reading stops there. Blank lines
// are skipped. Registering the same location again is idempotent: the
// record's name, metadata, content type and expiry are compared with the
// record registered last at that location, not with the object as it is
// now, so a correction moves the object and a repeat leaves an object a
// user renamed where it is (fs/index: reregister.go).
package ingest
