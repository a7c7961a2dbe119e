package config

import (
	"fmt"
	"time"
)

// Retention says how long objects that arrive without an expiry time are
// kept, counted from when they are indexed:
//
//	retention:
//	  default: 7d      # pushed objects, and providers not listed
//	  providers:
//	    mars: 2d
//	    archive: 0     # 0 = keep for ever (overrides the default)
//	  views:
//	    by-date: 30d   # objects in this view (configured views only)
//
// Without a default, objects are kept for ever. Objects that carry an
// expiry time keep theirs. An object in views listed here is kept as long
// as the longest of their retentions (0 = for ever wins): a view that
// wants it keeps it. Otherwise its provider's retention, then the default.
type Retention struct {
	Default   Duration            `yaml:"default"`
	Providers map[string]Duration `yaml:"providers"`
	Views     map[string]Duration `yaml:"views"`
}

// For returns the retention of an object registered from provider
// ("" for a pushed object); 0 means for ever.
func (r Retention) For(provider string) time.Duration {
	if provider != "" {
		if d, ok := r.Providers[provider]; ok {
			return time.Duration(d)
		}
	}
	return time.Duration(r.Default)
}

// GC configures the collector that serve runs:
//
//	gc:
//	  interval: 1m            # how often expired objects are collected
//	  batch: 1000             # objects per index transaction (readers wait behind each)
//	  delete_at_source: [mars] # also delete the provider's file (whole-file objects only)
type GC struct {
	Interval       Duration `yaml:"interval"`
	Batch          int      `yaml:"batch"`
	DeleteAtSource []string `yaml:"delete_at_source"`
}

// checkLifecycle applies the defaults of retention and gc and checks that
// they name configured providers.
func (c *Config) checkLifecycle() error {
	if c.Retention.Default < 0 {
		return fmt.Errorf("config: retention.default: must not be negative")
	}
	for name, d := range c.Retention.Providers {
		if _, ok := c.Providers[name]; !ok {
			return fmt.Errorf("config: retention.providers.%s: no such provider", name)
		}
		if d < 0 {
			return fmt.Errorf("config: retention.providers.%s: must not be negative", name)
		}
	}
	for name, d := range c.Retention.Views {
		if _, ok := c.Views[name]; !ok {
			return fmt.Errorf("config: retention.views.%s: no such view", name)
		}
		if d < 0 {
			return fmt.Errorf("config: retention.views.%s: must not be negative", name)
		}
	}
	if c.GC.Interval == 0 {
		c.GC.Interval = Duration(time.Minute)
	}
	if c.GC.Interval < Duration(time.Second) {
		return fmt.Errorf("config: gc.interval %v: must be at least 1s", time.Duration(c.GC.Interval))
	}
	if c.GC.Batch == 0 {
		c.GC.Batch = 1000
	}
	if c.GC.Batch < 1 || c.GC.Batch > 100000 {
		return fmt.Errorf("config: gc.batch %d: must be between 1 and 100000", c.GC.Batch)
	}
	for _, name := range c.GC.DeleteAtSource {
		p, ok := c.Providers[name]
		switch {
		case !ok:
			return fmt.Errorf("config: gc.delete_at_source: no such provider %q", name)
		case p.HTTP != nil:
			// HTTP has no delete: the collector would only log a
			// refusal for every expired object.
			return fmt.Errorf("config: gc.delete_at_source: provider %q is %s, which cannot delete files (local, s3 and sftp providers can)", name, p.Type)
		}
	}
	return nil
}
