// Package config reads datagate's YAML configuration. Every setting has a
// default, so no file is needed; with a file, an unknown key anywhere is
// an error naming it.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"gopkg.in/yaml.v3"

	httpbackend "github.com/datagate/datagate/backends/http"
	"github.com/datagate/datagate/backends/local"
	s3backend "github.com/datagate/datagate/backends/s3"
	sftpbackend "github.com/datagate/datagate/backends/sftp"
	"github.com/datagate/datagate/views"
)

// Config is the whole configuration.
type Config struct {
	Data      string               `yaml:"data"`
	Cache     Cache                `yaml:"cache"`
	Providers map[string]*Provider `yaml:"providers"`
	Listen    Listen               `yaml:"listen"`
	Log       Log                  `yaml:"log"`
	// Front-end settings beyond their listen address, one file each.
	WebDAV WebDAV  `yaml:"webdav"`
	SFTP   SFTP    `yaml:"sftp"`
	S3     S3      `yaml:"s3"`
	Mounts []Mount `yaml:"mounts"`
	// Scheduled acquisitions run by serve (acquire.go).
	Acquire []Acquire `yaml:"acquire"`
	// Views and users (views.go).
	Views map[string]views.Def `yaml:"views"`
	Users map[string]*User     `yaml:"users"`
	// Expiry defaults and the collector (lifecycle.go).
	Retention Retention `yaml:"retention"`
	GC        GC        `yaml:"gc"`
	// Copy targets, copies wanted and prefetch (stores.go).
	Stores      []Store    `yaml:"stores"`
	Replicas    int        `yaml:"replicas"`
	KeepFetched bool       `yaml:"keep_fetched"`
	Prefetch    []Prefetch `yaml:"prefetch"`
	// Admin API users (admin.go).
	Admin Admin `yaml:"admin"`
}

// Cache configures the chunk cache.
type Cache struct {
	MaxSize   Size `yaml:"max_size"`   // default 20GiB; 0 in the file means unlimited
	ChunkSize Size `yaml:"chunk_size"` // default 4MiB
	ReadAhead int  `yaml:"read_ahead"` // chunks; default 4
}

// Listen holds the listener addresses. An empty address disables one.
type Listen struct {
	Admin  string `yaml:"admin"`  // default 127.0.0.1:8081
	WebDAV string `yaml:"webdav"` // e.g. 127.0.0.1:8080; default off
	SFTP   string `yaml:"sftp"`   // e.g. 127.0.0.1:2222; default off
	S3     string `yaml:"s3"`     // e.g. 127.0.0.1:9000; default off
}

// Log configures logging.
type Log struct {
	Level string `yaml:"level"` // debug, info, warn, error; default info
	// Format is text, json, or auto: text when standard error is a
	// terminal, JSON lines otherwise (a service's log collector). Default
	// auto; the --log-format flag overrides it.
	Format string `yaml:"format"`
	// Audit is where the audit log goes (every write, rename, delete and
	// failed login): a file, JSON lines appended, created mode 0600
	// (default <data>/audit.log), or "-" for the main log, whose audit
	// records then carry audit=true.
	Audit string `yaml:"audit"`
}

// AuditPath is where the audit log goes with data directory data: a file
// path, or "-" for the main log.
func (l Log) AuditPath(data string) string {
	if l.Audit == "" {
		return filepath.Join(data, "audit.log")
	}
	return l.Audit
}

// Provider is one provider's configuration: its type and that driver's
// own settings.
type Provider struct {
	Type  string
	Local *local.Config
	HTTP  *httpbackend.Config
	S3    *s3backend.Config
	SFTP  *sftpbackend.Config
	// Implicit marks the default provider the file did not define: it
	// lives under the data directory and moves with it (SetData).
	Implicit bool
}

// DefaultProvider is the provider every configuration has unless it
// defines one of that name: a local directory under the data directory
// from which files can be crawled or registered.
const DefaultProvider = "local"

