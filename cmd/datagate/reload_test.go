package main

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/datagate/datagate/cmd/datagate/config"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/views/audittest"
)

// reloadEnv is a real app opened from a configuration file that the test
// rewrites between reloads.
type reloadEnv struct {
	dir, file string
	env       *serveEnv
	logs      *audittest.Log
}

func newReloadEnv(t *testing.T, yaml string) *reloadEnv {
	t.Helper()
	r := &reloadEnv{dir: t.TempDir(), logs: &audittest.Log{}}
	os.Mkdir(filepath.Join(r.dir, "src"), 0o755) // a provider's root is not created
	r.file = filepath.Join(r.dir, "datagate.yaml")
	r.write(t, yaml)
	load := func() (*config.Config, error) { return config.Load(r.file) }
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(r.logs, nil))
	a, err := openApp(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if err := a.startLive(cfg, load); err != nil {
		t.Fatal(err)
	}
	r.env = &serveEnv{app: a, cfg: cfg, log: log}
	return r
}

func (r *reloadEnv) write(t *testing.T, yaml string) {
	t.Helper()
	yaml = strings.ReplaceAll(yaml, "$DIR", r.dir)
	if err := os.WriteFile(r.file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (r *reloadEnv) reload(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return r.env.reload(ctx)
}

const reloadBase = `
data: $DIR/var
listen: {admin: ""}
providers:
  src: {type: local, root: $DIR/src}
views:
  all: {path: "{name}"}
  kept: {path: "k/{name}"}
prefetch:
  - {view: kept, priority: high}
users:
  alice:
    s3_keys: [{id: AKALICE, secret: alice-secret-1}]
    views: {all: rw}
  bob:
    views: {all: r}
`

func TestReloadAppliesUsersViewsProviders(t *testing.T) {
	r := newReloadEnv(t, reloadBase)
	ctx := context.Background()
	os.MkdirAll(filepath.Join(r.dir, "src"), 0o755)
	os.WriteFile(filepath.Join(r.dir, "src", "f"), []byte("hello"), 0o644)
	if _, err := r.env.app.store.Register(ctx, []*fs.Object{{Name: "f", Source: fs.Location{Provider: "src", Path: "f"}, Meta: map[string]string{"type": "obs"}}}); err != nil {
		t.Fatal(err)
	}
	if err := r.reload(t); err != nil {
		t.Fatalf("unchanged file: %v", err)
	}
	before := r.env.now()

	next := strings.NewReplacer(
		"alice-secret-1", "alice-secret-2",
		"  bob:\n    views: {all: r}", "  carol:\n    views: {bytype: r}",
		"  kept:", "  bytype: {path: \"{type}/{name}\"}\n  kept:",
		"  src: {type: local, root: $DIR/src}", "  other: {type: local, root: $DIR/src}",
	).Replace(reloadBase)
	r.write(t, next)
	if err := r.reload(t); err != nil {
		t.Fatal(err)
	}
	now := r.env.now()
	if now == before {
		t.Fatal("snapshot not swapped")
	}
	if _, ok := now.davTrees["bob"]; ok {
		t.Fatal("removed user still has a tree")
	}
	if k := now.s3Keys["AKALICE"]; k.Secret != "alice-secret-2" || k.User != "alice" {
		t.Fatal("key change not applied")
	}
	if _, ok := r.env.app.views.View("bytype"); !ok {
		t.Fatal("new view missing")
	}
	if _, ok := r.env.app.store.Provider("other"); !ok {
		t.Fatal("new provider missing")
	}
	if _, ok := r.env.app.store.Provider("src"); ok {
		t.Fatal("removed provider still there")
	}
	// The new view is back-filled in the background for carol.
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := r.env.app.views.WaitRebuilt(wctx); err != nil {
		t.Fatal(err)
	}
	fi, err := now.davTrees["carol"].Stat(ctx, "obs/f")
	if err != nil {
		t.Fatalf("new user in the new view: %v", err)
	}
	// Its provider is gone: the object stays and fails to open, saying why.
	if _, err := now.davTrees["carol"].Open(ctx, "obs/f"); fs.KindOf(err) != fs.Unavailable || !strings.Contains(err.Error(), `"src"`) {
		t.Fatalf("object of a removed provider: %v", err)
	}
	_ = fi
	// Operator commands run by the server see the new users too.
	req := httptest.NewRequest("POST", "/api/v1/run", strings.NewReader(`{"args":["ls","--user","carol","/obs"]}`))
	rec := httptest.NewRecorder()
	cliHandler(r.env.app, r.env.cfg, r.env).ServeHTTP(rec, req)
	if !strings.Contains(rec.Body.String(), "f") || strings.Contains(rec.Body.String(), `"error"`) {
		t.Fatalf("datagate ls through the server after a reload: %s", rec.Body)
	}
	logs := r.logs.String()
	if !strings.Contains(logs, "configuration reloaded") || !strings.Contains(logs, "users +carol -bob ~alice(s3_keys)") {
		t.Fatalf("no change log:\n%s", logs)
	}
	if strings.Contains(logs, "alice-secret") {
		t.Fatal("a secret was logged")
	}
}

func TestReloadRefusesAndKeepsTheOld(t *testing.T) {
	for _, c := range []struct {
		name, yaml, why string
	}{
		{"syntax", reloadBase + "users: [\n", "line"},
		{"unknown view", strings.Replace(reloadBase, "views: {all: r}", "views: {nope: r}", 1), "users.bob.views.nope: no such view"},
		{"unknown key", reloadBase + "bogus: 1\n", `unknown key "bogus"`},
		{"listener", strings.Replace(reloadBase, `admin: ""`, `admin: "127.0.0.1:0"`, 1), "listen cannot change while the server runs"},
		{"data", strings.Replace(reloadBase, "data: $DIR/var", "data: $DIR/var2", 1), "data cannot change"},
		{"prefetch view", strings.Replace(reloadBase, `kept: {path: "k/{name}"}`, `kept: {path: "k2/{name}"}`, 1), "views.kept: named in prefetch"},
		{"bad provider", strings.Replace(reloadBase, "type: local, root: $DIR/src", "type: local", 1), "providers.src"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newReloadEnv(t, reloadBase)
			before := r.env.now()
			r.write(t, c.yaml)
			err := r.reload(t)
			if err == nil || !strings.Contains(err.Error(), c.why) || fs.KindOf(err) != fs.Invalid {
				t.Fatalf("got %v, want a refusal naming %q", err, c.why)
			}
			if r.env.now() != before {
				t.Fatal("a refused configuration was applied")
			}
			if !strings.Contains(r.logs.String(), "configuration reload refused") {
				t.Fatalf("refusal not logged:\n%s", r.logs.String())
			}
			if _, ok := r.env.app.store.Provider("src"); !ok {
				t.Fatal("providers changed")
			}
		})
	}
}

var _ io.Writer = (*audittest.Log)(nil)
