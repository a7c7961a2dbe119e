package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Mount is one FUSE mount the server makes (gateway/fuse): a user's tree
// at a directory. `datagate serve --mount NAME:MOUNTPOINT` adds one.
type Mount struct {
	User       string   `yaml:"user"`
	Path       string   `yaml:"path"`        // the mount point, an existing directory
	ReadOnly   bool     `yaml:"read_only"`   // even if the user has write rights
	AllowOther bool     `yaml:"allow_other"` // let other local users in
	Timeout    Duration `yaml:"timeout"`     // bounds each call into the store; default 1m
}

// ParseMountFlag parses NAME:MOUNTPOINT[:ro].
func ParseMountFlag(s string) (Mount, error) {
	user, path, ok := strings.Cut(s, ":")
	if !ok || user == "" || path == "" {
		return Mount{}, fmt.Errorf("--mount %q: want NAME:MOUNTPOINT (or NAME:MOUNTPOINT:ro)", s)
	}
	m := Mount{User: user, Path: path}
	if p, ok := strings.CutSuffix(path, ":ro"); ok {
		m.Path, m.ReadOnly = p, true
	}
	return m, nil
}

// CheckMounts validates mounts:, naming the entry: a known user, a mount
// point, each mount point once, a sane timeout.
func (c *Config) CheckMounts() error {
	seen := map[string]int{}
	for i, m := range c.Mounts {
		at := fmt.Sprintf("config: mounts[%d]", i)
		if _, ok := c.Users[m.User]; !ok {
			return fmt.Errorf("%s.user: no such user %q (%s)", at, m.User, defines("users", c.UserNames()))
		}
		if m.Path == "" {
			return fmt.Errorf("%s.path: a mount point is required", at)
		}
		abs, err := filepath.Abs(m.Path)
		if err != nil {
			return fmt.Errorf("%s.path: %w", at, err)
		}
		if j, dup := seen[abs]; dup {
			return fmt.Errorf("%s.path: %s is also mounts[%d]'s", at, abs, j)
		}
		seen[abs] = i
		if t := time.Duration(m.Timeout); t != 0 && t < time.Second {
			return fmt.Errorf("%s.timeout: %v is below 1s", at, t)
		}
	}
	return nil
}
