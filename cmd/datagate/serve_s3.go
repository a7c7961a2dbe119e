package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	gws3 "github.com/datagate/datagate/gateway/s3"
	"github.com/datagate/datagate/views"
)

// startS3 serves the S3 API on listen.s3, with the users' s3_keys.
func startS3(ctx context.Context, env *serveEnv) (func(context.Context) error, error) {
	cfg := env.cfg
	if cfg.Listen.S3 == "" {
		return nil, nil
	}
	sc := cfg.S3
	if (sc.TLSCert == "") != (sc.TLSKey == "") {
		return nil, errors.New("s3: tls_cert and tls_key go together")
	}
	users := make(map[string]views.Profile, len(cfg.Users))
	keys := map[string]gws3.Key{}
	for name, u := range cfg.Users {
		users[name] = u.Profile()
		for _, k := range u.S3Keys {
			keys[k.ID] = gws3.Key{Secret: k.Secret, User: name}
		}
	}
	srv, err := gws3.New(gws3.Options{
		Store: env.app.store, Views: env.app.views, Users: users, Keys: keys,
		Region: sc.Region, Domain: sc.Domain,
		UploadDir: filepath.Join(cfg.Data, "s3-uploads"), UploadMaxAge: time.Duration(sc.UploadMaxAge),
		StatfsDir: cfg.Data, Logger: env.log.With("frontend", "s3"),
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen.S3)
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("s3 listener %s: %w", cfg.Listen.S3, err)
	}
	scheme := "http"
	if sc.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(sc.TLSCert, sc.TLSKey)
		if err != nil {
			ln.Close()
			srv.Close()
			return nil, fmt.Errorf("s3: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(env.log.Handler(), slog.LevelWarn)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			env.log.Error("s3 listener failed", "err", err)
		}
	}()
	env.log.Info("s3 API", "addr", scheme+"://"+ln.Addr().String(), "users_with_keys", len(keys))
	return func(ctx context.Context) error {
		err := hs.Shutdown(ctx)
		<-done
		return errors.Join(err, srv.Close())
	}, nil
}
