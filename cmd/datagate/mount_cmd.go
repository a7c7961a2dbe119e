package main

import (
	"context"
	"errors"
	"fmt"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/datagate/datagate/cmd/datagate/config"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/store"
	gwfuse "github.com/datagate/datagate/gateway/fuse"
	"github.com/datagate/datagate/views"
)

func newMountCmd(g *globals) *cobra.Command {
	var mc config.Mount
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "mount --user NAME MOUNTPOINT",
		Short: "Mount a user's virtual tree with FUSE, in the foreground",
		Long: `Mount what a user sees (their views, with their rights) at MOUNTPOINT,
until SIGINT or SIGTERM; then unmount cleanly (a busy mount is detached
lazily). The command owns the data directory while it runs: when a server
already does, mount through it instead (serve --mount NAME:MOUNTPOINT, or
mounts: in its configuration).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if mc.User == "" {
				return fs.E(fs.Invalid, "mount", "", errors.New("--user is required"))
			}
			mc.Path, mc.Timeout = args[0], config.Duration(timeout)
			cfg, log, err := g.load()
			if err != nil {
				return err
			}
			warnReadableSecrets(g.configFile, cfg, log)
			if _, ok := cfg.Users[mc.User]; !ok {
				// Not CheckMounts' "mounts[0].user": the user typed no mounts: entry.
				return fs.E(fs.NotExist, "mount --user", mc.User, errors.New("no such user in the configuration"))
			}
			cfg.Mounts = []config.Mount{mc}
			if err := cfg.CheckMounts(); err != nil {
				return fs.E(fs.Invalid, "mount", mc.Path, err)
			}
			// A hangup (the terminal closed, the ssh session dropped) ends
			// the mount as Ctrl-C does: its default action killed the
			// process and left "transport endpoint is not connected".
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGHUP)
			defer stop()
			a, err := openApp(ctx, cfg, log)
			if errors.Is(err, store.ErrLocked) {
				abs, _ := filepath.Abs(mc.Path)
				// Not the store's advice to go through the socket: a mount cannot.
				return fmt.Errorf("%w: %s (pid %s, a server or a mount); mount through the server with\n  datagate serve --mount %s:%s\nor a mounts: entry in its configuration (user: %s, path: %s)", store.ErrLocked, cfg.Data, lockOwner(cfg.Data), mc.User, abs, mc.User, abs)
			}
			if err != nil {
				return err
			}
			defer a.Close()
			closeAudit, err := openAudit(cfg, a.views, log) // serve_audit.go
			if err != nil {
				return err
			}
			defer closeAudit()
			u := cfg.Users[mc.User]
			tree := views.NewTree(views.TreeOptions{Set: a.views, Store: a.store, User: mc.User, Profile: u.Profile(), StatfsDir: cfg.Data})
			w := views.Watch(a.views, a.store.Index(), 4096)
			defer w.Close()
			m, err := gwfuse.Mount(ctx, mc.Path, gwfuse.Options{
				Tree: tree, Set: a.views, Events: w.C, SpoolDir: filepath.Join(cfg.Data, "spool", "fuse"),
				ReadOnly: mc.ReadOnly, AllowOther: mc.AllowOther, OpTimeout: timeout, Logger: log,
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "datagate: %s's tree mounted at %s (Ctrl-C to unmount)\n", mc.User, m.Dir())
			ended := make(chan struct{})
			go func() { m.Wait(); close(ended) }()
			select {
			case <-ctx.Done():
			case <-ended:
				log.Info("unmounted from outside", "mount", m.Dir())
			}
			uctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return m.Unmount(uctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&mc.User, "user", "", "the user whose tree to mount")
	f.BoolVar(&mc.ReadOnly, "read-only", false, "mount read-only whatever the user's rights")
	f.BoolVar(&mc.AllowOther, "allow-other", false, "let other local users in (FUSE allow_other)")
	f.DurationVar(&timeout, "timeout", 0, "bound on each call into the store (default 1m)")
	return cmd
}
