package config

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// Stores, replicas and prefetch:
//
//	stores:                  # copy targets after the primary, in order of preference
//	  - name: second
//	    type: local          # any provider type that can write: local, s3, sftp
//	    root: /mnt/b/datagate
//	  - name: offsite
//	    type: s3
//	    endpoint: s3.example.org
//	    bucket: datagate
//	    concurrency: 4       # copies in flight to this store; default 2
//	replicas: 2              # verified copies wanted, the primary counting as one
//	keep_fetched: true       # fetched content is copied too once whole
//	prefetch:                # fetched ahead of demand
//	  - provider: mars
//	    priority: high       # high, normal (default) or low
//	  - view: by-date
//	    priority: low

// Store is one copy target: a name, the provider settings of its driver
// and how many copies may be in flight to it.
type Store struct {
	Name        string
	Concurrency int
	Provider
}

// UnmarshalYAML takes name and concurrency, then decodes the rest as a
// provider (strictly, by its type).
func (s *Store) UnmarshalYAML(n *yaml.Node) error {
	rest := &yaml.Node{Kind: yaml.MappingNode, Tag: n.Tag, Line: n.Line, Column: n.Column}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "name":
			s.Name = v.Value
		case "concurrency":
			if err := v.Decode(&s.Concurrency); err != nil {
				return fmt.Errorf("line %d: concurrency: %w", v.Line, err)
			}
		default:
			rest.Content = append(rest.Content, k, v)
		}
	}
	return s.Provider.UnmarshalYAML(rest)
}

// Prefetch marks a provider's or a view's objects for fetching ahead of
// demand. Exactly one of Provider and View is set.
type Prefetch struct {
	Provider string `yaml:"provider"`
	View     string `yaml:"view"`
	Priority string `yaml:"priority"` // high, normal or low; default normal
}

// checkStores validates stores, replicas and prefetch.
func (c *Config) checkStores() error {
	seen := map[string]bool{"primary": true}
	for i := range c.Stores {
		s := &c.Stores[i]
		at := fmt.Sprintf("config: stores[%d]", i)
		if !nameRE.MatchString(s.Name) {
			return fmt.Errorf("%s: name %q: a store name is 1-64 letters, digits, '_', '.', '-'", at, s.Name)
		}
		if seen[s.Name] {
			return fmt.Errorf("%s: name %q is taken (\"primary\" is the primary store's)", at, s.Name)
		}
		seen[s.Name] = true
		if s.HTTP != nil {
			return fmt.Errorf("%s (%s): an http provider cannot hold copies; use local, s3 or sftp", at, s.Name)
		}
		if s.Concurrency < 0 || s.Concurrency > 256 {
			return fmt.Errorf("%s (%s): concurrency %d: must be between 1 and 256", at, s.Name, s.Concurrency)
		}
		if s.Concurrency == 0 {
			s.Concurrency = 2
		}
	}
	if c.Replicas < 0 {
		return fmt.Errorf("config: replicas %d: must not be negative", c.Replicas)
	}
	if c.Replicas > 1+len(c.Stores) {
		return fmt.Errorf("config: replicas %d: only %d stores (the primary and %d listed)", c.Replicas, 1+len(c.Stores), len(c.Stores))
	}
	for i, p := range c.Prefetch {
		at := fmt.Sprintf("config: prefetch[%d]", i)
		switch {
		case (p.Provider == "") == (p.View == ""):
			return fmt.Errorf("%s: give either provider or view", at)
		case p.Provider != "":
			if _, ok := c.Providers[p.Provider]; !ok {
				return fmt.Errorf("%s: unknown provider %q", at, p.Provider)
			}
		default:
			if _, ok := c.Views[p.View]; !ok {
				return fmt.Errorf("%s: unknown view %q (only views of the configuration)", at, p.View)
			}
		}
		switch p.Priority {
		case "", "high", "normal", "low":
		default:
			return fmt.Errorf("%s: priority %q: want high, normal or low", at, p.Priority)
		}
	}
	return nil
}
