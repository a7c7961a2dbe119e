package main

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/datagate/datagate/cmd/datagate/config"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/store"
	"github.com/datagate/datagate/views"
)

// TestReplicationRules: prefetch per provider and per view, the better
// priority winning, and fetched copies kept at their prefetch priority.
func TestReplicationRules(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	yaml := `data: ` + dir + `
providers:
  mars: {type: local, root: ` + dir + `}
  feed: {type: local, root: ` + dir + `}
views:
  obs: {path: "{name}", filter: "type=obs"}
stores:
  - {name: second, type: local, root: ` + dir + `/second}
replicas: 2
keep_fetched: true
prefetch:
  - {provider: mars, priority: low}
  - {view: obs, priority: high}
`
	if err := config.Parse(strings.NewReader(yaml), cfg); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	vs, err := views.NewSet(cfg.Views, log)
	if err != nil {
		t.Fatal(err)
	}
	rep, closers, err := replication(cfg, vs, log)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range closers {
		defer c.Close()
	}
	if len(rep.Stores) != 1 || rep.Stores[0].Name != "second" || rep.Replicas != 2 || !rep.KeepFetched || rep.Signature == "" {
		t.Fatalf("replication options: %+v", rep)
	}
	obj := func(prov, typ string) *fs.Object {
		return &fs.Object{Name: "x", Source: fs.Location{Provider: prov, Path: "x"}, Meta: map[string]string{"type": typ}}
	}
	for _, c := range []struct {
		o    *fs.Object
		ok   bool
		prio store.Priority
	}{
		{obj("mars", "fc"), true, store.Low},
		{obj("mars", "obs"), true, store.High}, // the view's better priority wins
		{obj("feed", "obs"), true, store.High},
		{obj("feed", "fc"), false, 0},
	} {
		ok, prio := rep.Prefetch(c.o)
		if ok != c.ok || (ok && prio != c.prio) {
			t.Errorf("%s/%s: prefetch %v %v, want %v %v", c.o.Source.Provider, c.o.Meta["type"], ok, prio, c.ok, c.prio)
		}
	}
	if p := rep.Priority(&fs.Object{State: fs.StateStored}); p != store.High {
		t.Errorf("pushed object replicated at %v", p)
	}
	if p := rep.Priority(obj("feed", "fc")); p != store.Low {
		t.Errorf("fetched object of no prefetch rule replicated at %v", p)
	}
}
