package views

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
)

var (
	propTemplates = []string{"{a}/{b}/{name}", "{b}/{name}", "x-{a}/{name}.dat", "u/{path...}", "{c}/{a}-{b}"}
	propFilters   = []string{"", "a in (1, 2)", "has(c)", `b ~ "k*"`, "a != 3", "a = 1 and has(b)"}
	propValues    = []string{"1", "2", "3", "k1", "k2", "x/y", "%", "", ".", "..", "é", "k 3"}
	propPaths     = []string{"f", "d1", "d1/f", "d1/d2/f", "d1/d2", "d3/g", "a//b", "d1/f2"}
	propNames     = []string{"f1", "f2", "f.dat", "g", "d1"}
)

func randomViews(r *rand.Rand) map[string]Def {
	defs := map[string]Def{}
	n := 2 + r.IntN(3)
	for i := range n {
		defs[fmt.Sprintf("v%d", i)] = Def{
			Path:   propTemplates[r.IntN(len(propTemplates))],
			Filter: propFilters[r.IntN(len(propFilters))],
		}
	}
	return defs
}

func randomMeta(r *rand.Rand) map[string]string {
	m := map[string]string{}
	for _, k := range []string{"a", "b", "c"} {
		if r.IntN(5) > 0 {
			m[k] = propValues[r.IntN(len(propValues))]
		}
	}
	if r.IntN(3) > 0 {
		m["path"] = propPaths[r.IntN(len(propPaths))]
	}
	return m
}

// model is the brute-force expectation for one view: file path -> newest
// id, and every directory (the root is "").
type model struct {
	files map[string]fs.ID
	dirs  map[string]bool
}

func buildModel(v *View, objs []*fs.Object) model {
	m := model{files: map[string]fs.ID{}, dirs: map[string]bool{"": true}}
	for _, o := range objs {
		if dir, ok := o.Meta[MetaDirPath]; ok {
			if o.Meta[MetaDirView] == v.Name() {
				for d := dir; d != "."; d = path.Dir(d) {
					m.dirs[d] = true
				}
			}
			continue
		}
		p, ok := v.PathOf(o)
		if !ok {
			continue
		}
		if cur, ok := m.files[p]; !ok || bytes.Compare(o.ID[:], cur[:]) > 0 {
			m.files[p] = o.ID
		}
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			m.dirs[d] = true
		}
	}
	for p := range m.files {
		if m.dirs[p] {
			delete(m.files, p) // a directory wins over a file of its name
		}
	}
	return m
}

// children returns the model's listing of dir: names, "/" after
// directories, sorted by name.
func (m model) children(dir string) []string {
	set := map[string]bool{}
	under := func(p string) (string, bool) {
		if dir == "" {
			return p, true
		}
		return strings.CutPrefix(p, dir+"/")
	}
	for p := range m.files {
		if rest, ok := under(p); ok && !strings.Contains(rest, "/") {
			set[rest] = true
		}
	}
	for d := range m.dirs {
		if rest, ok := under(d); ok && d != dir && rest != "" && !strings.Contains(rest, "/") {
			set[rest+"/"] = true
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return strings.TrimSuffix(out[i], "/") < strings.TrimSuffix(out[j], "/") })
	return out
}

