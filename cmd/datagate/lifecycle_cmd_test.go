package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/datagate/datagate/cmd/datagate/config"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/gateway/admin"
	"github.com/datagate/datagate/views"
)

func TestLifecycleConfig(t *testing.T) {
	for _, c := range []struct {
		yaml, err string
	}{
		{"retention: {default: 7d, providers: {local: 2d}}\ngc: {interval: 30s, batch: 500, delete_at_source: [local]}", ""},
		{"retention: {providers: {mars: 2d}}", "no such provider"},
		{"gc: {delete_at_source: [mars]}", "no such provider"},
		{"gc: {batch: -1}", "gc.batch"},
		{"gc: {interval: 10ms}", "gc.interval"},
		{"gc: {every: 1m}", `unknown key "every"`},
		{"retention: {default: 7d, per_view: {}}", `unknown key "per_view"`},
	} {
		p := filepath.Join(t.TempDir(), "c.yaml")
		os.WriteFile(p, []byte(c.yaml), 0o600)
		cfg, err := config.Load(p)
		if c.err == "" {
			if err != nil {
				t.Fatalf("%q: %v", c.yaml, err)
			}
			if cfg.Retention.For("local") != 48*time.Hour || cfg.Retention.For("") != 7*24*time.Hour ||
				cfg.GC.Batch != 500 || time.Duration(cfg.GC.Interval) != 30*time.Second || !deleteAtSource(cfg)["local"] {
				t.Fatalf("parsed %+v %+v", cfg.Retention, cfg.GC)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: error %v, want %q", c.yaml, err, c.err)
		}
	}
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	if retentionFunc(cfg, nil) != nil || cfg.GC.Batch != 1000 || time.Duration(cfg.GC.Interval) != time.Minute {
		t.Fatalf("defaults: %+v", cfg.GC)
	}
}

// fsck and verify through the CLI: clean, damaged, repaired, and the exit
// status says whether damage remains.
func TestFsckVerifyCommands(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "var")
	src := filepath.Join(dir, "a.bin")
	os.WriteFile(src, []byte("some content worth keeping"), 0o644)
	out, err := runCmd(t, "", "--data", data, "put", src)
	if err != nil {
		t.Fatal(out, err)
	}
	id := strings.Fields(out)[0]
	if out, err := runCmd(t, "", "--data", data, "fsck"); err != nil || !strings.Contains(out, "0 problems") {
		t.Fatalf("fsck of a sound store: %s %v", out, err)
	}
	if out, err := runCmd(t, "", "--data", data, "verify"); err != nil || !strings.Contains(out, "1 objects") {
		t.Fatalf("verify of a sound store: %s %v", out, err)
	}

	orphan := filepath.Join(data, "objects", "zz", "01M80XQE6JDFWQ36ZTP6EKGAZZ")
	os.MkdirAll(filepath.Dir(orphan), 0o755)
	os.WriteFile(orphan, []byte("left by a crash"), 0o644)
	out, err = runCmd(t, "", "--data", data, "fsck")
	if err == nil || !strings.Contains(out, "no object references") || !strings.Contains(err.Error(), "not repaired") {
		t.Fatalf("fsck with an orphan: %s %v", out, err)
	}
	if out, err := runCmd(t, "", "--data", data, "fsck", "--repair"); err != nil || !strings.Contains(out, "1 repaired, 0 not repaired") {
		t.Fatalf("fsck --repair: %s %v", out, err)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Fatal("orphan still there")
	}

	stored := filepath.Join(data, "objects", id[24:26], id)
	b, _ := os.ReadFile(stored)
	b[3] ^= 1
	os.WriteFile(stored, b, 0o644)
	out, err = runCmd(t, "", "--data", data, "verify", "--repair")
	if err == nil || !strings.Contains(out, "does not match") || !strings.Contains(out, "1 not repaired") {
		t.Fatalf("verify of a corrupt stored file: %s %v", out, err)
	}
	if exitCode(err) == 0 {
		t.Fatal("exit status 0 with damage left")
	}
}

// serve runs the collector (objects pushed under a 1s retention vanish),
// and fsck/verify refuse to run beside it.
func TestServeCollectsAndChecksRefuse(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "c.yaml")
	yaml := "data: " + filepath.Join(dir, "var") + `
listen: {admin: ""}
retention: {default: 1s}
gc: {interval: 1s}
log: {level: warn}
`
	os.WriteFile(cfgFile, []byte(yaml), 0o600)
	g := &globals{configFile: cfgFile}
	cfg, log, err := g.load()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, log, nil) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop")
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := admin.Dial(ctx, socketPath(cfg))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not answering: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range []string{"fsck", "verify"} {
		if out, err := runCmd(t, "", "--config", cfgFile, c); err == nil || !strings.Contains(err.Error(), "server is running") {
			t.Fatalf("%s beside a server: %s %v", c, out, err)
		}
	}
	src := filepath.Join(dir, "short-lived")
	os.WriteFile(src, []byte("gone soon"), 0o644)
	out, err := runCmd(t, "", "--config", cfgFile, "put", src)
	if err != nil {
		t.Fatal(out, err)
	}
	id := strings.Fields(out)[0]
	for {
		_, err := runCmd(t, "", "--config", cfgFile, "stat", id)
		if fs.KindOf(err) == fs.NotExist || (err != nil && strings.Contains(err.Error(), "not exist")) {
			break
		}
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatalf("object not collected: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Per-view retention: an object in a listed view keeps the longest of its
// views' retentions (0, for ever, wins); others fall back to their
// provider's, then the default.
func TestRetentionPerView(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(p, []byte(`
views:
  obs: {path: "{date}/{name}", filter: "type=obs"}
  recent: {path: "{name}", filter: "date^=2026"}
  keep: {path: "{name}", filter: "keep=yes"}
retention:
  default: 7d
  providers: {local: 2d}
  views: {obs: 30d, recent: 1d, keep: 0}
`), 0o600)
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	set, err := views.NewSet(cfg.Views, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := retentionFunc(cfg, set)
	obj := func(provider string, meta map[string]string) *fs.Object {
		return &fs.Object{Name: "n", Meta: meta, Source: fs.Location{Provider: provider}}
	}
	const day = 24 * time.Hour
	for _, c := range []struct {
		o    *fs.Object
		want time.Duration
	}{
		{obj("local", map[string]string{"type": "obs", "date": "2026-12-06"}), 30 * day}, // obs and recent: the longest
		{obj("local", map[string]string{"type": "fc", "date": "2026-12-06"}), day},       // recent only
		{obj("local", map[string]string{"type": "obs", "date": "2026-12-06", "keep": "yes"}), 0},
		{obj("local", map[string]string{"type": "fc"}), 2 * day}, // no view: the provider's
		{obj("", map[string]string{"type": "fc"}), 7 * day},      // pushed, no view: the default
	} {
		if got := f(c.o); got != c.want {
			t.Errorf("%v from %q: retention %v, want %v", c.o.Meta, c.o.Source.Provider, got, c.want)
		}
	}
	os.WriteFile(p, []byte("retention: {views: {nope: 1d}}\n"), 0o600)
	if _, err := config.Load(p); err == nil || !strings.Contains(err.Error(), "no such view") {
		t.Fatalf("unknown view: %v", err)
	}
}
