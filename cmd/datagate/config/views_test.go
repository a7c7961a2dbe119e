package config

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"

	"github.com/datagate/datagate/views"
)

func sshKey(t *testing.T) string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " alice@example"
}

func loadYAML(t *testing.T, y string) (*Config, error) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(p)
}

func TestViewsAndUsers(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	good := `
views:
  by-date: {path: "{date}/{type}/{name}"}
  by-type: {path: "{type}/{date}/{name}", filter: "type in (obs, fc)"}
  uploads: {path: "uploads/{path...}", set: {origin: portal}}
users:
  alice: {password_hash: "` + string(hash) + `", ssh_keys: ["` + sshKey(t) + `"], s3_keys: [{id: AKIAALICE, secret: "0123456789abcdef"}],
          views: {by-date: rw, by-type: r}}
  bob: {views: {uploads: rwd}, create_views: true}
`
	cfg, err := loadYAML(t, good)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Users["alice"].Profile(); got.Views["by-date"] != views.Read|views.Write || got.Views["by-type"] != views.Read || got.CreateViews {
		t.Fatalf("alice: %+v", got)
	}
	if got := cfg.Users["bob"].Profile(); got.Views["uploads"] != views.All || !got.CreateViews {
		t.Fatalf("bob: %+v", got)
	}
	if cfg.Views["uploads"].Set["origin"] != "portal" {
		t.Fatalf("set: %+v", cfg.Views["uploads"])
	}
	set, err := views.NewSet(cfg.Views, nil)
	if err != nil || len(set.Views()) != 3 {
		t.Fatalf("set: %v", err)
	}
	if got := cfg.UserNames(); strings.Join(got, ",") != "alice,bob" {
		t.Fatalf("user names: %v", got)
	}

	bad := []struct{ yaml, want string }{
		{`views: {"bad name": {path: "{a}"}}`, `bad name`},
		{`views: {v1: {path: "{a}/../{b}"}}`, `views.v1`},
		{`views: {v1: {path: "{a}", filter: "a in (x"}}`, `views.v1`},
		{`views: {v1: {path: "{a}", colour: red}}`, `colour`},
		{`views: {v1: {path: "{a}"}}
users: {u: {views: {v2: r}}}`, `users.u.views.v2: no such view`},
		{`views: {v1: {path: "{a}"}}
users: {u: {views: {v1: rx}}}`, `users.u.views.v1`},
		{`users: {u: {password_hash: "plain"}}`, `users.u.password_hash`},
		{`users: {u: {password_hash: "$2a$10$short"}}`, `users.u.password_hash`},
		{`users: {u: {ssh_keys: ["ssh-ed25519 notakey"]}}`, `users.u.ssh_keys[0]`},
		{`users: {u: {s3_keys: [{id: K}]}}`, `users.u.s3_keys[0]`},
		{`users: {u: {s3_keys: [{id: K, secret: 12345678}]}, v: {s3_keys: [{id: K, secret: 12345678}]}}`, `also user u's`},
		{`users: {u: {nickname: x}}`, `nickname`},
	}
	for _, c := range bad {
		_, err := loadYAML(t, c.yaml)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s\n  got %v, want an error with %q", c.yaml, err, c.want)
		}
	}
}