// current returns the live objects among ids.
func current(t *testing.T, e *env, ids []fs.ID) []*fs.Object {
	var out []*fs.Object
	for _, id := range ids {
		o, err := e.st.Get(context.Background(), id)
		if fs.KindOf(err) == fs.NotExist {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

// checkIndex compares the path index with a rebuild from the objects.
func checkIndex(t *testing.T, e *env, objs []*fs.Object) {
	t.Helper()
	want := map[string]string{}
	for _, o := range objs {
		for _, d := range e.set.Derive(o) {
			want[string(d.Key)] = string(d.Value)
		}
	}
	got := map[string]string{}
	err := e.st.Index().Derived(ctxT(t), index.DerivedOptions{Prefix: []byte{keyView}}, func(k, v []byte) error {
		got[string(k)] = string(v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if gv, ok := got[k]; !ok || gv != v {
			t.Errorf("index lacks or differs at %q", k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("index has stale key %q", k)
		}
	}
}

// checkTree walks every view through a Tree and compares with the model.
func checkTree(t *testing.T, e *env, tr *Tree, objs []*fs.Object) {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 7))
	for _, v := range e.set.Views() {
		m := buildModel(v, objs)
		for d := range m.dirs {
			got := names(t, tr, v.Name()+"/"+d, 1+r.IntN(4))
			if want := m.children(d); !slices.Equal(got, want) {
				t.Fatalf("view %s (%s, filter %q) dir %q:\n got %q\nwant %q", v.Name(), v.Def().Path, v.Def().Filter, d, got, want)
			}
			fi, err := tr.Stat(ctxT(t), v.Name()+"/"+d)
			if err != nil || !fi.IsDir() {
				t.Fatalf("stat dir %s/%s: %v", v.Name(), d, err)
			}
		}
		for p, id := range m.files {
			fi, err := tr.Stat(ctxT(t), v.Name()+"/"+p)
			if err != nil {
				t.Fatalf("stat %s/%s: %v", v.Name(), p, err)
			}
			if fi.IsDir() || fi.ID() != id {
				t.Fatalf("stat %s/%s: got id %s dir %v, want %s", v.Name(), p, fi.ID(), fi.IsDir(), id)
			}
		}
	}
}

func TestPropertyPathsListingsAndRebuild(t *testing.T) {
	for seed := uint64(1); seed <= 12; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 99))
			defs := randomViews(r)
			e := newEnv(t, defs)
			all := map[string]Rights{}
			for n := range defs {
				all[n] = All
			}
			tr := NewTree(TreeOptions{Set: e.set, Store: e.st, User: "root", Profile: Profile{Views: all}, ViewDirs: true})
			var ids []fs.ID
			for i := range 60 {
				o := e.register(t, propNames[r.IntN(len(propNames))], randomMeta(r))
				_ = i
				ids = append(ids, o.ID)
			}
			objs := current(t, e, ids)
			checkIndex(t, e, objs)
			checkTree(t, e, tr, objs)

			// Random renames, deletes, mkdirs and uploads through the tree.
			ctx := ctxT(t)
			views := e.set.Views()
			okOps := map[string]int{}
			for range 100 {
				v := views[r.IntN(len(views))]
				m := buildModel(v, current(t, e, ids))
				var files, dirs []string
				for p := range m.files {
					files = append(files, p)
				}
				for d := range m.dirs {
					if d != "" {
						dirs = append(dirs, d)
					}
				}
				sort.Strings(files)
				sort.Strings(dirs)
				switch op := r.IntN(5); {
				case op == 0 && len(files) > 0:
					p := files[r.IntN(len(files))]
					err := tr.Remove(ctx, v.Name()+"/"+p)
					if err != nil {
						t.Fatalf("remove %s/%s: %v", v.Name(), p, err)
					}
					okOps["remove"]++
				case op == 1 && len(files) > 0:
					p := files[r.IntN(len(files))]
					w := views[r.IntN(len(views))]
					if r.IntN(2) == 0 {
						w = v
					}
					to, ok := w.tmpl.Render(renderMeta(&fs.Object{Name: propNames[r.IntN(len(propNames))], Meta: randomMeta(r)}))
					if !ok {
						continue
					}
					moved := m.files[p]
					err := tr.Rename(ctx, v.Name()+"/"+p, w.Name()+"/"+to)
					switch fs.KindOf(err) {
					case fs.Other:
						if err != nil {
							t.Fatalf("rename: %v", err)
						}
						okOps["rename"]++
						if w.Name() != v.Name() || to != p {
							fi, err := tr.Stat(ctx, w.Name()+"/"+to)
							if err != nil || fi.ID() != moved {
								t.Fatalf("rename %s/%s -> %s/%s: target %v %v, want %s", v.Name(), p, w.Name(), to, fi, err, moved)
							}
						}
					case fs.Invalid, fs.IsDir, fs.NotDir, fs.Exist:
					default:
						t.Fatalf("rename: %v", err)
					}
				case op == 2 && len(dirs) > 0:
					d := dirs[r.IntN(len(dirs))]
					to := path.Join(path.Dir(d), propValues[r.IntN(len(propValues))])
					if base := path.Base(to); base == "." || base == ".." || base == "" {
						continue
					}
					err := tr.Rename(ctx, v.Name()+"/"+d, v.Name()+"/"+strings.TrimPrefix(to, "./"))
					switch fs.KindOf(err) {
					case fs.Other:
						if err != nil {
							t.Fatalf("rename dir: %v", err)
						}
						okOps["rename dir"]++
					case fs.Invalid, fs.NotEmpty, fs.NotDir, fs.Exist:
					default:
						t.Fatalf("rename dir %s/%s: %v", v.Name(), d, err)
					}
				case op == 3:
					d := propValues[r.IntN(len(propValues))]
					err := tr.Mkdir(ctx, v.Name()+"/"+d)
					switch fs.KindOf(err) {
					case fs.Other:
						if err != nil {
							t.Fatal(err)
						}
						okOps["mkdir"]++
					case fs.Invalid, fs.Exist:
					default:
						t.Fatalf("mkdir: %v", err)
					}
				default:
					to, ok := v.tmpl.Render(renderMeta(&fs.Object{Name: propNames[r.IntN(len(propNames))], Meta: randomMeta(r)}))
					if !ok {
						continue
					}
					info, err := tr.Create(ctx, v.Name()+"/"+to, strings.NewReader("new"), CreateOptions{Size: 3})
					switch fs.KindOf(err) {
					case fs.Other:
						if err != nil {
							t.Fatal(err)
						}
						ids = append(ids, info.ID())
						okOps["create"]++
					case fs.Invalid, fs.IsDir:
					default:
						t.Fatalf("create: %v", err)
					}
				}
			}
			// Markers made by Mkdir are objects too: find them by their
			// reserved metadata.
			for _, v := range views {
				e.st.Find(ctx, []index.Cond{{Key: MetaDirView, Value: v.Name()}}, index.FindOptions{}, func(o *fs.Object) error {
					if !slices.Contains(ids, o.ID) {
						ids = append(ids, o.ID)
					}
					return nil
				})
			}
			objs = current(t, e, ids)
			checkIndex(t, e, objs)
			checkTree(t, e, tr, objs)
			nf, nd := 0, 0
			for _, v := range views {
				m := buildModel(v, objs)
				nf += len(m.files)
				nd += len(m.dirs)
			}
			t.Logf("ops ok: %v; files %d dirs %d objects %d", okOps, nf, nd, len(objs))
		})
	}
}

