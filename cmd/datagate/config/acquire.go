package config

import (
	"fmt"
	"regexp"
	"time"

	"github.com/datagate/datagate/fs/pathtmpl"
)

// Acquire is one scheduled acquisition: `datagate serve` crawls the
// provider every Interval and registers what is new or changed.
type Acquire struct {
	Provider     string            `yaml:"provider"`
	Prefix       string            `yaml:"prefix"`
	Match        string            `yaml:"match"`  // glob on the base name (path if it has a '/')
	Regexp       string            `yaml:"regexp"` // on the path relative to prefix
	MinAge       Duration          `yaml:"min_age"`
	MinSize      Size              `yaml:"min_size"`
	MaxSize      Size              `yaml:"max_size"`
	PathTemplate string            `yaml:"path_template"`
	Meta         map[string]string `yaml:"meta"`
	Interval     Duration          `yaml:"interval"` // default 10m

	// Compiled by check.
	Re       *regexp.Regexp     `yaml:"-"`
	Template *pathtmpl.Template `yaml:"-"`
}

// checkAcquire validates the acquisition entries, compiling patterns.
func (c *Config) checkAcquire() error {
	for i := range c.Acquire {
		a := &c.Acquire[i]
		where := fmt.Sprintf("config: acquire[%d]", i)
		if _, ok := c.Providers[a.Provider]; !ok {
			return fmt.Errorf("%s: unknown provider %q", where, a.Provider)
		}
		if a.Interval == 0 {
			a.Interval = Duration(10 * time.Minute)
		}
		if time.Duration(a.Interval) < time.Second {
			return fmt.Errorf("%s: interval %v is below 1s", where, time.Duration(a.Interval))
		}
		if a.Regexp != "" {
			re, err := regexp.Compile(a.Regexp)
			if err != nil {
				return fmt.Errorf("%s: regexp: %w", where, err)
			}
			a.Re = re
		}
		if a.PathTemplate != "" {
			t, err := pathtmpl.Parse(a.PathTemplate)
			if err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			a.Template = t
		}
	}
	return nil
}
