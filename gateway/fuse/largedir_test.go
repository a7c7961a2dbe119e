package fuse

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/views"
)

// registerMany registers n objects named f%07d in by-type's directory typ,
// without content files (listing and stat load no content).
func (e *env) registerMany(t testing.TB, typ string, n int) {
	t.Helper()
	const batch = 10000
	for i := 0; i < n; i += batch {
		objs := make([]*fs.Object, 0, batch)
		for j := i; j < min(i+batch, n); j++ {
			objs = append(objs, &fs.Object{Name: fmt.Sprintf("f%07d", j), Meta: map[string]string{"type": typ, "date": "2026-11-22"},
				Size: 3, ModTime: time.Unix(1700000000, 0).UTC(), Source: fs.Location{Provider: "disk", Path: fmt.Sprintf("big/%d", j)}})
		}
		if _, err := e.st.Register(context.Background(), objs); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLargeDirectory(t *testing.T) {
	// 10 pages of Tree.ReadDir; BenchmarkListDir lists 100,000 (registering
	// them takes ~30 s under the race detector, too long for make test).
	e := newEnv(t, map[string]views.Rights{"by-type": views.Read}, Options{})
	n := 10_000
	if testing.Short() {
		n = 3_000
	}
	start := time.Now()
	e.registerMany(t, "big", n)
	t.Logf("registered %d objects in %v", n, time.Since(start))
	start = time.Now()
	d, err := os.Open(e.path("big"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	count, prev := 0, ""
	for {
		names, err := d.Readdirnames(4096)
		for _, name := range names {
			if name <= prev {
				t.Fatalf("%q after %q: not in order", name, prev)
			}
			prev = name
			count++
		}
		if err != nil {
			break
		}
	}
	if count != n || prev != fmt.Sprintf("f%07d", n-1) {
		t.Fatalf("listed %d entries (last %q), want %d", count, prev, n)
	}
	t.Logf("listed %d entries through the mount in %v", n, time.Since(start))
	if st, err := os.Stat(e.path("big/f0002345")); err != nil || st.Size() != 3 {
		t.Fatalf("stat in the large directory: %v %v", st, err)
	}
}
