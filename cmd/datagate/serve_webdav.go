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
	addr, stop, err := serveHTTP(env, httpListener{
		name: "webdav", addr: cfg.Listen.WebDAV, certFile: wc.TLSCert, keyFile: wc.TLSKey,
		readHeaderTimeout: 10 * time.Second,
	}, srv)
	if err != nil {
		return nil, err
	}
	env.log.Info("WebDAV", "addr", addr, "users", len(cfg.Users))
	return stop, nil
}
