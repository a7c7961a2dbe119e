package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Errors in a file name the line the operator has to fix, and say what
// is wanted. A provider's errors gave two line numbers, the second
// counted from the provider's first line ("line 4: line 2: unknown key"),
// and ParseBytes' and yaml's own words for a size or a duration without
// a unit.
func TestConfigErrorMessages(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ yaml, want string }{
		{"providers:\n  x: {type: http, ulr: 'http://a'}\n", `line 2: unknown key "ulr"`},
		{"providers:\n  x:\n    type: sftp\n    address: a\n    passwd: x\n", `line 5: unknown key "passwd"`},
		{"providers:\n  x: {type: http,\n      url: 'http://a', timeout: 30}\n", `line 3: bad duration "30": want a number with a unit`},
		{"stores:\n  - {name: b, type: local,\n     rot: /b}\n", `line 3: unknown key "rot"`},
		{"cache: {max_size: lots}\n", `line 1: bad size "lots": want a byte count such as`},
		{"retention: {default: 7days}\n", `bad duration "7days": want a number with a unit (90s, 12h, 7d)`},
		{"providers: {web: {type: http, url: 'http://a'}}\ngc: {delete_at_source: [web]}\n", `provider "web" is http, which cannot delete files`},
		{"users: {bob: {views: {nope: r}}}\n", "no such view (the configuration has no views:)"},
		{"mounts: [{user: bob, path: /mnt}]\n", `no such user "bob" (the configuration has no users:)`},
		{"listen: {webdav: 8080}\n", `listen.webdav "8080": want host:port`},
		{"log: {level: info}\n---\ndata: /elsewhere\n", "line 2: a second YAML document (after ---)"},
		{"log:\n\tlevel: info\n", "line 2: found character that cannot start any token (a tab? YAML indents with spaces)"},
	} {
		p := filepath.Join(dir, "c.yaml")
		os.WriteFile(p, []byte(tc.yaml+"data: "+dir+"\n"), 0o600) // data: last, so lines count as written
		cfg, err := Load(p)
		if err == nil && strings.HasPrefix(tc.yaml, "mounts") {
			err = cfg.CheckMounts()
		}
		want := tc.want
		if err == nil || !strings.Contains(err.Error(), want) || strings.Count(err.Error(), "line ") > 1 {
			t.Errorf("%q: error %v; want %q", tc.yaml, err, want)
		}
	}
	// A value in the wrong place is not quoted back: it may be a secret,
	// and a refused reload logs the error.
	p := filepath.Join(dir, "secret.yaml")
	os.WriteFile(p, []byte("data: "+dir+"\nusers: {bob: {s3_keys: \"AKIABOB:supersecret\"}}\n"), 0o600)
	if _, err := Load(p); err == nil || strings.Contains(err.Error(), "AKIA") || !strings.Contains(err.Error(), "line 2: cannot unmarshal !!str into") {
		t.Errorf("misplaced secret: %v", err)
	}
	// The checked keys are still decoded.
	p = filepath.Join(dir, "ok.yaml")
	os.WriteFile(p, []byte("data: "+dir+"\nproviders:\n  x: {type: http, url: 'http://a/', timeout: 5s, headers: {A: b}}\n"), 0o600)
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if h := cfg.Providers["x"].HTTP; h == nil || h.URL != "http://a/" || h.Timeout.Seconds() != 5 || h.Headers["A"] != "b" {
		t.Fatalf("decoded %+v", h)
	}
}

// Secrets names the keys holding usable secrets, never their values.
func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	os.WriteFile(p, []byte(`data: `+dir+`
providers:
  a: {type: s3, endpoint: h, bucket: b, access_key: AK, secret_key: s3-secret}
  h: {type: http, url: "http://u:pw@h/"}
  p: {type: http, url: "http://h/"}
  f: {type: sftp, address: h, user: u, password: sftp-pw, insecure_ignore_host_key: true}
stores: [{name: o, type: s3, endpoint: h, bucket: c, secret_key: x}]
views: {v: {path: "{name}"}}
users:
  alice: {s3_keys: [{id: AKIAALICE, secret: alice-secret}], views: {v: r}}
  bob: {views: {v: r}}
`), 0o600)
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Secrets()
	want := []string{"providers.a.secret_key", "providers.f.password", "providers.h.url", "stores[0].secret_key", "users.alice.s3_keys"}
	if !slices.Equal(got, want) {
		t.Fatalf("Secrets() = %v, want %v", got, want)
	}
	if s, _ := Load(""); len(s.Secrets()) != 0 {
		t.Fatalf("defaults hold secrets: %v", s.Secrets())
	}
}

// A driver's durations take days as the configuration's own do: they
// were refused ("cannot unmarshal !!str into time.Duration").
func TestProviderDurationsTakeDays(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	os.WriteFile(p, []byte("providers:\n  web: {type: http, url: 'http://a', timeout: 1d, mirror_backoff: 90s}\n"+
		"stores:\n  - {name: b, type: s3, endpoint: 'e:9000', bucket: x, timeout: 0.5d}\ndata: "+dir+"\n"), 0o600)
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if h := cfg.Providers["web"].HTTP; h.Timeout != 24*time.Hour || h.MirrorBackoff != 90*time.Second {
		t.Errorf("http provider: timeout %v, mirror_backoff %v", h.Timeout, h.MirrorBackoff)
	}
	if s := cfg.Stores[0].S3; s.Timeout != 12*time.Hour {
		t.Errorf("s3 store: timeout %v", s.Timeout)
	}
}
