package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	sftpgw "github.com/datagate/datagate/gateway/sftp"
	"github.com/datagate/datagate/views"
)

// startSFTP runs the SFTP/SCP front-end on listen.sftp.
func startSFTP(ctx context.Context, env *serveEnv) (func(context.Context) error, error) {
	cfg := env.cfg
	if cfg.Listen.SFTP == "" {
		return nil, nil
	}
	// Parse every user's keys once; the configuration was validated.
	accounts := make(map[string]sftpgw.Account, len(cfg.Users))
	for name, u := range cfg.Users {
		var a sftpgw.Account
		if u.PasswordHash != "" {
			a.PasswordHash = []byte(u.PasswordHash)
		}
		for i, line := range u.SSHKeys {
			k, _, _, _, err := gossh.ParseAuthorizedKey([]byte(line))
			if err != nil {
				return nil, fmt.Errorf("users.%s.ssh_keys[%d]: %w", name, i, err)
			}
			a.AuthorizedKeys = append(a.AuthorizedKeys, k)
		}
		accounts[name] = a
	}
	sc := cfg.SFTP
	srv, err := sftpgw.New(sftpgw.Options{
		Dir: cfg.Data,
		Account: func(user string) (sftpgw.Account, bool) {
			a, ok := accounts[user]
			return a, ok
		},
		Tree: func(user string) *views.Tree {
			return views.NewTree(views.TreeOptions{
				Set: env.app.views, Store: env.app.store, User: user,
				Profile: cfg.Users[user].Profile(), StatfsDir: cfg.Data,
			})
		},
		Logger:             env.log,
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
		return nil, fmt.Errorf("sftp listener %s: %w", cfg.Listen.SFTP, err)
	}
	env.log.Info("SFTP/SCP", "addr", l.Addr().String(), "users", len(accounts))
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
