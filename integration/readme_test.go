package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/datagate/datagate/cmd/datagate/config"
)

// The README is what a new operator copies from: these tests keep its
// configuration snippets and command lines in step with the code, so a
// renamed key or command fails here rather than on the operator's desk.

// readmeBlocks returns the fenced blocks of README.md in the given
// language, in order.
func readmeBlocks(t *testing.T, lang string) []string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	var cur *strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case cur == nil && line == "```"+lang:
			cur = &strings.Builder{}
		case cur != nil && line == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	if cur != nil {
		t.Fatalf("README.md: a ```%s block is not closed", lang)
	}
	return blocks
}

// TestREADMEConfigSnippets parses every YAML snippet of the README as a
// configuration file, strictly: an unknown or misspelt key fails. The
// snippets hold placeholders ("$2a$10$...", keys elided), so only the
// keys and the values' types are checked here, not their validity.
func TestREADMEConfigSnippets(t *testing.T) {
	blocks := readmeBlocks(t, "yaml")
	if len(blocks) < 10 {
		t.Fatalf("README.md: %d yaml blocks, want the configuration's snippets", len(blocks))
	}
	for i, blk := range blocks {
		if strings.Contains(blk, "scrape_configs:") {
			continue // Prometheus's configuration, not ours
		}
		cfg := config.Default()
		if err := config.Parse(strings.NewReader(blk), cfg); err != nil {
			t.Errorf("README.md yaml block %d does not parse: %v\n%s", i+1, err, blk)
		}
	}
}

// TestREADMEFirstServer loads the quick start's configuration ("A first
// server with users") as the README tells a new user to, with the hash
// datagate passwd prints in place of the placeholder: it must load whole
// (views, user, listeners) and show the views it defines.
func TestREADMEFirstServer(t *testing.T) {
	var first string
	for _, blk := range readmeBlocks(t, "yaml") {
		if strings.HasPrefix(blk, "# dg.yaml\n") {
			first = blk
		}
	}
	if first == "" {
		t.Fatal(`README.md: no yaml block starting "# dg.yaml" (A first server with users)`)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(first, `"$2a$10$..."`) {
		t.Fatalf("README.md: the first server's configuration has no password_hash placeholder:\n%s", first)
	}
	first = strings.Replace(first, `"$2a$10$..."`, `"`+string(hash)+`"`, 1)
	// Its listeners are fixed ports; views only loads the file.
	dir := t.TempDir()
	f := filepath.Join(dir, "dg.yaml")
	if err := os.WriteFile(f, []byte(first), 0o600); err != nil {
		t.Fatal(err)
	}
	out := cli{t: t, args: []string{"--config", f, "--data", filepath.Join(dir, "var")}}.ok("", "views")
	for _, v := range []string{"by-date", "by-type"} {
		if !regexp.MustCompile(`(?m)^` + v + `\s`).MatchString(out) {
			t.Errorf("datagate views: no view %s:\n%s", v, out)
		}
	}
}

// TestREADMECommands runs `datagate CMD --help` for every command of the
// README's command table: each must exist.
func TestREADMECommands(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `datagate ([a-z]+)")
	seen := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		seen[m[1]] = true
	}
	if len(seen) < 15 {
		t.Fatalf("README.md: %d commands in the command table, want every command", len(seen))
	}
	c := cli{t: t}
	for name := range seen {
		if _, errs, code := c.run("", name, "--help"); code != 0 {
			t.Errorf("README's `datagate %s`: --help exits %d: %s", name, code, errs)
		}
	}
}
