package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLsAndViewsThroughServer: `datagate ls` and `datagate views` work the
// same while a server owns the data directory (they run inside it).
func TestLsAndViewsThroughServer(t *testing.T) {
	dataDir := t.TempDir()
	s := startServerWith(t, dataDir, `views:
  by-date: {path: "{date}/{type}/{name}"}
  by-type: {path: "{type}/{date}/{name}"}
users:
  alice: {views: {by-date: rw, by-type: r}}
`)
	c := cli{t, []string{"--data", dataDir}}
	src := filepath.Join(t.TempDir(), "synop.bufr")
	os.WriteFile(src, []byte("obs"), 0o644)
	c.ok("", "put", src, "--meta", "type=obs", "--meta", "date=2026-11-22")

	if out := c.ok("", "ls", "--user", "alice"); !strings.Contains(out, "by-date/") || !strings.Contains(out, "by-type/") {
		t.Fatalf("ls /: %q", out)
	}
	if out := c.ok("", "ls", "--user", "alice", "-l", "by-type/obs/2026-11-22"); !strings.Contains(out, "synop.bufr") {
		t.Fatalf("ls -l by-type/obs/2026-11-22: %q", out)
	}
	if _, errs, code := c.run("", "ls", "--user", "alice", "by-date/nope"); code != 3 {
		t.Fatalf("ls of a missing path through the server: exit %d %q", code, errs)
	}
	if out := c.ok("", "views"); !strings.Contains(out, "by-date") || !strings.Contains(out, "{type}/{date}/{name}") {
		t.Fatalf("views: %q", out)
	}
	s.stop(t)
}
