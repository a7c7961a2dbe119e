package config

// WebDAV configures the WebDAV front-end (gateway/webdav), listening on
// listen.webdav. Zero values take the defaults shown.
type WebDAV struct {
	// TLS: both or neither; without them the listener speaks plain HTTP
	// (keep it on loopback, or behind a TLS proxy: Basic auth sends
	// passwords in the clear).
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	Realm   string `yaml:"realm"` // Basic auth realm; default "datagate"
	// CreateParents lets PUT, MKCOL, COPY and MOVE create missing parent
	// collections; by default they answer 409 as RFC 4918 requires.
	CreateParents bool     `yaml:"create_parents"`
	MaxXMLBody    Size     `yaml:"max_xml_body"`     // PROPFIND/PROPPATCH/LOCK bodies; default 1MiB
	AuthCacheTTL  Duration `yaml:"auth_cache_ttl"`   // remembered password checks; default 30s
	MaxLockTime   Duration `yaml:"max_lock_timeout"` // cap on a LOCK's timeout (Infinite too); default 24h
	// After max_auth_failures failed logins in a row, an address gets 429
	// for auth_penalty. Defaults 10 and 30s.
	MaxAuthFailures int      `yaml:"max_auth_failures"`
	AuthPenalty     Duration `yaml:"auth_penalty"`
}
