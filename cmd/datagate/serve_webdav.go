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

	webdavgw "github.com/datagate/datagate/gateway/webdav"
	"github.com/datagate/datagate/views"
)

// startWebDAV runs the WebDAV front-end on listen.webdav.
func startWebDAV(ctx context.Context, env *serveEnv) (func(context.Context) error, error) {
	cfg := env.cfg
	if cfg.Listen.WebDAV == "" {
		return nil, nil
	}
	wc := cfg.WebDAV
	if (wc.TLSCert == "") != (wc.TLSKey == "") {
		return nil, errors.New("config: webdav: tls_cert and tls_key go together")
	}
	locks, err := webdavgw.NewLockStore(env.app.store.Index().DB(), webdavgw.LockOptions{
		MaxTimeout: time.Duration(wc.MaxLockTime), Logger: env.log,
	})
	if err != nil {
		return nil, err
	}
	// One Tree per user, made once: a Tree is safe for concurrent use and
	// sees views created at run time.
	trees := make(map[string]*views.Tree, len(cfg.Users))
	for name, u := range cfg.Users {
		trees[name] = views.NewTree(views.TreeOptions{
			Set: env.app.views, Store: env.app.store, User: name,
			Profile: u.Profile(), StatfsDir: cfg.Data,
		})
	}
	srv, err := webdavgw.New(webdavgw.Options{
		PasswordHash: func(user string) ([]byte, bool) {
			u, ok := cfg.Users[user]
			if !ok || u.PasswordHash == "" {
				return nil, false
			}
			return []byte(u.PasswordHash), true
		},
		Tree:            func(user string) *views.Tree { return trees[user] },
		Store:           env.app.store,
		Locks:           locks,
		Views:           env.app.views,
		Realm:           wc.Realm,
		CreateParents:   wc.CreateParents,
		MaxXMLBody:      int64(wc.MaxXMLBody),
		AuthCacheTTL:    time.Duration(wc.AuthCacheTTL),
		MaxAuthFailures: wc.MaxAuthFailures,
		AuthPenalty:     time.Duration(wc.AuthPenalty),
		Logger:          env.log,
	})
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", cfg.Listen.WebDAV)
	if err != nil {
		return nil, fmt.Errorf("webdav listener %s: %w", cfg.Listen.WebDAV, err)
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(env.log.Handler(), slog.LevelWarn),
	}
	useTLS := wc.TLSCert != ""
	if useTLS {
		// Loaded now, so a bad certificate stops the server from starting.
		cert, err := tls.LoadX509KeyPair(wc.TLSCert, wc.TLSKey)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("config: webdav: %w", err)
		}
		l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	env.log.Info("WebDAV", "listen", l.Addr().String(), "tls", useTLS, "users", len(cfg.Users))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			env.log.Error("webdav listener failed", "err", err)
		}
	}()
	return func(ctx context.Context) error {
		err := hs.Shutdown(ctx)
		<-done
		return err
	}, nil
}
