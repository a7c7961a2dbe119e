package views

import (
	"strings"
	"testing"

	"github.com/datagate/datagate/fs"
)

// Each bad input of the issue, through the Tree.
func TestBadInput(t *testing.T) {
	e := newEnv(t, map[string]Def{
		"by-date": {Path: "{date}/{type}/{name}"},
		"by-type": {Path: "{type}/{date}/{name}", Filter: "type in (obs, fc)"},
		"params":  {Path: "{param}/{name}", Filter: "has(param)"},
		"hidden":  {Path: "{name}"},
	})
	ctx := ctxT(t)
	alice := e.tree("alice", map[string]Rights{"by-date": Read | Write, "by-type": Read | Write | Delete, "params": All})
	if _, err := alice.Create(ctx, "by-date/2026-01-01/obs/a", strings.NewReader("a"), CreateOptions{Size: 1}); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 256)
	paths := []struct{ what, p string }{
		{"dot-dot", "by-date/../by-type"},
		{"dot-dot at end", "by-date/2026-01-01/.."},
		{"dot", "by-date/./2026-01-01"},
		{"empty segment", "by-date//2026-01-01"},
		{"leading double slash", "//by-date"},
		{"NUL", "by-date/2026\x00/obs/a"},
		{"name over 255 bytes", "by-date/" + long},
		{"invalid UTF-8", "by-date/\xff\xfe/obs/a"},
		{"path over 4096 bytes", "by-date/" + strings.Repeat("abcdefgh/", 460)},
	}
	for _, c := range paths {
		t.Run(c.what, func(t *testing.T) {
			_, err := alice.Stat(ctx, c.p)
			wantKind(t, "stat", err, fs.Invalid)
			_, err = alice.Create(ctx, c.p, strings.NewReader("x"), CreateOptions{Size: 1})
			wantKind(t, "create", err, fs.Invalid)
			wantKind(t, "mkdir", alice.Mkdir(ctx, c.p), fs.Invalid)
			wantKind(t, "remove", alice.Remove(ctx, c.p), fs.Invalid)
			wantKind(t, "rename from", alice.Rename(ctx, c.p, "by-date/2026-01-01/obs/b"), fs.Invalid)
			wantKind(t, "rename to", alice.Rename(ctx, "by-date/2026-01-01/obs/a", c.p), fs.Invalid)
			_, err = alice.ReadDir(ctx, c.p, "", 10)
			wantKind(t, "readdir", err, fs.Invalid)
		})
	}
	t.Run("trailing slash", func(t *testing.T) {
		_, err := alice.Stat(ctx, "by-date/2026-01-01/obs/a/")
		wantKind(t, "stat of a file with a trailing slash", err, fs.NotDir)
		_, err = alice.Open(ctx, "by-date/2026-01-01/obs/a/")
		wantKind(t, "open", err, fs.NotDir)
		_, err = alice.Create(ctx, "by-date/2026-01-01/obs/b/", strings.NewReader("x"), CreateOptions{Size: 1})
		wantKind(t, "create", err, fs.IsDir)
		if fi, err := alice.Stat(ctx, "by-date/2026-01-01/"); err != nil || !fi.IsDir() {
			t.Fatalf("a directory with a trailing slash: %v", err)
		}
	})
	t.Run("path fitting no template names it", func(t *testing.T) {
		for _, p := range []string{"by-date/2026-01-01/obs", "by-date/2026-01-01/obs/a/b", "by-date/50%/obs/a"} {
			_, err := alice.Create(ctx, p, strings.NewReader("x"), CreateOptions{Size: 1})
			if fs.KindOf(err) != fs.Invalid && fs.KindOf(err) != fs.IsDir {
				t.Fatalf("create %s: %v", p, err)
			}
			if fs.KindOf(err) == fs.Invalid && !strings.Contains(err.Error(), "{date}/{type}/{name}") {
				t.Fatalf("create %s: error does not name the template: %v", p, err)
			}
		}
		err := alice.Mkdir(ctx, "by-date/a/b/c")
		wantKind(t, "mkdir too deep", err, fs.Invalid)
		if !strings.Contains(err.Error(), "{date}/{type}/{name}") {
			t.Fatalf("mkdir: error does not name the template: %v", err)
		}
	})
	t.Run("filter refuses the path", func(t *testing.T) {
		_, err := alice.Create(ctx, "by-type/model/2026-01-01/x", strings.NewReader("x"), CreateOptions{Size: 1})
		wantKind(t, "create", err, fs.Invalid)
		if !strings.Contains(err.Error(), "by-type") {
			t.Fatalf("error does not name the view: %v", err)
		}
		wantKind(t, "mkdir", alice.Mkdir(ctx, "by-type/model"), fs.Invalid)
	})
	t.Run("upload without write right", func(t *testing.T) {
		bob := e.tree("bob", map[string]Rights{"by-date": Read})
		_, err := bob.Create(ctx, "2026-01-01/obs/z", strings.NewReader("x"), CreateOptions{Size: 1})
		wantKind(t, "create", err, fs.Permission)
		wantKind(t, "mkdir", bob.Mkdir(ctx, "2026-09-09"), fs.Permission)
		wantKind(t, "rename", bob.Rename(ctx, "2026-01-01/obs/a", "2026-01-01/obs/b"), fs.Permission)
		if got := string(readAll(t, bob, "2026-01-01/obs/a")); got != "a" {
			t.Fatalf("bob reads %q", got)
		}
	})
	t.Run("delete without delete right", func(t *testing.T) {
		wantKind(t, "remove", alice.Remove(ctx, "by-date/2026-01-01/obs/a"), fs.Permission)
		if err := alice.Mkdir(ctx, "by-date/2026-05-05"); err != nil {
			t.Fatal(err)
		}
		wantKind(t, "rmdir", alice.Rmdir(ctx, "by-date/2026-05-05"), fs.Permission)
	})
	t.Run("another user's view is not-exist", func(t *testing.T) {
		for _, p := range []string{"hidden", "hidden/a", "hidden/"} {
			_, err := alice.Stat(ctx, p)
			wantKind(t, "stat "+p, err, fs.NotExist)
			q := strings.TrimSuffix(p, "/") + "/x"
			_, err = alice.Create(ctx, q, strings.NewReader("x"), CreateOptions{Size: 1})
			wantKind(t, "create "+q, err, fs.NotExist)
			wantKind(t, "rename into "+q, alice.Rename(ctx, "by-date/2026-01-01/obs/a", q), fs.NotExist)
		}
	})
	t.Run("rename across views without the metadata the target needs", func(t *testing.T) {
		if _, err := alice.Create(ctx, "by-date/2026-01-01/model/m", strings.NewReader("m"), CreateOptions{Size: 1}); err != nil {
			t.Fatal(err)
		}
		// params needs a param key the by-date path does not give...
		err := alice.Rename(ctx, "by-date/2026-01-01/model/m", "by-type/model/2026-01-01/m")
		wantKind(t, "rename into a refusing filter", err, fs.Invalid)
		if !strings.Contains(err.Error(), "by-type") {
			t.Fatalf("error does not name the view: %v", err)
		}
		// ...and the move failed whole: the object is where it was.
		if got := string(readAll(t, alice, "by-date/2026-01-01/model/m")); got != "m" {
			t.Fatalf("source after failed rename: %q", got)
		}
		// A path that gives what the target needs works across views.
		if err := alice.Rename(ctx, "by-date/2026-01-01/model/m", "params/t2m/m"); err != nil {
			t.Fatal(err)
		}
		if got := string(readAll(t, alice, "by-date/2026-01-01/model/m")); got != "m" {
			t.Fatalf("object keeps its by-date path after gaining a param: %q", got)
		}
	})
}