// Default returns the configuration used without a file.
func Default() *Config {
	return &Config{
		Data:   "./var",
		Cache:  Cache{MaxSize: 20 << 30, ChunkSize: 4 << 20, ReadAhead: 4},
		Listen: Listen{Admin: "127.0.0.1:8081"},
		Log:    Log{Level: "info", Format: "auto"},
	}
}

// Load reads the file at path ("" = defaults only) and applies defaults.
func Load(path string) (*Config, error) {
	cfg := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if err := Parse(bytes.NewReader(b), cfg); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	return cfg, cfg.finish()
}

// Parse decodes YAML into cfg, refusing unknown keys.
func Parse(r io.Reader, cfg *Config) error {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return cleanYAMLError(err)
	}
	// What follows a "---" was silently left out.
	for {
		var more yaml.Node
		err := dec.Decode(&more)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return cleanYAMLError(err)
		}
		if len(more.Content) > 0 && more.Content[0].Tag != "!!null" {
			return fmt.Errorf("line %d: a second YAML document (after ---): the configuration is one document", more.Line)
		}
	}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

func (c *Config) finish() error {
	if c.Data == "" {
		c.Data = "./var"
	}
	if c.Cache.ChunkSize <= 0 {
		c.Cache.ChunkSize = 4 << 20
	}
	if c.Cache.ChunkSize < 64<<10 || c.Cache.ChunkSize > 1<<30 {
		return fmt.Errorf("config: cache.chunk_size %s: must be between 64KiB and 1GiB", humanize.IBytes(uint64(c.Cache.ChunkSize)))
	}
	if c.Cache.ReadAhead < 0 {
		return errors.New("config: cache.read_ahead: must not be negative")
	}
	if c.Providers == nil {
		c.Providers = map[string]*Provider{}
	}
	for name := range c.Providers {
		if !nameRE.MatchString(name) {
			return fmt.Errorf("config: providers.%s: a provider name is 1-64 letters, digits, '_', '.', '-'", name)
		}
	}
	if _, ok := c.Providers[DefaultProvider]; !ok {
		c.Providers[DefaultProvider] = &Provider{Type: "local", Local: &local.Config{Root: filepath.Join(c.Data, "import")}, Implicit: true}
	}
	if err := c.checkAcquire(); err != nil {
		return err
	}
	if err := c.checkLifecycle(); err != nil {
		return err
	}
	if err := c.checkStores(); err != nil {
		return err
	}
	if err := c.checkAdmin(); err != nil {
		return err
	}
	for _, l := range []struct{ key, addr string }{{"admin", c.Listen.Admin}, {"webdav", c.Listen.WebDAV}, {"sftp", c.Listen.SFTP}, {"s3", c.Listen.S3}} {
		if _, _, err := net.SplitHostPort(l.addr); l.addr != "" && err != nil {
			return fmt.Errorf("config: listen.%s %q: want host:port, e.g. \"127.0.0.1:8080\" (\":8080\" for every address)", l.key, l.addr)
		}
	}
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config: log.level %q: want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "text", "json", "auto":
	default:
		return fmt.Errorf("config: log.format %q: want text, json or auto", c.Log.Format)
	}
	return c.checkViews()
}

// SetData moves the data directory (the --data flag). The default
// provider, when the file did not define one, moves with it: it is
// DATA/import whichever way DATA was given.
func (c *Config) SetData(dir string) {
	if p := c.Providers[DefaultProvider]; p != nil && p.Implicit {
		p.Local.Root = filepath.Join(dir, "import")
	}
	c.Data = dir
}

