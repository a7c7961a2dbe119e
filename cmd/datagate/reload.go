package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	gossh "golang.org/x/crypto/ssh"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/cmd/datagate/config"
	"github.com/datagate/datagate/fs"
	gws3 "github.com/datagate/datagate/gateway/s3"
	sftpgw "github.com/datagate/datagate/gateway/sftp"
	"github.com/datagate/datagate/views"
)

// Reloading the configuration (SIGHUP, POST /api/v1/reload).
//
// The server re-reads the file it started with, with the same command
// line overrides (--data, --log-level, --mount), and validates it as at
// start. It refuses the new configuration, keeping the old one and
// saying why, when it does not load or when it changes a key a running
// server cannot apply (config.Live lists those it can: users, views,
// providers). Otherwise it swaps, in this order: the views (views.Set
// re-derives changed views' paths in the background), the providers
// (store.SetProviders), then the users, their credentials and rights,
// and the admin API's users (one atomic pointer to a liveSnapshot that
// every front-end's lookups read).
//
// What open sessions see:
//   - WebDAV and S3 authenticate and look the user's tree up on every
//     request: a request in flight finishes with what it started with,
//     the next one sees the new configuration; a removed user's next
//     request is refused (401/403).
//   - SFTP/SCP authenticate once per connection and take the user's tree
//     when a session starts: an open session keeps the rights it started
//     with until it ends; new connections (and new sessions on an open
//     connection) get the new ones. A removed user cannot log in again,
//     and a new session of theirs on a connection still open sees an
//     empty tree.
//   - A FUSE mount keeps the rights its user had when it was mounted,
//     until it is remounted (a restart); mounts: itself cannot change
//     live, and a reload that removes a mounted user is refused.
//   - A provider removed or changed: reads already fetching finish
//     through the old one (closed a minute later); objects registered
//     against a removed provider stay in the catalogue, and reading them
//     fails with an error naming the provider.

// liveConfig is the part of the configuration a reload swaps.
type liveConfig struct {
	load func() (*config.Config, error) // the file again, with the command line's overrides

	mu  sync.Mutex // one reload at a time
	cur atomic.Pointer[liveSnapshot]
}

// liveSnapshot is one configuration's users, ready for the front-ends'
// lookups. Immutable once stored.
type liveSnapshot struct {
	cfg      *config.Config
	davTrees map[string]*views.Tree // WebDAV, FUSE-style roots
	s3Trees  map[string]*views.Tree // one directory per view (buckets)
	s3Keys   map[string]gws3.Key
	accounts map[string]sftpgw.Account
}

// reloadSource returns how serve re-reads its configuration: as at
// start, with the same flags. From now until serve watches for it, a
// SIGHUP is ignored rather than fatal (its default action): opening a
// large store can take a while, and a service manager may send one.
func reloadSource(g *globals, mounts []string) func() (*config.Config, error) {
	signal.Ignore(syscall.SIGHUP)
	return func() (*config.Config, error) {
		cfg, _, err := g.load()
		if err != nil {
			return nil, err
		}
		if err := mountFlags(cfg, mounts); err != nil {
			return nil, err
		}
		return cfg, nil
	}
}

// startLive makes the app reloadable: its first snapshot is cfg's, and
// load re-reads the configuration. Call it once, before the front-ends
// start; every serveEnv of the app then shares the live configuration.
func (a *app) startLive(cfg *config.Config, load func() (*config.Config, error)) error {
	snap, err := newLiveSnapshot(a, cfg)
	if err != nil {
		return err
	}
	l := &liveConfig{load: load}
	l.cur.Store(snap)
	a.live = l
	return nil
}

// config returns the configuration in force: the start one, as reloaded.
func (e *serveEnv) config() *config.Config { return e.now().cfg }

// now returns the current snapshot of the live configuration.
func (e *serveEnv) now() *liveSnapshot {
	if e.app.live == nil {
		// An app never made reloadable (tests, commands that are not
		// serve): the start configuration, made afresh.
		snap, err := newLiveSnapshot(e.app, e.cfg)
		if err != nil {
			panic(err) // a validated configuration
		}
		return snap
	}
	return e.app.live.cur.Load()
}

func newLiveSnapshot(a *app, cfg *config.Config) (*liveSnapshot, error) {
	s := &liveSnapshot{
		cfg:      cfg,
		davTrees: make(map[string]*views.Tree, len(cfg.Users)),
		s3Trees:  make(map[string]*views.Tree, len(cfg.Users)),
		s3Keys:   map[string]gws3.Key{},
		accounts: make(map[string]sftpgw.Account, len(cfg.Users)),
	}
	for name, u := range cfg.Users {
		to := views.TreeOptions{Set: a.views, Store: a.store, User: name, Profile: u.Profile(), StatfsDir: cfg.Data}
		s.davTrees[name] = views.NewTree(to)
		to.ViewDirs = true
		s.s3Trees[name] = views.NewTree(to)
		for _, k := range u.S3Keys {
			s.s3Keys[k.ID] = gws3.Key{Secret: k.Secret, User: name}
		}
		var acc sftpgw.Account
		if u.PasswordHash != "" {
			acc.PasswordHash = []byte(u.PasswordHash)
		}
		for i, line := range u.SSHKeys {
			k, _, _, _, err := gossh.ParseAuthorizedKey([]byte(line))
			if err != nil {
				return nil, fmt.Errorf("users.%s.ssh_keys[%d]: %w", name, i, err)
			}
			acc.AuthorizedKeys = append(acc.AuthorizedKeys, k)
		}
		s.accounts[name] = acc
	}
	return s, nil
}

