package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// httpListener describes one HTTP front-end's listener.
type httpListener struct {
	name              string // for messages: "webdav", "s3"
	addr              string
	certFile, keyFile string // both or neither: TLS
	readHeaderTimeout time.Duration
}

// serveHTTP listens on l.addr (with TLS when configured; a bad certificate
// is an error now, so it stops the server from starting), serves h in the
// background, and returns the listening address and how to shut it down.
func serveHTTP(env *serveEnv, l httpListener, h http.Handler) (addr string, stop func(context.Context) error, err error) {
	if (l.certFile == "") != (l.keyFile == "") {
		return "", nil, fmt.Errorf("config: %s: tls_cert and tls_key go together", l.name)
	}
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return "", nil, fmt.Errorf("%s listener %s (listen.%s): %w", l.name, l.addr, l.name, err)
	}
	ln = limitListen(ln, l.name, maxConns, maxConnsPerAddr, env.log)
	scheme := "http"
	if l.certFile != "" {
		cert, err := tls.LoadX509KeyPair(l.certFile, l.keyFile)
		if err != nil {
			ln.Close()
			return "", nil, fmt.Errorf("config: %s: %w", l.name, err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	hs := &http.Server{
		Handler:           env.app.metrics.HTTP(l.name, h), // serve_metrics.go
		ReadHeaderTimeout: l.readHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(env.log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			env.log.Error(l.name+" listener failed", "err", err)
		}
	}()
	return scheme + "://" + ln.Addr().String(), func(ctx context.Context) error {
		err := hs.Shutdown(ctx)
		<-done
		return err
	}, nil
}
