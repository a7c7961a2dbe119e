package config

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"

	"github.com/datagate/datagate/views"
)

// User is one user's profile: credentials for each front-end, the views
// they see with their rights ("r", "rw", "rwd"...), and whether they may
// create views (S3 CreateBucket).
type User struct {
	PasswordHash string            `yaml:"password_hash"` // bcrypt ("datagate passwd" prints one); "" = no password login
	SSHKeys      []string          `yaml:"ssh_keys"`      // authorized_keys lines
	S3Keys       []S3Key           `yaml:"s3_keys"`
	Views        map[string]string `yaml:"views"` // view name -> rights letters
	CreateViews  bool              `yaml:"create_views"`
}

// S3Key is an S3 access key pair.
type S3Key struct {
	ID     string `yaml:"id"`
	Secret string `yaml:"secret"`
}

// Profile returns the user's rights as views needs them. Call it on a
// validated configuration (rights letters parse).
func (u *User) Profile() views.Profile {
	p := views.Profile{Views: make(map[string]views.Rights, len(u.Views)), CreateViews: u.CreateViews}
	for name, r := range u.Views {
		p.Views[name], _ = views.ParseRights(r)
	}
	return p
}

// UserNames returns the user names, sorted.
func (c *Config) UserNames() []string { return sortedKeys(c.Users) }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// checkViews validates views: and users:, naming what is wrong: a view
// name, template or filter that does not parse, a user naming an unknown
// view, bad rights letters, a malformed password hash, SSH key or
// duplicate S3 key id.
func (c *Config) checkViews() error {
	for _, name := range sortedKeys(c.Views) {
		if _, err := views.NewView(name, c.Views[name]); err != nil {
			return fmt.Errorf("config: views.%s: %w", name, err)
		}
	}
	s3ids := map[string]string{}
	for _, name := range sortedKeys(c.Users) {
		u := c.Users[name]
		at := "config: users." + name
		if !nameRE.MatchString(name) {
			return fmt.Errorf("%s: a user name is 1-64 letters, digits, '_', '.', '-'", at)
		}
		if u == nil {
			return fmt.Errorf("%s: empty profile", at)
		}
		if err := checkPasswordHash(u.PasswordHash); err != nil {
			return fmt.Errorf("%s.password_hash: %w", at, err)
		}
		for i, k := range u.SSHKeys {
			if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k)); err != nil {
				return fmt.Errorf("%s.ssh_keys[%d]: %w", at, i, err)
			}
		}
		for i, k := range u.S3Keys {
			switch {
			case k.ID == "" || k.Secret == "":
				return fmt.Errorf("%s.s3_keys[%d]: id and secret are both required", at, i)
			case len(k.Secret) < 8:
				return fmt.Errorf("%s.s3_keys[%d]: secret shorter than 8 characters", at, i)
			case s3ids[k.ID] != "":
				return fmt.Errorf("%s.s3_keys[%d]: access key id %q is also user %s's", at, i, k.ID, s3ids[k.ID])
			}
			s3ids[k.ID] = name
		}
		for _, v := range sortedKeys(u.Views) {
			if _, ok := c.Views[v]; !ok {
				return fmt.Errorf("%s.views.%s: no such view (%s)", at, v, defines("views", sortedKeys(c.Views)))
			}
			if _, err := views.ParseRights(u.Views[v]); err != nil {
				return fmt.Errorf("%s.views.%s: %w", at, v, err)
			}
		}
	}
	return nil
}

// defines says which names a section of the file defines, for errors
// naming one it does not.
func defines(section string, names []string) string {
	if len(names) == 0 {
		return "the configuration has no " + section + ":"
	}
	return section + ": defines " + strings.Join(names, ", ")
}

func checkPasswordHash(h string) error {
	if h == "" {
		return nil
	}
	if !strings.HasPrefix(h, "$2a$") && !strings.HasPrefix(h, "$2b$") && !strings.HasPrefix(h, "$2y$") {
		return errors.New(`not a bcrypt hash (want "$2a$..."; "datagate passwd" prints one)`)
	}
	if _, err := bcrypt.Cost([]byte(h)); err != nil {
		return fmt.Errorf("malformed bcrypt hash: %w", err)
	}
	if len(h) != 60 {
		return errors.New("malformed bcrypt hash: want 60 characters")
	}
	return nil
}