// ProviderNames returns the provider names, sorted.
func (c *Config) ProviderNames() []string {
	names := make([]string, 0, len(c.Providers))
	for n := range c.Providers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// UnmarshalYAML decodes a provider by its type, refusing keys the driver
// does not know.
func (p *Provider) UnmarshalYAML(n *yaml.Node) error {
	var head struct {
		Type string `yaml:"type"`
	}
	if err := n.Decode(&head); err != nil {
		return err
	}
	// Re-encode without "type" and decode strictly into the driver's config.
	body := &yaml.Node{Kind: yaml.MappingNode, Tag: n.Tag, Line: n.Line, Column: n.Column}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != "type" {
			body.Content = append(body.Content, n.Content[i], n.Content[i+1])
		}
	}
	// Node.Decode has no KnownFields: the keys are checked here, and the
	// body decoded in place so that errors give the file's own lines (a
	// re-encoded copy numbered them from its own first line).
	strict := func(v any) error {
		known := yamlKeys(reflect.TypeOf(v).Elem())
		for i := 0; i+1 < len(body.Content); i += 2 {
			k, val := body.Content[i], body.Content[i+1]
			if known[k.Value] == nil {
				return fmt.Errorf("line %d: unknown key %q", k.Line, k.Value)
			}
			if known[k.Value] == durationType && val.Kind == yaml.ScalarNode {
				// The drivers' durations take days too, as the
				// configuration's own do ("timeout: 1d").
				d, err := ParseDuration(val.Value)
				if err != nil {
					return fmt.Errorf("line %d: %w", val.Line, err)
				}
				val.Value = d.String()
			}
		}
		return body.Decode(v)
	}
	p.Type = head.Type
	switch head.Type {
	case "local":
		p.Local = &local.Config{}
		return strict(p.Local)
	case "http", "https":
		p.HTTP = &httpbackend.Config{}
		return strict(p.HTTP)
	case "s3":
		p.S3 = &s3backend.Config{}
		return strict(p.S3)
	case "sftp":
		p.SFTP = &sftpbackend.Config{}
		return strict(p.SFTP)
	case "":
		return fmt.Errorf("line %d: provider has no type (local, http, s3 or sftp)", n.Line)
	}
	return fmt.Errorf("line %d: unknown provider type %q (want local, http, s3 or sftp)", n.Line, head.Type)
}

// yamlKeys returns the keys yaml.v3 decodes into struct type t, with the
// type of each.
func yamlKeys(t reflect.Type) map[string]reflect.Type {
	keys := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		keys[name] = f.Type
	}
	return keys
}

var durationType = reflect.TypeOf(time.Duration(0))

var (
	unknownFieldRE = regexp.MustCompile(`field (\S+) not found in type \S+`)
	bareDurationRE = regexp.MustCompile("cannot unmarshal !!(?:int|float) `([^`]*)` into time.Duration")
	quotedValueRE  = regexp.MustCompile("(!!\\w+) `[^`]*`")
)

// cleanYAMLError turns yaml.v3's "field x not found in type config.T"
// into "unknown key x", and its refusal of a duration without a unit
// into one that says what is wanted. Other values yaml.v3 quotes are
// left out: the value of a misplaced secret (s3_keys: "ID:SECRET") would
// otherwise reach the log of a refused reload.
func cleanYAMLError(err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n  ")
	msg = unknownFieldRE.ReplaceAllString(msg, "unknown key \"$1\"")
	msg = bareDurationRE.ReplaceAllString(msg, "bad duration $1: want a number with a unit (30s, 5m, 2h)")
	msg = quotedValueRE.ReplaceAllString(msg, "$1")
	if strings.Contains(msg, "found character that cannot start any token") {
		msg += " (a tab? YAML indents with spaces)"
	}
	return errors.New(msg)
}

// Size is a byte count written like "20GiB", "4MiB" or "1000000".
type Size int64

// UnmarshalYAML parses human-readable sizes.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := humanize.ParseBytes(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: bad size %q: want a byte count such as 1000000, 4MiB or 20GiB", n.Line, n.Value)
	}
	*s = Size(v)
	return nil
}

// Duration is a time.Duration that also accepts days ("7d").
type Duration time.Duration

// UnmarshalYAML parses "90s", "12h", "7d".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// ParseDuration is time.ParseDuration plus a "d" (24h) suffix.
func ParseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		var n float64
		if _, err := fmt.Sscanf(d, "%g", &n); err != nil || n < 0 {
			return 0, fmt.Errorf("bad duration %q: want a number with a unit (90s, 12h, 7d)", s)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q: want a number with a unit (90s, 12h, 7d)", s)
	}
	return v, nil
}
