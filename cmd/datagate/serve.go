package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/datagate/datagate/cmd/datagate/config"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/store"
)

func newServeCmd(g *globals) *cobra.Command {
	var mounts []string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the server: the store and every configured front-end",
		Long: `Run the server: the store, the admin API (on listen.admin and on the
data directory's socket, through which the other commands then work), the
configured front-ends (listen:, mounts:, --mount), the collector, scheduled
acquisitions and replication, until SIGINT or SIGTERM, which stop it
gracefully. SIGHUP re-reads the configuration file; the log says what
changed, or why the new file was refused (the running one then stays).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := g.load()
			if err != nil {
				return err
			}
			if err := mountFlags(cfg, mounts); err != nil {
				return &fs.Error{Kind: fs.Invalid, Err: err} // a bad --mount: exit 2
			}
			// Before the store opens and the listeners start, not when
			// the mounts are made.
			if err := cfg.CheckMounts(); err != nil {
				return &fs.Error{Kind: fs.Invalid, Err: err}
			}
			warnReadableSecrets(g.configFile, cfg, log)
			return serve(cmd.Context(), cfg, log, reloadSource(g, mounts))
		},
	}
	cmd.Flags().StringArrayVar(&mounts, "mount", nil, "mount a user's tree with FUSE: NAME:MOUNTPOINT (repeatable; or mounts: in the config)")
	return cmd
}

// serve runs until ctx is cancelled (SIGINT/SIGTERM), then shuts the
// listeners down gracefully and closes the store. reload re-reads the
// configuration for SIGHUP and the API (reload.go).
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, reload func() (*config.Config, error)) error {
	a, err := openApp(ctx, cfg, log)
	if errors.Is(err, store.ErrLocked) {
		// Not the store's advice to run the command through the socket.
		return fmt.Errorf("%w: %s (pid %s); one process owns a data directory: stop that one first, or give this server its own (--data or data:)", store.ErrLocked, cfg.Data, lockOwner(cfg.Data))
	}
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.startLive(cfg, reload); err != nil { // reload.go
		return err
	}
	closeAudit, err := openAudit(cfg, a.views, log) // serve_audit.go
	if err != nil {
		return err
	}
	defer closeAudit()
	env := &serveEnv{app: a, cfg: cfg, log: log, admin: newAdminState()}
	defer startCollector(ctx, a.store, cfg, log, env.admin)() // stopped before the store closes
	// The admin API first, on the socket and listen.admin (serve_admin.go).
	errc := make(chan error, 2)
	stopAdmin, err := startAdmin(ctx, env, errc)
	if err != nil {
		return err
	}
	// Front-ends, each in its own serve_*.go file. A starter returns nil
	// when its listener is not configured.
	var stops []func(context.Context) error
	for _, start := range frontends() {
		stop, err := start(ctx, env)
		if err != nil {
			for _, s := range stops {
				s(context.Background())
			}
			stopAdmin(context.Background())
			return err
		}
		if stop != nil {
			stops = append(stops, stop)
		}
	}
	defer env.watchSIGHUP(ctx)()  // reload.go
	env.admin.started.Store(true) // ready (/readyz)
	// The absolute path: a relative data: is the working directory's, and
	// a service manager's is often / (data: ./var is then /var).
	data, _ := filepath.Abs(cfg.Data)
	log.Info("datagate serving", "data", data, "socket", socketPath(cfg), "providers", strings.Join(cfg.ProviderNames(), ","))

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-errc:
		log.Error("listener failed", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := stopAdmin(sctx); serr != nil {
		log.Warn("admin API shutdown", "err", serr)
	}
	for i := len(stops) - 1; i >= 0; i-- {
		if serr := stops[i](sctx); serr != nil {
			log.Warn("front-end shutdown", "err", serr)
		}
	}
	return err
}

// serveEnv is what a front-end starter gets: the opened app (store, views,
// users), the configuration and the logger.
type serveEnv struct {
	admin *adminState // jobs and readiness of the admin API (serve_admin.go)
	app   *app
	cfg   *config.Config
	log   *slog.Logger
}

// frontendStarter starts one front-end's listener(s) in the background and
// returns how to stop them gracefully, or nil, nil when not configured.
// Errors (a port in use, a bad certificate) stop the server from starting.
type frontendStarter func(ctx context.Context, env *serveEnv) (stop func(context.Context) error, err error)

// frontends lists the front-ends serve starts, in order.
func frontends() []frontendStarter {
	return []frontendStarter{
		startAcquisition,
		startS3,
		startSFTP,
		startFUSE,
		startWebDAV,
		startReplication,
		// Each front-end adds its starter here (serve_<name>.go).
	}
}

// adminToken returns the admin API token kept in the data directory,
// creating it on first start. The token itself is never logged.
func adminToken(dir string) (string, error) {
	p := filepath.Join(dir, "admin.token")
	if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return strings.TrimSpace(string(b)), nil
	}
	b := make([]byte, 24)
	rand.Read(b)
	tok := hex.EncodeToString(b)
	if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write admin token: %w", err)
	}
	return tok, nil
}

// lockOwner describes the owner of the data directory: the pid it wrote
// into its LOCK file and, on Linux, its command line ("4242: datagate put
// big.grib"), so that an operator sees whether a server, a mount or a
// long command holds it; "unknown" without a pid.
func lockOwner(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "LOCK"))
	pid := strings.TrimSpace(string(b))
	if _, perr := strconv.Atoi(pid); err != nil || perr != nil {
		return "unknown"
	}
	cl, err := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
	if err != nil || len(cl) == 0 {
		return pid
	}
	args := strings.Split(strings.TrimRight(string(cl), "\x00"), "\x00")
	args[0] = filepath.Base(args[0])
	return pid + ": " + strings.Join(args, " ")
}

// warnReadableSecrets warns when the configuration file holds secrets in
// clear and every local user may read it: datagate still starts (a
// refusal would stop a service over a mode), but the log says which keys
// and how to close it. Group read is left alone: a service's group (root
// owning the file, datagate's group reading it) is the usual setup.
func warnReadableSecrets(file string, cfg *config.Config, log *slog.Logger) {
	if file == "" {
		return
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm()&0o004 == 0 {
		return
	}
	if keys := cfg.Secrets(); len(keys) > 0 {
		log.Warn("the configuration file holds secrets and every local user may read it: chmod o-r it",
			"file", file, "mode", fmt.Sprintf("%04o", st.Mode().Perm()), "keys", strings.Join(keys, ","))
	}
}
