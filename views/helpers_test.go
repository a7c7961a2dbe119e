package views

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/cache"
	"github.com/datagate/datagate/backends/local"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/store"
)

// env is a real store over a temporary directory with a view set wired
// in as its Deriver, as cmd/datagate does.
type env struct {
	dir string
	set *Set
	st  *store.Store
}

func newEnv(t testing.TB, defs map[string]Def) *env {
	t.Helper()
	set, err := NewSet(defs, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{dir: t.TempDir(), set: set}
	e.open(t)
	t.Cleanup(func() { e.st.Close() })
	return e
}

func (e *env) open(t testing.TB) {
	t.Helper()
	src, err := local.New("disk", local.Config{Root: filepath.Join(e.dir, "src")})
	if err != nil {
		t.Fatal(err)
	}
	primary, err := local.New(store.PrimaryName, local.Config{Root: filepath.Join(e.dir, "objects")})
	if err != nil {
		t.Fatal(err)
	}
	e.st, err = store.Open(context.Background(), store.Options{
		Dir: e.dir, Providers: map[string]backends.Provider{"disk": src}, Primary: primary,
		Cache: cache.Options{ChunkSize: 64 << 10}, Derive: e.set.Derive, NoSync: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.set.Attach(context.Background(), e.st); err != nil {
		t.Fatal(err)
	}
}

func (e *env) tree(user string, views map[string]Rights) *Tree {
	return NewTree(TreeOptions{Set: e.set, Store: e.st, User: user, Profile: Profile{Views: views}, StatfsDir: e.dir})
}

// register adds a registered object with the given name and metadata.
func (e *env) register(t testing.TB, name string, meta map[string]string) *fs.Object {
	t.Helper()
	o := &fs.Object{Name: name, Meta: meta, Size: 3, ModTime: time.Unix(1700000000, 0).UTC(),
		Source: fs.Location{Provider: "disk", Path: "p/" + name + "-" + fs.NewIDGen().New(time.Now()).String()}}
	if _, err := e.st.Register(context.Background(), []*fs.Object{o}); err != nil {
		t.Fatal(err)
	}
	return o
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func readAll(t testing.TB, tr *Tree, p string) []byte {
	t.Helper()
	f, err := tr.Open(ctxT(t), p)
	if err != nil {
		t.Fatalf("open %s: %v", p, err)
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := io.Copy(&b, f); err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return b.Bytes()
}

// names lists a whole directory in pages of n.
func names(t testing.TB, tr *Tree, dir string, n int) []string {
	t.Helper()
	var out []string
	after := ""
	for {
		page, err := tr.ReadDir(ctxT(t), dir, after, n)
		if err != nil {
			t.Fatalf("readdir %s: %v", dir, err)
		}
		for _, i := range page {
			s := i.Name()
			if i.IsDir() {
				s += "/"
			}
			out = append(out, s)
		}
		if len(page) < n {
			return out
		}
		after = page[len(page)-1].Name()
	}
}
