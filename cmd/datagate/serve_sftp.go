package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/gliderlabs/ssh"

	sftpgw "github.com/datagate/datagate/gateway/sftp"
	"github.com/datagate/datagate/views"
)

// startSFTP runs the SFTP/SCP front-end on listen.sftp.
func startSFTP(ctx context.Context, env *serveEnv) (func(context.Context) error, error) {
	cfg := env.cfg
	if cfg.Listen.SFTP == "" {
		return nil, nil
	}
	// Accounts (keys parsed once per configuration) and trees come from
	// the live configuration at each login and session start (reload.go).
	sc := cfg.SFTP
	srv, err := sftpgw.New(sftpgw.Options{
		Dir: cfg.Data,
		Account: func(user string) (sftpgw.Account, bool) {
			a, ok := env.now().accounts[user]
			return a, ok
		},
		Tree:               func(user string) *views.Tree { return env.now().sftpTree(env.app, user) },
		Logger:             env.log,
		Audit:              env.app.views.Audit(), // failed logins (serve_audit.go)
		Metrics:            env.app.metrics.SFTP(),
		MaxAuthTries:       sc.MaxAuthTries,
		LoginGraceTime:     time.Duration(sc.LoginGraceTime),
		IdleTimeout:        time.Duration(sc.IdleTimeout),
		MaxSessionsPerUser: sc.MaxSessionsPerUser,
		MaxHandles:         sc.MaxHandles,
		PenaltyFailures:    sc.PenaltyFailures,
		PenaltyTime:        time.Duration(sc.PenaltyTime),
		Ciphers:            sc.Ciphers,
	})
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", cfg.Listen.SFTP)
	if err != nil {
		return nil, fmt.Errorf("sftp listener %s (listen.sftp): %w", cfg.Listen.SFTP, err)
	}
	l = limitListen(l, "sftp", maxConns, maxConnsPerAddr, env.log)
	env.log.Info("SFTP/SCP", "addr", l.Addr().String(), "users", len(env.now().accounts))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, ssh.ErrServerClosed) {
			env.log.Error("sftp listener failed", "err", err)
		}
	}()
	return func(ctx context.Context) error {
		err := srv.Shutdown(ctx)
		<-done
		return err
	}, nil
}
