package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/fs"
)

// Reading falls back along cache → healthy stores holding a verified copy
// → the provider. The cache is the caller (it asks fetchRange only for
// chunks it lacks); this file picks the location for each fetch and keeps
// the health of each (backends/health): a location that fails is passed
// over for a back-off period, then probed again by one fetch.

// openPrimary opens the primary store's file of a pushed object.
func (s *Store) openPrimary(o *fs.Object) (*os.File, error) {
	p, err := s.primaryFS.LocalPath(primaryPath(o.ID))
	if err != nil {
		return nil, fs.Wrap("open", o.ID.String(), err)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fs.Wrap("open", o.ID.String(), err)
	}
	return f, nil
}

// hasOtherCopy reports whether a store other than the primary holds a
// verified copy of o.
func (s *Store) hasOtherCopy(o *fs.Object) bool {
	for _, name := range o.Stores {
		if name != PrimaryName && s.storeWriter(name) != nil {
			return true
		}
	}
	return false
}

// storeWriter returns the store called name (the primary included), or
// nil when it is not configured (any more).
func (s *Store) storeWriter(name string) backends.Writer {
	if name == PrimaryName {
		return s.primary
	}
	if s.rep == nil {
		return nil
	}
	if t := s.rep.targets[name]; t != nil {
		return t.w
	}
	return nil
}

// copyPath is where every store keeps o's content. Pushed content is
// named by id alone (one version per id), as in the primary; fetched
// content by id and version, since a re-crawl may change it under one id.
func copyPath(o *fs.Object) string {
	if o.State == fs.StateStored {
		return primaryPath(o.ID)
	}
	id := o.ID.String()
	return path.Join(id[24:26], o.ContentKey())
}

// providerHealth is a provider's name in the health tracker, apart from
// stores of the same name.
func providerHealth(name string) string { return "provider:" + name }

// fetchRange returns the bytes [off, off+n) of o's content from the first
// location that answers: the stores holding a copy (healthy ones first, in
// the order o.Stores lists them), then o's provider. Every failure is
// counted against its location and the error names them all.
func (s *Store) fetchRange(ctx context.Context, o *fs.Object, off, n int64) (io.ReadCloser, error) {
	var errs []error
	var skipped []string // backing off
	try := func(name string) (io.ReadCloser, error) {
		rc, err := s.storeWriter(name).Open(ctx, copyPath(o), off, n)
		if err = s.health.Report(name, err); err == nil {
			return &healthReader{rc: rc, name: name, s: s}, nil
		}
		if ctx.Err() == nil {
			s.log.Warn("store copy unreadable, trying the next location", "id", o.ID, "store", name, "err", err)
		}
		errs = append(errs, fmt.Errorf("store %s: %w", name, err))
		return nil, err
	}
	for _, name := range s.health.Order(s.rep.sortedStores(o.Stores)) {
		if s.storeWriter(name) == nil || (name == PrimaryName && o.State == fs.StateStored) {
			// A stored object is fetched only when its primary file
			// failed to open or its check (integrity.go).
			continue
		}
		if !s.health.Usable(name) {
			skipped = append(skipped, name)
			continue
		}
		rc, err := try(name)
		if err == nil {
			return rc, nil
		}
		if ctx.Err() != nil {
			return nil, fs.E(fs.KindOf(err), "fetch", o.ID.String(), err)
		}
	}
	src := o.Source
	if src.IsZero() {
		// No provider to fall back on: the stores backing off are the
		// last resort.
		for _, name := range skipped {
			if rc, err := try(name); err == nil {
				return rc, nil
			}
		}
		return nil, fetchFailed(o, errs)
	}
	prov, ok := s.providers.get(src.Provider)
	if !ok {
		return nil, fetchFailed(o, append(errs, fmt.Errorf("unknown provider %q", src.Provider)))
	}
	// The provider is the last resort: it is tried even while unhealthy
	// (its own retries and timeout bound the attempt).
	rc, err := s.fetchProvider(ctx, prov, src.Provider, src.Path, src.Offset+off, n, sourceFileSize(o))
	if err = s.health.Report(providerHealth(src.Provider), err); err != nil {
		err = fs.E(fs.KindOf(err), "fetch", fmt.Sprintf("%s:%s@%d", src.Provider, src.Path, src.Offset+off), err)
		if len(errs) == 0 {
			return nil, err
		}
		return nil, fetchFailed(o, append(errs, err))
	}
	// Counted (stats.go) but otherwise as the provider gives it: the
	// provider's retry decorator handles mid-stream failures.
	return rc, nil
}

// fetchFailed is the error of a fetch no location could serve: Unavailable
// (try again later) unless every location said the content does not exist.
func fetchFailed(o *fs.Object, errs []error) error {
	if len(errs) == 0 {
		return fs.E(fs.Unavailable, "fetch", o.ID.String(), errors.New("no location holds a copy"))
	}
	kind := fs.NotExist
	for _, err := range errs {
		if fs.KindOf(err) != fs.NotExist {
			kind = fs.Unavailable
		}
	}
	return fs.E(kind, "fetch", o.ID.String(), errors.Join(errs...))
}

// healthReader counts a failure mid-stream against its location, so a
// store that breaks while being read is passed over next time.
type healthReader struct {
	rc   io.ReadCloser
	name string
	s    *Store
}

func (h *healthReader) Read(p []byte) (int, error) {
	n, err := h.rc.Read(p)
	if err != nil && err != io.EOF && !errors.Is(err, context.Canceled) {
		h.s.health.Failure(h.name)
	}
	return n, err
}

func (h *healthReader) Close() error { return h.rc.Close() }

// sourceFileSize is the size o's provider file must have for its bytes to
// be o's, or -1 when the object is a range that ends before the file
// does (a file that grew after it is not told from one rewritten).
func sourceFileSize(o *fs.Object) int64 {
	if o.Source.Length > 0 || o.Size < 0 {
		return -1
	}
	return o.Source.Offset + o.Size
}
