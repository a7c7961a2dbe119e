package config

import (
	"strings"
	"testing"
)

func TestCompare(t *testing.T) {
	base := `
data: /srv/dg
listen: {webdav: "127.0.0.1:0"}
providers:
  mars: {type: local, root: /data/mars}
views:
  by-date: {path: "{date}/{name}"}
users:
  alice:
    s3_keys: [{id: AKALICE, secret: alice-secret-1}]
    views: {by-date: r}
  bob:
    views: {by-date: rw}
`
	mustLoad := func(y string) *Config {
		c, err := loadYAML(t, y)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	old := mustLoad(base)
	if d, fixed := Compare(old, mustLoad(base)); !d.Empty() || fixed != nil {
		t.Fatalf("same file: %v, fixed %v", d, fixed)
	}
	next := strings.NewReplacer(
		"alice-secret-1", "alice-secret-2", // a key change
		"bob:\n    views: {by-date: rw}", "carol:\n    views: {by-type: r}", // bob goes, carol comes
		`by-date: {path: "{date}/{name}"}`, `by-date: {path: "{date}/{type}/{name}"}`+"\n  by-type: {path: \"{type}/{name}\"}",
		"root: /data/mars", "root: /data/mars2",
	).Replace(base)
	d, fixed := Compare(old, mustLoad(next))
	if fixed != nil {
		t.Fatalf("fixed %v", fixed)
	}
	want := "users +carol -bob ~alice(s3_keys); views +by-type ~by-date; providers ~mars"
	if d.String() != want {
		t.Fatalf("diff %q\nwant %q", d.String(), want)
	}
	if strings.Contains(d.String(), "secret") {
		t.Fatal("a secret in the description")
	}

	moved := strings.Replace(strings.Replace(base, "/srv/dg", "/srv/other", 1), `webdav: "127.0.0.1:0"`, `webdav: "127.0.0.1:1"`, 1)
	_, fixed = Compare(old, mustLoad(moved+"cache: {max_size: 1GiB}\n"))
	if got := strings.Join(fixed, ","); got != "cache,data,listen" {
		t.Fatalf("fixed keys %q", got)
	}
	if d := (Diff{Admin: true}); d.Empty() || d.String() != "admin users" {
		t.Fatalf("admin change: %v", d)
	}
	err := &FixedError{Keys: fixed}
	if !strings.Contains(err.Error(), "cache, data, listen cannot change while the server runs") {
		t.Fatal(err)
	}
}
