package config

// Mount is one FUSE mount the server makes (gateway/fuse).
type Mount struct{}
