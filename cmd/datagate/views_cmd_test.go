package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/datagate/datagate/views"
)

func runCmd(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

func TestPasswdLsViews(t *testing.T) {
	h, err := runCmd(t, "correct horse\n", "passwd", "--cost", "4")
	if err != nil {
		t.Fatal(err)
	}
	h = strings.TrimSpace(h)
	if bcrypt.CompareHashAndPassword([]byte(h), []byte("correct horse")) != nil {
		t.Fatalf("hash %q does not verify", h)
	}
	if _, err := runCmd(t, "", "passwd"); err == nil {
		t.Fatal("empty password accepted")
	}

	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "c.yaml")
	yaml := `data: ` + filepath.Join(dir, "var") + `
views:
  by-date: {path: "{date}/{type}/{name}"}
  by-type: {path: "{type}/{date}/{name}", filter: "type in (obs, fc)"}
users:
  alice: {password_hash: "` + h + `", views: {by-date: rw, by-type: r}}
  bob: {views: {by-type: r}}
`
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &globals{configFile: cfgFile}
	cfg, log, err := g.load()
	if err != nil {
		t.Fatal(err)
	}
	a, err := openApp(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	tr := views.NewTree(views.TreeOptions{Set: a.views, Store: a.store, User: "alice", Profile: cfg.Users["alice"].Profile()})
	for _, p := range []string{"by-date/2026-11-22/obs/synop.bufr", "by-date/2026-11-22/model/t.grib"} {
		if _, err := tr.Create(context.Background(), p, strings.NewReader("data"), views.CreateOptions{Size: 4}); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()

	out, err := runCmd(t, "", "--config", cfgFile, "ls", "--user", "bob", "-l", "obs/2026-11-22")
	if err != nil || !strings.Contains(out, "synop.bufr") || !strings.Contains(out, "-r--r--r--") {
		t.Fatalf("ls bob: %v\n%s", err, out)
	}
	out, err = runCmd(t, "", "--config", cfgFile, "ls", "--user", "alice", "by-date/2026-11-22")
	if err != nil || out != "model/\nobs/\n" {
		t.Fatalf("ls alice: %v\n%q", err, out)
	}
	if _, err := runCmd(t, "", "--config", cfgFile, "ls", "--user", "bob", "by-date"); exitCode(err) != 3 {
		t.Fatalf("bob naming alice's view: %v", err)
	}
	out, err = runCmd(t, "", "--config", cfgFile, "views")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	tail := func(l string) string { f := strings.Fields(l); return strings.Join(f[len(f)-2:], " ") }
	if len(lines) != 3 || !strings.Contains(lines[1], "by-date") || tail(lines[1]) != "2 0" ||
		!strings.Contains(lines[2], "type in (obs, fc)") || tail(lines[2]) != "1 0" {
		t.Fatalf("views:\n%s", out)
	}
}
