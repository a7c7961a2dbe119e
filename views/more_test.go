package views

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datagate/datagate/fs"
)

// Push through one view, read through every other view the object falls
// in, for random views and metadata.
func TestPushOneViewReadAnother(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	defs := map[string]Def{
		"a": {Path: "{a}/{b}/{name}"},
		"b": {Path: "{b}/{a}/{name}", Filter: "a in (1, 2, k1)"},
		"c": {Path: "all/{a}-{b}/{name}"},
		"u": {Path: "u/{path...}", Set: map[string]string{"a": "1", "b": "k1"}},
	}
	e := newEnv(t, defs)
	tr := NewTree(TreeOptions{Set: e.set, Store: e.st, User: "u", Profile: Profile{Views: map[string]Rights{"a": All, "b": All, "c": All, "u": All}}})
	ctx := ctxT(t)
	pushed := 0
	for i := range 60 {
		src := e.set.Views()[r.IntN(4)]
		meta := randomMeta(r)
		name := fmt.Sprintf("f%d", i)
		p, ok := src.tmpl.Render(renderMeta(&fs.Object{Name: name, Meta: meta}))
		if !ok {
			continue
		}
		body := fmt.Sprintf("content %d %v", i, meta)
		info, err := tr.Create(ctx, src.Name()+"/"+p, strings.NewReader(body), CreateOptions{Size: -1})
		if k := fs.KindOf(err); k == fs.Invalid || k == fs.IsDir {
			// The path's metadata fails the view's filter, a template
			// ambiguity, or a directory already holds the path.
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		pushed++
		o, err := e.st.Get(ctx, info.ID())
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, v := range e.set.Views() {
			vp, ok := v.PathOf(o)
			if !ok {
				continue
			}
			fi, err := tr.Stat(ctx, v.Name()+"/"+vp)
			if err != nil {
				t.Fatalf("pushed via %s/%s, not at %s/%s: %v", src.Name(), p, v.Name(), vp, err)
			}
			if fi.ID() != o.ID {
				continue // a directory or a newer object holds that path
			}
			if got := string(readAll(t, tr, v.Name()+"/"+vp)); got != body {
				t.Fatalf("read via %s/%s: %q, want %q", v.Name(), vp, got, body)
			}
			seen++
		}
		if seen == 0 {
			t.Fatalf("pushed via %s/%s, readable nowhere", src.Name(), p)
		}
	}
	if pushed < 20 {
		t.Fatalf("only %d pushes succeeded", pushed)
	}
}

func TestChtimesStatfsAndPlainFile(t *testing.T) {
	e := newEnv(t, map[string]Def{"v": {Path: "{d}/{name}"}})
	tr := e.tree("u", map[string]Rights{"v": All})
	ctx := ctxT(t)
	if _, err := tr.Create(ctx, "x/f", strings.NewReader("12345"), CreateOptions{Size: 5}); err != nil {
		t.Fatal(err)
	}
	when := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := tr.Chtimes(ctx, "x/f", when); err != nil {
		t.Fatal(err)
	}
	if fi, err := tr.Stat(ctx, "x/f"); err != nil || !fi.ModTime().Equal(when) || fi.Size() != 5 || fi.Mode() != 0o644 {
		t.Fatalf("after chtimes: %v %v %v", fi.ModTime(), fi.Mode(), err)
	}
	if err := tr.Mkdir(ctx, "y"); err != nil {
		t.Fatal(err)
	}
	if err := tr.Chtimes(ctx, "y", when); err != nil {
		t.Fatal(err)
	}
	page, err := tr.ReadDir(ctx, "/", "", 10)
	if err != nil || len(page) != 2 || !page[1].ModTime().Equal(when) || !page[1].IsDir() || !page[0].ModTime().IsZero() {
		t.Fatalf("listing: %v %v", page, err)
	}
	if err := tr.Chtimes(ctx, "x", when); err != nil {
		t.Fatalf("chtimes of an implied directory: %v", err)
	}
	f, err := tr.Open(ctx, "x/f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if pf, ok := f.File(); !ok || pf == nil {
		t.Fatal("pushed content has no plain file for sendfile")
	}
	b := make([]byte, 3)
	if n, err := f.ReadAt(b, 2); n != 3 || string(b) != "345" {
		t.Fatalf("ReadAt: %q %v", b, err)
	}
	if f.Stat().Size() != 5 || f.Size() != 5 {
		t.Fatal("size")
	}
	_, err = tr.Open(ctx, "x")
	wantKind(t, "open a directory", err, fs.IsDir)
	sf, err := tr.Statfs(ctx)
	if err != nil || sf.Blocks == 0 || sf.BlockSize == 0 {
		t.Fatalf("statfs: %+v %v", sf, err)
	}
}

// Concurrent uploads to one path and to many, with listings running:
// afterwards one object holds the shared path and the index equals a
// rebuild.
func TestConcurrentCreates(t *testing.T) {
	e := newEnv(t, map[string]Def{"v": {Path: "{d}/{name}"}, "w": {Path: "{name}"}})
	tr := e.tree("u", map[string]Rights{"v": All, "w": All})
	ctx := ctxT(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ids []fs.ID
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 15 {
				for _, p := range []string{"v/shared/f", fmt.Sprintf("v/d%d/f%d", g, i)} {
					info, err := tr.Create(ctx, p, strings.NewReader("x"), CreateOptions{Size: 1})
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					ids = append(ids, info.ID())
					mu.Unlock()
				}
				if _, err := tr.ReadDir(ctx, "v", "", 3); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	objs := current(t, e, ids)
	checkIndex(t, e, objs)
	checkTree(t, e, NewTree(TreeOptions{Set: e.set, Store: e.st, User: "u", Profile: Profile{Views: map[string]Rights{"v": All, "w": All}}, ViewDirs: true}), objs)
	if got := names(t, tr, "v/shared", 10); len(got) != 1 {
		t.Fatalf("shared: %v", got)
	}
}