// passwordHash is WebDAV's lookup: the user's bcrypt hash, false for an
// unknown user or one without a password.
func (s *liveSnapshot) passwordHash(user string) ([]byte, bool) {
	u, ok := s.cfg.Users[user]
	if !ok || u.PasswordHash == "" {
		return nil, false
	}
	return []byte(u.PasswordHash), true
}

// sftpTree is the tree of a session starting now: an unknown user's (one
// removed while connected) sees nothing.
func (s *liveSnapshot) sftpTree(a *app, user string) *views.Tree {
	if t := s.davTrees[user]; t != nil {
		return t
	}
	return views.NewTree(views.TreeOptions{Set: a.views, Store: a.store, User: user, StatfsDir: s.cfg.Data})
}

// watchSIGHUP reloads the configuration on every SIGHUP until ctx ends or
// the returned function is called. The outcome is logged by reload.
func (e *serveEnv) watchSIGHUP(ctx context.Context) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				e.log.Info("SIGHUP: reloading the configuration")
				e.reload(ctx) // logs its outcome
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		cancel()
		<-done
	}
}

// reload re-reads and applies the configuration (see the top of this
// file). It returns nil once the new configuration is in force (views'
// paths may still be re-derived in the background), or the reason it was
// refused, an Invalid error; the old configuration then stays.
func (e *serveEnv) reload(ctx context.Context) error {
	refuse := func(err error) error {
		e.log.Warn("configuration reload refused; the running configuration stays", "err", err)
		return fs.E(fs.Invalid, "reload configuration", "", err)
	}
	l := e.app.live
	if l == nil || l.load == nil {
		return refuse(errors.New("this process cannot reload its configuration"))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := l.cur.Load()
	next, err := l.load()
	if err != nil {
		return refuse(err)
	}
	diff, fixed := config.Compare(cur.cfg, next)
	if len(fixed) > 0 {
		return refuse(&config.FixedError{Keys: fixed})
	}
	if err := checkReload(cur.cfg, next); err != nil {
		return refuse(err)
	}
	if diff.Empty() {
		e.log.Info("configuration reloaded: nothing changed")
		return nil
	}
	// Everything that can fail comes before the first swap.
	provs, closers, err := e.app.buildChanged(next, diff.Providers, e.log)
	if err != nil {
		return refuse(err)
	}
	snap, err := newLiveSnapshot(e.app, next)
	if err != nil {
		closeAll(closers)
		return refuse(err)
	}
	var rederive []string
	if len(diff.Views.Added)+len(diff.Views.Removed)+len(diff.Views.Changed) > 0 {
		// Parses as config validation did: fails only on a broken index.
		if rederive, err = e.app.views.Reconfigure(ctx, next.Views); err != nil {
			closeAll(closers)
			return refuse(err)
		}
	}
	e.app.swapProviders(next, provs, closers)
	l.cur.Store(snap)
	e.log.Info("configuration reloaded", "changes", diff.String())
	if len(rederive) > 0 {
		e.log.Info("re-deriving the paths of changed views in the background", "views", rederive)
	}
	for _, m := range next.Mounts {
		if slices.Contains(diff.Users.Changed, m.User) && !reflect.DeepEqual(cur.cfg.Users[m.User].Profile(), next.Users[m.User].Profile()) {
			e.log.Warn("a FUSE mount keeps the rights its user had when it was mounted until the server restarts", "mount", m.Path, "user", m.User)
		}
	}
	return nil
}

// checkReload makes the checks serve makes at start beyond config.Load,
// and refuses what the parts built once at start (prefetch rules, view
// retention) would get wrong.
func checkReload(old, next *config.Config) error {
	if len(next.Mounts) > 0 {
		if err := next.CheckMounts(); err != nil {
			return err
		}
	}
	pinned := map[string]string{}
	for _, p := range next.Prefetch {
		if p.View != "" {
			pinned[p.View] = "prefetch"
		}
	}
	for v := range next.Retention.Views {
		pinned[v] = "retention.views"
	}
	for _, v := range slices.Sorted(maps.Keys(pinned)) {
		if !reflect.DeepEqual(old.Views[v], next.Views[v]) {
			return fmt.Errorf("config: views.%s: named in %s, which is set at start: its definition cannot change while the server runs (restart to apply)", v, pinned[v])
		}
	}
	return nil
}

func closeAll(cs map[string]io.Closer) {
	for _, c := range cs {
		c.Close()
	}
}

// buildChanged builds the providers a reload adds or changes. On error
// nothing is left open.
func (a *app) buildChanged(cfg *config.Config, c config.Changes, log *slog.Logger) (map[string]backends.Provider, map[string]io.Closer, error) {
	provs := map[string]backends.Provider{}
	closers := map[string]io.Closer{}
	for _, name := range append(slices.Clone(c.Added), c.Changed...) {
		p, closer, err := buildProvider(name, cfg.Providers[name], log)
		if err != nil {
			closeAll(closers)
			return nil, nil, fmt.Errorf("config: providers.%s: %w", name, err)
		}
		provs[name] = p
		if closer != nil {
			closers[name] = closer
		}
	}
	return provs, closers, nil
}
