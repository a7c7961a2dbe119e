package views

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/datagate/datagate/fs"
)

// Reconfigure swaps the views at once and puts the path index right in
// the background while writers keep registering, updating and deleting;
// afterwards the index is exactly what the objects derive, the trees
// show it, and a restart with the same definitions rebuilds nothing.
func TestReconfigureRebuildsWhileWriting(t *testing.T) {
	defer func(g time.Duration) { rebuildGrace = g }(rebuildGrace)
	rebuildGrace = 0 // the fence, not a grace period, keeps stale keys out
	before := map[string]Def{
		"keep": {Path: "{a}/{name}"},
		"edit": {Path: "{a}/{b}/{name}"},
		"gone": {Path: "{b}/{name}"},
		"eq":   {Path: "{b}/{name}", Filter: "a = 1"},
	}
	e := newEnv(t, before)
	t.Cleanup(func() { e.set.Close() })
	var mu sync.Mutex
	var ids []fs.ID
	add := func(i int) {
		o := e.register(t, fmt.Sprintf("f%d", i), map[string]string{"a": fmt.Sprint(i % 3), "b": fmt.Sprint(i % 5)})
		mu.Lock()
		ids = append(ids, o.ID)
		mu.Unlock()
	}
	for i := range 600 {
		add(i)
	}
	// A directory marker in the view that goes.
	if err := e.tree("u", map[string]Rights{"gone": All, "keep": All}).Mkdir(ctxT(t), "gone/empty-dir"); err != nil {
		t.Fatal(err)
	}

	// Writers during the swap and the rebuild.
	ctx, stop := context.WithCancel(ctxT(t))
	var wg sync.WaitGroup
	var n atomic.Int64
	n.Store(1000)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				add(int(n.Add(1)))
				mu.Lock()
				id := ids[(i*7+w)%len(ids)]
				mu.Unlock()
				_, err := e.st.Update(ctx, id, func(o *fs.Object) error { o.Meta["a"] = fmt.Sprint(i % 4); return nil })
				if err != nil && fs.KindOf(err) != fs.NotExist && ctx.Err() == nil {
					t.Error(err)
				}
				if i%5 == 0 {
					e.st.Delete(ctx, id)
				}
			}
		}()
	}
	after := map[string]Def{
		"keep": {Path: "{a}/{name}"},
		"edit": {Path: "{b}/{a}/{name}", Filter: "a != 0"},
		"eq":   {Path: "x/{b}/{name}", Filter: "a = 2"},
		"new":  {Path: "all/{name}"},
	}
	time.Sleep(50 * time.Millisecond)
	changed, err := e.set.Reconfigure(ctxT(t), after)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(changed) != "[edit eq gone new]" {
		t.Fatalf("changed %v", changed)
	}
	if _, ok := e.set.View("new"); !ok {
		t.Fatal("new view not visible at once")
	}
	if _, ok := e.set.View("gone"); ok {
		t.Fatal("removed view still visible")
	}
	time.Sleep(100 * time.Millisecond)
	stop()
	wg.Wait()
	if err := e.set.WaitRebuilt(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if r := e.set.Rebuilding(); r != nil {
		t.Fatalf("still rebuilding %v", r)
	}
	objs := current(t, e, ids)
	checkIndex(t, e, objs)
	all := map[string]Rights{"keep": Read, "edit": Read, "eq": Read, "new": Read}
	checkTree(t, e, NewTree(TreeOptions{Set: e.set, Store: e.st, User: "u", Profile: Profile{Views: all}, ViewDirs: true}), objs)

	// The definitions are saved: a restart with them rebuilds nothing.
	have, err := loadDefs(e.st.Index().DB())
	if err != nil {
		t.Fatal(err)
	}
	if want := configuredDefs(e.set.cur.Load()); !maps.Equal(have, want) {
		t.Fatalf("saved definitions %v, want %v", have, want)
	}
}

func TestReconfigureRefusesBadDefinitions(t *testing.T) {
	e := newEnv(t, map[string]Def{"a": {Path: "{name}"}})
	t.Cleanup(func() { e.set.Close() })
	_, err := e.set.Reconfigure(ctxT(t), map[string]Def{"a": {Path: "{name}"}, "b": {Path: "{unclosed"}})
	if fs.KindOf(err) != fs.Invalid {
		t.Fatalf("bad template: %v", err)
	}
	if _, ok := e.set.View("b"); ok || len(e.set.Views()) != 1 {
		t.Fatal("a refused reconfiguration changed the set")
	}
	changed, err := e.set.Reconfigure(ctxT(t), map[string]Def{"a": {Path: "{name}"}})
	if err != nil || changed != nil {
		t.Fatalf("same definitions: %v, %v", changed, err)
	}
}

// A configured view hides a runtime view of its name; removing it from
// the configuration brings the runtime view back, its entries rebuilt.
func TestReconfigureRuntimeViews(t *testing.T) {
	defer func(g time.Duration) { rebuildGrace = g }(rebuildGrace)
	rebuildGrace = time.Millisecond
	e := newEnv(t, map[string]Def{"all": {Path: "{name}"}})
	t.Cleanup(func() { e.set.Close() })
	o := e.register(t, "x", map[string]string{"k": "v"})
	if _, err := e.set.CreateView(ctxT(t), "rt", Def{Path: "{k}/{name}", Filter: "k = v"}, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.set.Reconfigure(ctxT(t), map[string]Def{"all": {Path: "{name}"}, "rt": {Path: "c/{name}"}}); err != nil {
		t.Fatal(err)
	}
	if v, _ := e.set.View("rt"); v == nil || v.runtime {
		t.Fatal("the configured view does not hide the runtime one")
	}
	e.set.WaitRebuilt(ctxT(t))
	checkIndex(t, e, current(t, e, []fs.ID{o.ID}))
	if _, err := e.set.Reconfigure(ctxT(t), map[string]Def{"all": {Path: "{name}"}}); err != nil {
		t.Fatal(err)
	}
	if v, _ := e.set.View("rt"); v == nil || !v.runtime || v.owner != "alice" {
		t.Fatal("the runtime view did not come back")
	}
	e.set.WaitRebuilt(ctxT(t))
	checkIndex(t, e, current(t, e, []fs.ID{o.ID}))
	if got := names(t, e.tree("alice", nil), "v", 10); fmt.Sprint(got) != "[x]" {
		t.Fatalf("runtime view lists %v", got)
	}
}
