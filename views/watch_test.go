package views

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/datagate/datagate/fs/index"
)

func TestWatch(t *testing.T) {
	e := newEnv(t, twoViews)
	w := Watch(e.set, e.st.Index(), 64)
	defer w.Close()
	tr := e.tree("a", map[string]Rights{"by-date": All, "by-type": Read})
	ctx := ctxT(t)
	next := func() []string {
		t.Helper()
		select {
		case ev := <-w.C:
			if ev.Resync {
				return []string{"resync"}
			}
			var out []string
			for _, c := range ev.Changes {
				up, ok := tr.UserPath(c.View, c.Path)
				if !ok {
					t.Fatalf("user cannot see %v", c)
				}
				out = append(out, c.Op.String()+" "+up)
			}
			slices.Sort(out)
			return out
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
		}
		return nil
	}
	if _, err := tr.Create(ctx, "by-date/2026-01-01/obs/a", strings.NewReader("a"), CreateOptions{Size: 1}); err != nil {
		t.Fatal(err)
	}
	if got, want := next(), []string{"added /by-date/2026-01-01/obs/a", "added /by-type/obs/2026-01-01/a"}; !slices.Equal(got, want) {
		t.Fatalf("create: %v", got)
	}
	if err := tr.Rename(ctx, "by-date/2026-01-01/obs/a", "by-date/2026-01-01/obs/b"); err != nil {
		t.Fatal(err)
	}
	want := []string{"added /by-date/2026-01-01/obs/b", "added /by-type/obs/2026-01-01/b", "removed /by-date/2026-01-01/obs/a", "removed /by-type/obs/2026-01-01/a"}
	if got := next(); !slices.Equal(got, want) {
		t.Fatalf("rename: %v", got)
	}
	if err := tr.Chtimes(ctx, "by-date/2026-01-01/obs/b", time.Unix(1e9, 0)); err != nil {
		t.Fatal(err)
	}
	if got := next(); !slices.Equal(got, []string{"modified /by-date/2026-01-01/obs/b", "modified /by-type/obs/2026-01-01/b"}) {
		t.Fatalf("chtimes: %v", got)
	}
	if err := tr.Mkdir(ctx, "by-date/2026-09"); err != nil {
		t.Fatal(err)
	}
	if got := next(); !slices.Equal(got, []string{"added /by-date/2026-09"}) {
		t.Fatalf("mkdir: %v", got)
	}
	// A subscriber that falls behind is told to resync.
	for i := 0; i < 200; i++ {
		e.register(t, "x", map[string]string{"date": "d", "type": "obs"})
	}
	sawResync := false
	for !sawResync {
		select {
		case ev := <-w.C:
			sawResync = ev.Resync
		case <-time.After(10 * time.Second):
			t.Fatal("no resync after overflow")
		}
	}
	// Translate is exported for front-ends with their own subscription.
	if got := Translate(e.set, index.Change{Op: index.OpDelete}); len(got) != 0 {
		t.Fatalf("empty change: %v", got)
	}
}
