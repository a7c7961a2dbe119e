package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestScheduledAcquisition: an `acquire:` entry makes the server crawl its
// provider periodically; files that appear are registered with the
// metadata the template gives, files too young are left for later.
func TestScheduledAcquisition(t *testing.T) {
	dataDir := t.TempDir()
	imp := filepath.Join(dataDir, "import")
	os.MkdirAll(filepath.Join(imp, "obs", "2026-11-22"), 0o755)
	os.WriteFile(filepath.Join(imp, "obs", "2026-11-22", "a.bufr"), []byte("a"), 0o644)
	s := startServerWith(t, dataDir, `acquire:
  - provider: local
    match: "*.bufr"
    path_template: "{type}/{date}/{name}"
    meta: {origin: acquired}
    min_age: 2s
    interval: 1s
`)
	c := cli{t, []string{"--data", dataDir}}
	// a.bufr is older than min_age only after 2s.
	old := time.Now().Add(-time.Minute)
	os.Chtimes(filepath.Join(imp, "obs", "2026-11-22", "a.bufr"), old, old)
	os.WriteFile(filepath.Join(imp, "obs", "2026-11-22", "b.bufr"), []byte("b"), 0o644)
	os.WriteFile(filepath.Join(imp, "obs", "2026-11-22", "c.txt"), []byte("c"), 0o644)

	waitFind := func(want []string, within time.Duration) string {
		deadline := time.Now().Add(within)
		for {
			out := c.ok("", "find", "origin=acquired", "type=obs", "date=2026-11-22")
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(out, w)
			}
			if ok {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %v, find gives %q; want %v\n%s", within, out, want, s.stderr)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	out := waitFind([]string{"a.bufr"}, 10*time.Second)
	if strings.Contains(out, "c.txt") {
		t.Fatalf("a file not matching the glob was acquired: %q", out)
	}
	// b.bufr becomes old enough and is picked up by a later run.
	waitFind([]string{"a.bufr", "b.bufr"}, 15*time.Second)
	if n := strings.Count(c.ok("", "find", "origin=acquired"), "\n"); n != 2 {
		t.Fatalf("%d objects after several runs, want 2 (runs are idempotent)", n)
	}
	s.stop(t)
}
