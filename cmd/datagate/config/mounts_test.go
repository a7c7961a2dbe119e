package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseMountFlag(t *testing.T) {
	for in, want := range map[string]Mount{
		"alice:/mnt/dg":    {User: "alice", Path: "/mnt/dg"},
		"alice:/mnt/dg:ro": {User: "alice", Path: "/mnt/dg", ReadOnly: true},
	} {
		got, err := ParseMountFlag(in)
		if err != nil || got != want {
			t.Errorf("%q: %+v %v", in, got, err)
		}
	}
	for _, bad := range []string{"alice", ":/mnt", "alice:", ""} {
		if _, err := ParseMountFlag(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCheckMounts(t *testing.T) {
	dir := t.TempDir()
	base := "data: " + dir + "\nviews: {v: {path: \"{name}\"}}\nusers: {alice: {views: {v: r}}}\n"
	for extra, want := range map[string]string{
		"mounts: [{user: alice, path: /mnt/a, timeout: 30s}]":                 "",
		"mounts: [{user: bob, path: /mnt/a}]":                                 `mounts[0].user: no such user "bob"`,
		"mounts: [{user: alice}]":                                             "mounts[0].path",
		"mounts: [{user: alice, path: /mnt/a}, {user: alice, path: /mnt/a/}]": "also mounts[0]",
		"mounts: [{user: alice, path: /mnt/a, timeout: 10ms}]":                "below 1s",
		"mounts: [{user: alice, path: /mnt/a, bogus: 1}]":                     "bogus",
	} {
		p := filepath.Join(dir, "c.yaml")
		os.WriteFile(p, []byte(base+extra+"\n"), 0o644)
		cfg, err := Load(p)
		if err == nil {
			err = cfg.CheckMounts()
		}
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", extra, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: error %v, want one containing %q", extra, err, want)
		}
	}
}
