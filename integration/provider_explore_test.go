package integration

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Provider cases a portal operator meets in the first hour, through the
// real binary (server running, so the CLI goes through its socket).

// A product re-issued under the same name after it was registered, with
// no checksum registered: `datagate get` used to print the first Size
// bytes of the new file ("hello " of "hello world, re-issued") and exit
// 0. It fails now, naming the change; crawling again serves the new one.
// A crawl of a base URL that 404s (a typo in url:) used to succeed with
// nothing listed.
func TestProviderFileRewrittenAfterRegistration(t *testing.T) {
	root := t.TempDir()
	web := httptest.NewServer(http.FileServer(http.Dir(root)))
	defer web.Close()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(root, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("bulletin.txt", "hello\n")
	providers := "providers:\n  web: {type: http, url: '" + web.URL + "/', timeout: 5s, retries: 1}\n" +
		"  typo: {type: http, url: '" + web.URL + "/no/such/dir/', timeout: 5s, retries: 1}\n"
	dataDir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfg, []byte("data: "+dataDir+"\n"+providers), 0o644)
	c := cli{t: t, args: []string{"--config", cfg}}
	s := startServerWith(t, dataDir, providers)
	defer s.stop(t)

	c.ok("", "crawl", "web", "--meta", "src=web")
	id := idRE.FindString(c.ok("", "find", "src=web"))
	if id == "" {
		t.Fatal("nothing crawled")
	}
	write("bulletin.txt", "hello world, re-issued\n")
	out, errs, code := c.run("", "get", id)
	if code == 0 || !strings.Contains(errs, "changed since it was registered") {
		t.Fatalf("get of a rewritten file: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if strings.Contains(out, "hello ") && !strings.Contains(out, "re-issued") {
		t.Fatalf("part of the new file served as the old one: %q", out)
	}
	c.ok("", "crawl", "web", "--meta", "src=web")
	if out := c.ok("", "get", id); out != "hello world, re-issued\n" {
		t.Fatalf("after a new crawl: %q", out)
	}

	_, errs, code = c.run("", "crawl", "typo")
	if code == 0 || !strings.Contains(errs, "base URL") {
		t.Fatalf("crawl of a base URL that 404s: exit %d, stderr %q", code, errs)
	}
}