// A user never sees objects outside their views: every path a restricted
// tree shows is a path of one of their views, and naming any other view is
// NotExist, never Permission.
func TestUserSeesOnlyTheirViews(t *testing.T) {
	e := newEnv(t, map[string]Def{
		"pub":    {Path: "{b}/{name}", Filter: "a = 1"},
		"secret": {Path: "{b}/{name}"},
	})
	r := rand.New(rand.NewPCG(3, 4))
	var objs []*fs.Object
	for range 40 {
		objs = append(objs, e.register(t, propNames[r.IntN(len(propNames))], randomMeta(r)))
	}
	bob := e.tree("bob", map[string]Rights{"pub": Read})
	pub, _ := e.set.View("pub")
	m := buildModel(pub, current(t, e, idsOf(objs)))
	// Bob's root is the one view he has.
	for d := range m.dirs {
		if got, want := names(t, bob, d, 3), m.children(d); !slices.Equal(got, want) {
			t.Fatalf("bob's %q: got %v want %v", d, got, want)
		}
	}
	for _, o := range objs {
		if o.Meta["a"] != "1" {
			if p, ok := pub.PathOf(o); ok {
				t.Fatalf("object outside pub's filter at %s", p)
			}
		}
	}
	multi := NewTree(TreeOptions{Set: e.set, Store: e.st, User: "bob", Profile: Profile{Views: map[string]Rights{"pub": Read}}, ViewDirs: true})
	for _, p := range []string{"secret", "secret/", "secret/x/y", "nosuch/a"} {
		_, err := multi.Stat(ctxT(t), p)
		wantKind(t, "stat "+p, err, fs.NotExist)
		_, err = multi.ReadDir(ctxT(t), p, "", 10)
		wantKind(t, "readdir "+p, err, fs.NotExist)
	}
	if got := names(t, multi, "/", 10); !slices.Equal(got, []string{"pub/"}) {
		t.Fatalf("root: %v", got)
	}
}

func idsOf(objs []*fs.Object) []fs.ID {
	out := make([]fs.ID, len(objs))
	for i, o := range objs {
		out[i] = o.ID
	}
	return out
}
