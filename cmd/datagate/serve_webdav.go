package main

import (
	"context"
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
	locks, err := webdavgw.NewLockStore(env.app.store.Index().DB(), webdavgw.LockOptions{
		MaxTimeout: time.Duration(wc.MaxLockTime), Logger: env.log, Sync: env.app.store.Index().Sync,
	})
	if err != nil {
		return nil, err
	}
	// Users, passwords and trees (one per user, made once per
	// configuration) come from the live configuration on every request,
	// so a reload applies to the next request (reload.go).
	srv, err := webdavgw.New(webdavgw.Options{
		PasswordHash:    func(user string) ([]byte, bool) { return env.now().passwordHash(user) },
		Tree:            func(user string) *views.Tree { return env.now().davTrees[user] },
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
	addr, stop, err := serveHTTP(env, httpListener{
		name: "webdav", addr: cfg.Listen.WebDAV, certFile: wc.TLSCert, keyFile: wc.TLSKey,
		readHeaderTimeout: 10 * time.Second,
	}, srv)
	if err != nil {
		return nil, err
	}
	env.log.Info("WebDAV", "addr", addr, "users", len(env.now().cfg.Users))
	return stop, nil
}
