package config

// WebDAV configures the WebDAV front-end (gateway/webdav).
type WebDAV struct{}
