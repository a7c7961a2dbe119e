package ingest

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
	"github.com/datagate/datagate/fs/pathtmpl"
)

// CrawlOptions say what to register from a provider listing.
type CrawlOptions struct {
	Prefix string // directory of the provider to list ("" = root)
	// Match is a path.Match glob. Without a "/" it applies to the file's
	// base name, with one to its path relative to Prefix.
	Match string
	Meta  map[string]string // added to every object
	// Template, when set, parses each path relative to Prefix into
	// metadata; files that do not fit it are skipped (and counted).
	// A {name} placeholder names the object; otherwise the base name does.
	Template  *pathtmpl.Template
	BatchSize int // ≤ 0: 1000
	// Regexp, when set, must match the path relative to Prefix.
	Regexp *regexp.Regexp
	// MinAge skips files modified less than this long ago (still being
	// written by the provider); they are picked up by a later crawl.
	MinAge time.Duration
	// MinSize and MaxSize (0: no limit) bound the file sizes registered.
	MinSize, MaxSize int64
	Now              func() time.Time // for MinAge; default time.Now
}

// CrawlStats count a crawl's progress.
type CrawlStats struct {
	Listed    int `json:"listed"`
	Skipped   int `json:"skipped"` // did not match the glob or the template
	Added     int `json:"added"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
}

// Crawl lists provider p and registers every matching file. It is
// idempotent: files registered before with the same size, mtime and etag
// and the same name and metadata (from the template and Meta) are left
// alone, renamed ones included; changed files get a new version, and
// files the crawl names or describes otherwise than the last
// registration move (index.Register).
func Crawl(ctx context.Context, st Registrar, p backends.Provider, opts CrawlOptions, progress func(CrawlStats)) (CrawlStats, error) {
	var stats CrawlStats
	if opts.Match != "" {
		if _, err := path.Match(opts.Match, ""); err != nil {
			return stats, fs.E(fs.Invalid, "crawl", opts.Match, fmt.Errorf("bad --match glob: %w", err))
		}
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 1000
	}
	prefix := strings.Trim(opts.Prefix, "/")
	batch := make([]*fs.Object, 0, opts.BatchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		out, err := register(ctx, st, batch)
		if err != nil {
			return err
		}
		for _, o := range out {
			switch o {
			case index.Added:
				stats.Added++
			case index.Updated:
				stats.Updated++
			case index.Unchanged:
				stats.Unchanged++
			}
		}
		batch = batch[:0]
		if progress != nil {
			progress(stats)
		}
		return nil
	}
	err := p.List(ctx, prefix, func(e backends.Entry) error {
		stats.Listed++
		rel := strings.TrimPrefix(strings.TrimPrefix(e.Path, prefix), "/")
		o, ok := crawlObject(p.Name(), e, rel, opts)
		if !ok {
			stats.Skipped++
			return nil
		}
		if err := st.Check(o); err != nil {
			return err
		}
		batch = append(batch, o)
		if len(batch) == opts.BatchSize {
			return flush()
		}
		return nil
	})
	if err != nil && !(errors.Is(err, iofs.ErrNotExist) && stats.Listed == 0) {
		return stats, fs.Wrap("crawl", p.Name()+":"+prefix, err)
	}
	return stats, flush()
}

func crawlObject(provider string, e backends.Entry, rel string, opts CrawlOptions) (*fs.Object, bool) {
	if e.Size < opts.MinSize || (opts.MaxSize > 0 && e.Size > opts.MaxSize) {
		return nil, false
	}
	if opts.MinAge > 0 {
		now := time.Now
		if opts.Now != nil {
			now = opts.Now
		}
		if now().Sub(e.ModTime) < opts.MinAge {
			return nil, false
		}
	}
	if opts.Regexp != nil && !opts.Regexp.MatchString(rel) {
		return nil, false
	}
	if opts.Match != "" {
		subject := path.Base(rel)
		if strings.Contains(opts.Match, "/") {
			subject = rel
		}
		if ok, _ := path.Match(opts.Match, subject); !ok {
			return nil, false
		}
	}
	meta := make(map[string]string, len(opts.Meta)+4)
	name := path.Base(rel)
	if opts.Template != nil {
		m, err := opts.Template.Match(rel)
		if err != nil {
			return nil, false
		}
		for k, v := range m {
			if k == "name" {
				name = v
				continue
			}
			meta[k] = v
		}
	}
	for k, v := range opts.Meta {
		meta[k] = v
	}
	return &fs.Object{
		Name: name, Meta: meta, Size: e.Size, ModTime: e.ModTime.UTC(), ETag: e.ETag,
		Source: fs.Location{Provider: provider, Path: e.Path},
	}, true
}
