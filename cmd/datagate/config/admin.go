package config

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// Admin configures the admin API's users. Each has a role, read (every
// GET route) or full (everything), and at least one credential: a bcrypt
// password hash for HTTP Basic ("datagate passwd" prints one) and/or the
// SHA-256 of a bearer token, in hex (printf %s "$TOKEN" | sha256sum).
// The data directory's admin.token is always accepted with the full role.
//
//	admin:
//	  users:
//	    ops:     {role: full, password_hash: "$2a$10$..."}
//	    grafana: {role: read, token_sha256: "9f86d08..."}
type Admin struct {
	Users map[string]*AdminUser `yaml:"users"`
}

// AdminUser is one admin API user.
type AdminUser struct {
	Role         string `yaml:"role"`          // read or full
	PasswordHash string `yaml:"password_hash"` // bcrypt; "" = no Basic login
	TokenSHA256  string `yaml:"token_sha256"`  // hex SHA-256 of a bearer token; "" = none
}

// Token returns the token digest's bytes (nil when there is none). Call
// it on a validated configuration.
func (u *AdminUser) Token() []byte {
	if u.TokenSHA256 == "" {
		return nil
	}
	b, _ := hex.DecodeString(u.TokenSHA256)
	return b
}

// AdminUserNames returns the admin user names, sorted.
func (c *Config) AdminUserNames() []string { return sortedKeys(c.Admin.Users) }

// checkAdmin validates admin.users: names, roles, that each user can log
// in somehow, hashes and token digests well formed, no token digest
// shared by two users (it would make the caller ambiguous).
func (c *Config) checkAdmin() error {
	tokens := map[string]string{}
	for _, name := range sortedKeys(c.Admin.Users) {
		u := c.Admin.Users[name]
		at := "config: admin.users." + name
		if !nameRE.MatchString(name) {
			return fmt.Errorf("%s: a user name is 1-64 letters, digits, '_', '.', '-'", at)
		}
		if u == nil {
			return fmt.Errorf("%s: empty entry (want role and password_hash or token_sha256)", at)
		}
		switch u.Role {
		case "read", "full":
		case "":
			return fmt.Errorf("%s.role: missing (read or full)", at)
		default:
			return fmt.Errorf("%s.role %q: want read or full", at, u.Role)
		}
		if u.PasswordHash == "" && u.TokenSHA256 == "" {
			return fmt.Errorf("%s: no credential: give password_hash or token_sha256", at)
		}
		if err := checkPasswordHash(u.PasswordHash); err != nil {
			return fmt.Errorf("%s.password_hash: %w", at, err)
		}
		if u.TokenSHA256 != "" {
			u.TokenSHA256 = strings.ToLower(u.TokenSHA256)
			if b, err := hex.DecodeString(u.TokenSHA256); err != nil || len(b) != 32 {
				return fmt.Errorf("%s.token_sha256: want 64 hex digits, the SHA-256 of the token (printf %%s \"$TOKEN\" | sha256sum)", at)
			}
			if other := tokens[u.TokenSHA256]; other != "" {
				return fmt.Errorf("%s.token_sha256: the same token as admin user %s", at, other)
			}
			tokens[u.TokenSHA256] = name
		}
	}
	return nil
}
