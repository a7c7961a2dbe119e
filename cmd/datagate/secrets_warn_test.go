package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/datagate/datagate/cmd/datagate/config"
)

// A configuration file holding secrets in clear that every local user may
// read gets a warning naming the keys, never their values; a file only
// its owner (and group) reads, or one without secrets, gets none.
func TestWarnReadableSecrets(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	secret := "alices-s3-secret-value"
	os.WriteFile(p, []byte("data: "+dir+"\nviews: {v: {path: '{name}'}}\nusers:\n  alice: {s3_keys: [{id: AKIAALICE, secret: "+secret+"}], views: {v: r}}\n"), 0o600)
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	warn := func(mode os.FileMode, cfg *config.Config) string {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		warnReadableSecrets(p, cfg, slog.New(slog.NewTextHandler(&b, nil)))
		return b.String()
	}
	out := warn(0o644, cfg)
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "users.alice.s3_keys") || !strings.Contains(out, "mode=0644") || strings.Contains(out, secret) {
		t.Fatalf("0644 file with secrets: %q", out)
	}
	for _, m := range []os.FileMode{0o600, 0o640} {
		if out := warn(m, cfg); out != "" {
			t.Fatalf("%04o file: %q", m, out)
		}
	}
	plain, _ := config.Load("")
	if out := warn(0o644, plain); out != "" {
		t.Fatalf("no secrets: %q", out)
	}
}
