package main

import (
	"context"
	"errors"
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
	// Keys and trees come from the live configuration on every request
	// (reload.go).
	srv, err := gws3.New(gws3.Options{
		Store: env.app.store, Views: env.app.views,
		Tree: func(user string) *views.Tree { return env.now().s3Trees[user] },
		Key: func(id string) (gws3.Key, bool) {
			k, ok := env.now().s3Keys[id]
			return k, ok
		},
		Region: sc.Region, Domain: sc.Domain,
		UploadDir: filepath.Join(cfg.Data, "s3-uploads"), UploadMaxAge: time.Duration(sc.UploadMaxAge),
		StatfsDir: cfg.Data, Logger: env.log.With("frontend", "s3"),
	})
	if err != nil {
		return nil, err
	}
	addr, stop, err := serveHTTP(env, httpListener{
		name: "s3", addr: cfg.Listen.S3, certFile: sc.TLSCert, keyFile: sc.TLSKey,
		readHeaderTimeout: 30 * time.Second,
	}, srv)
	if err != nil {
		srv.Close()
		return nil, err
	}
	env.log.Info("s3 API", "addr", addr, "keys", len(env.now().s3Keys))
	return func(ctx context.Context) error {
		return errors.Join(stop(ctx), srv.Close())
	}, nil
}
