package config

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestAdminUsers(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	const sum = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08" // sha256("test")
	cfg, err := loadYAML(t, `
admin:
  users:
    ops: {role: full, password_hash: "`+string(hash)+`"}
    grafana: {role: read, token_sha256: "`+sum+`"}
`)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.AdminUserNames(); strings.Join(got, ",") != "grafana,ops" {
		t.Fatalf("names %v", got)
	}
	if g := cfg.Admin.Users["grafana"]; g.Role != "read" || len(g.Token()) != 32 || g.TokenSHA256 != strings.ToLower(sum) {
		t.Fatalf("grafana: %+v", g)
	}
	if o := cfg.Admin.Users["ops"]; o.Token() != nil || o.PasswordHash == "" {
		t.Fatalf("ops: %+v", o)
	}

	for _, tc := range []struct{ yaml, want string }{
		{`admin: {users: {ops: {role: full}}}`, "admin.users.ops: no credential"},
		{`admin: {users: {ops: {password_hash: "` + string(hash) + `"}}}`, "admin.users.ops.role: missing"},
		{`admin: {users: {ops: {role: root, password_hash: "` + string(hash) + `"}}}`, `admin.users.ops.role "root": want read or full`},
		{`admin: {users: {ops: {role: full, password_hash: "plain"}}}`, "admin.users.ops.password_hash: not a bcrypt hash"},
		{`admin: {users: {ops: {role: full, token_sha256: "abc"}}}`, "admin.users.ops.token_sha256: want 64 hex digits"},
		{`admin: {users: {ops: {role: full, token: "abc"}}}`, `unknown key "token"`},
		{`admin: {user: {}}`, `unknown key "user"`},
		{`admin: {users: {"a b": {role: full, token_sha256: "` + sum + `"}}}`, "admin.users.a b: a user name"},
		{`admin: {users: {ops: }}`, "admin.users.ops: empty entry"},
		{`admin: {users: {a: {role: full, token_sha256: "` + sum + `"}, b: {role: read, token_sha256: "` + strings.ToLower(sum) + `"}}}`, "admin.users.b.token_sha256: the same token as admin user a"},
	} {
		_, err := loadYAML(t, tc.yaml)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.yaml, err, tc.want)
		}
	}
}
