package config

import (
	"fmt"
	"net/url"
)

// Secrets names the keys of the configuration that hold a usable secret
// in clear (a provider's or store's password, secret key, key passphrase,
// headers or password in a URL; a user's S3 secret keys), never their
// values. Hashes (password_hash, token_sha256) are not counted.
func (c *Config) Secrets() []string {
	var out []string
	for _, name := range c.ProviderNames() {
		for _, k := range c.Providers[name].secrets() {
			out = append(out, "providers."+name+"."+k)
		}
	}
	for i, s := range c.Stores {
		for _, k := range s.Provider.secrets() {
			out = append(out, fmt.Sprintf("stores[%d].%s", i, k))
		}
	}
	for _, name := range c.UserNames() {
		if len(c.Users[name].S3Keys) > 0 {
			out = append(out, "users."+name+".s3_keys")
		}
	}
	return out
}

func (p *Provider) secrets() []string {
	var out []string
	add := func(key string, set bool) {
		if set {
			out = append(out, key)
		}
	}
	switch {
	case p.S3 != nil:
		add("secret_key", p.S3.SecretKey != "")
	case p.SFTP != nil:
		add("password", p.SFTP.Password != "")
		add("key_passphrase", p.SFTP.KeyPassphrase != "")
	case p.HTTP != nil:
		add("headers", len(p.HTTP.Headers) > 0)
		withPassword := false
		for _, u := range append([]string{p.HTTP.URL}, p.HTTP.URLs...) {
			if pu, err := url.Parse(u); err == nil && pu.User != nil {
				_, set := pu.User.Password()
				withPassword = withPassword || set
			}
		}
		add("url", withPassword)
	}
	return out
}
