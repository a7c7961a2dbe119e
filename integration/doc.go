// Package integration holds end-to-end tests: real providers and servers
// on loopback, the real datagate binary, real clients.
package integration
