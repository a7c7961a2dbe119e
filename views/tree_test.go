package views

import (
	"errors"
	iofs "io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/datagate/datagate/fs"
)

var twoViews = map[string]Def{
	"by-date": {Path: "{date}/{type}/{name}"},
	"by-type": {Path: "{type}/{date}/{name}", Filter: "type in (obs, fc)"},
}

func wantKind(t *testing.T, what string, err error, k fs.Kind) {
	t.Helper()
	if fs.KindOf(err) != k {
		t.Fatalf("%s: got %v (kind %v), want kind %v", what, err, fs.KindOf(err), k)
	}
}

func TestTreeBasics(t *testing.T) {
	e := newEnv(t, twoViews)
	ctx := ctxT(t)
	alice := e.tree("alice", map[string]Rights{"by-date": Read | Write | Delete, "by-type": Read})
	if _, err := alice.Create(ctx, "/by-date/2026-01-02/obs/a.txt", strings.NewReader("hello"), CreateOptions{Size: -1}); err != nil {
		t.Fatal(err)
	}
	// Visible at once through the other view.
	if got := string(readAll(t, alice, "by-type/obs/2026-01-02/a.txt")); got != "hello" {
		t.Fatalf("read through by-type: %q", got)
	}
	if got := names(t, alice, "/", 10); !slices.Equal(got, []string{"by-date/", "by-type/"}) {
		t.Fatalf("root: %v", got)
	}
	if got := names(t, alice, "by-date", 10); !slices.Equal(got, []string{"2026-01-02/"}) {
		t.Fatalf("by-date: %v", got)
	}
	fi, err := alice.Stat(ctx, "by-date/2026-01-02/obs/a.txt")
	if err != nil || fi.Size() != 5 || fi.IsDir() || fi.Name() != "a.txt" {
		t.Fatalf("stat: %+v %v", fi, err)
	}
	// Overwrite: a new version replaces the old one at every path.
	if _, err := alice.Create(ctx, "by-date/2026-01-02/obs/a.txt", strings.NewReader("hello, world"), CreateOptions{Size: 12}); err != nil {
		t.Fatal(err)
	}
	if got := string(readAll(t, alice, "by-type/obs/2026-01-02/a.txt")); got != "hello, world" {
		t.Fatalf("after overwrite: %q", got)
	}
	// A type the by-type filter refuses is in by-date only.
	if _, err := alice.Create(ctx, "by-date/2026-01-02/model/m.grib", strings.NewReader("x"), CreateOptions{Size: -1}); err != nil {
		t.Fatal(err)
	}
	if got := names(t, alice, "by-type", 10); !slices.Equal(got, []string{"obs/"}) {
		t.Fatalf("by-type: %v", got)
	}
	// Rename within a view changes metadata: the file moves in both views.
	if err := alice.Rename(ctx, "by-date/2026-01-02/obs/a.txt", "by-date/2026-01-03/fc/b.txt"); err != nil {
		t.Fatal(err)
	}
	if got := string(readAll(t, alice, "by-type/fc/2026-01-03/b.txt")); got != "hello, world" {
		t.Fatalf("after rename: %q", got)
	}
	_, err = alice.Stat(ctx, "by-type/obs/2026-01-02/a.txt")
	wantKind(t, "old path", err, fs.NotExist)
	// Mkdir, then the empty directory lists and can be removed.
	if err := alice.Mkdir(ctx, "by-date/2026-02-01"); err != nil {
		t.Fatal(err)
	}
	if got := names(t, alice, "by-date", 10); !slices.Equal(got, []string{"2026-01-02/", "2026-01-03/", "2026-02-01/"}) {
		t.Fatalf("after mkdir: %v", got)
	}
	if got := names(t, alice, "by-date/2026-02-01", 10); len(got) != 0 {
		t.Fatalf("empty dir lists %v", got)
	}
	wantKind(t, "rmdir non-empty", alice.Rmdir(ctx, "by-date/2026-01-03"), fs.NotEmpty)
	if err := alice.Rmdir(ctx, "by-date/2026-02-01/"); err != nil {
		t.Fatal(err)
	}
	_, err = alice.Stat(ctx, "by-date/2026-02-01")
	wantKind(t, "removed dir", err, fs.NotExist)
	if err := alice.Remove(ctx, "by-date/2026-01-03/fc/b.txt"); err != nil {
		t.Fatal(err)
	}
	if got := names(t, alice, "by-type", 10); len(got) != 0 {
		t.Fatalf("by-type after remove: %v", got)
	}
	if !errors.Is(alice.Remove(ctx, "by-date/2026-01-03/fc/b.txt"), iofs.ErrNotExist) {
		t.Fatal("remove twice")
	}
	_ = time.Now
}
