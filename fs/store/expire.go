package store

import (
	"context"
	"errors"
	iofs "io/fs"
	"os"
	"sync"
	"time"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/fs"
)

// Expiry and garbage collection.
//
// An object expires at Object.Expires. Objects registered or pushed without
// one get Options.Retention's, counted from when they are indexed. The
// collector (Collect, RunCollector) removes expired objects in batches of
// bounded index transactions, oldest expiry first (readers' lookups never
// wait behind them: fs/index/snapshot.go); then it drops their content:
//
//   - cache entries: cache.Remove unlinks them; Files open on them keep
//     reading (and fetching) through their descriptors until closed;
//   - primary-store files: unlinked after the index commit; a Reader holds
//     the open *os.File, which stays readable until closed;
//   - the provider's file, for providers in Options.DeleteAtSource, only
//     for objects registered as a whole file (offset 0, no length) and only
//     when no other object is registered at any range of that file: one
//     provider file may hold many objects (a GRIB file's fields), and
//     ranges are never a reason to delete the file they belong to. While a
//     Reader is open on the object the deletion waits (its missing chunks
//     may still need the file) and is retried by the next Collect after the
//     last Reader closes. Pending deletions live in memory: a restart
//     forgets them and the provider's file stays.
//
// A crash between the index commit and the unlinks leaves files that no
// object references: fsck reports them and removes them with Repair.

// pins counts the Readers open on registered content, per object, and
// holds the provider-file deletions waiting for them to close.
type pins struct {
	mu      sync.Mutex
	n       map[fs.ID]int
	pending map[fs.ID]fs.Location
}

func (p *pins) hold(id fs.ID) {
	p.mu.Lock()
	if p.n == nil {
		p.n = make(map[fs.ID]int)
	}
	p.n[id]++
	p.mu.Unlock()
}

func (p *pins) release(id fs.ID) {
	p.mu.Lock()
	if p.n[id]--; p.n[id] <= 0 {
		delete(p.n, id)
	}
	p.mu.Unlock()
}

// deferIfHeld records a source deletion for later if a Reader holds id.
func (p *pins) deferIfHeld(id fs.ID, l fs.Location) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[id] == 0 {
		return false
	}
	if p.pending == nil {
		p.pending = make(map[fs.ID]fs.Location)
	}
	p.pending[id] = l
	return true
}

// takeReleased removes and returns the pending deletions no Reader holds.
func (p *pins) takeReleased() map[fs.ID]fs.Location {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out map[fs.ID]fs.Location
	for id, l := range p.pending {
		if p.n[id] == 0 {
			if out == nil {
				out = make(map[fs.ID]fs.Location)
			}
			out[id] = l
			delete(p.pending, id)
		}
	}
	return out
}

// applyRetention gives o the configured default expiry when it has none.
func (s *Store) applyRetention(o *fs.Object, now time.Time) {
	if s.retention == nil || !o.Expires.IsZero() {
		return
	}
	if d := s.retention(o); d > 0 {
		o.Expires = now.Add(d).UTC()
	}
}

// CollectStats counts what one Collect removed.
type CollectStats struct {
	Objects     int64 // objects removed from the catalogue
	Bytes       int64 // content freed: cached bytes, stored copies, provider files
	SourceFiles int64 // provider files deleted (delete_at_source)
	Batches     int   // index transactions
	Duration    time.Duration
}

// DefaultCollectBatch is the batch size Collect uses for batch <= 0.
//
// Readers (each Get, Find, stat) do not wait for the collector's commits:
// they read the index's shared snapshot, which the collector moves on
// after each batch. A writer does wait, for the batch being applied
// (about eight skiplist inserts per object: record, postings, source,
// expiry), before its own write is visible: 1,000 objects keep that to a
// few milliseconds while making per-batch costs negligible.
const DefaultCollectBatch = 1000

// Collect removes the objects that expired at or before now, in index
// transactions of at most batch objects, and drops their content (see the
// comment at the top of expire.go). It returns what it removed; on error
// (or cancellation) what was removed before stays removed. Safe to run
// concurrently with readers and writers; concurrent Collects are safe but
// pointless.
func (s *Store) Collect(ctx context.Context, now time.Time, batch int) (CollectStats, error) {
	if batch <= 0 {
		batch = DefaultCollectBatch
	}
	var st CollectStats
	start := time.Now()
	for id, l := range s.pins.takeReleased() {
		s.deleteSource(ctx, id, l, -1, &st)
	}
	// Content is dropped batch by batch after each commit, while the next
	// batch commits.
	var err error
	st.Batches, err = s.idx.CollectExpired(ctx, now, batch, func(objs []*fs.Object) {
		s.st.collected.Add(uint64(len(objs)))
		for _, o := range objs {
			st.Objects++
			s.dropExpired(ctx, o, &st)
		}
		s.log.Debug("gc: batch", "objects", len(objs), "total", st.Objects)
	})
	st.Duration = time.Since(start)
	if st.Objects > 0 || st.SourceFiles > 0 || err != nil {
		s.log.Info("gc: removed expired objects", "objects", st.Objects, "bytes_freed", st.Bytes,
			"source_files", st.SourceFiles, "batches", st.Batches, "duration", st.Duration.Round(time.Millisecond), "err", err)
	}
	if err != nil {
		return st, fs.Wrap("collect", "", err)
	}
	return st, nil
}

// RunCollector runs Collect every interval (and once at once) until ctx is
// done or the store closes. Errors are logged; the next round retries.
func (s *Store) RunCollector(ctx context.Context, interval time.Duration, batch int) {
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.Collect(ctx, s.now(), batch); err != nil && ctx.Err() == nil {
			s.log.Error("gc: collect", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.closed:
			return
		case <-t.C:
		}
	}
}

// dropExpired removes the content of an object the index no longer holds.
// Failures cost only space (fsck finds what is left), so they are logged.
func (s *Store) dropExpired(ctx context.Context, o *fs.Object, st *CollectStats) {
	key := o.ContentKey()
	// Lookup first: for the common registered-never-read object it answers
	// from memory, where Remove of an unknown key would touch the disk.
	if info, ok := s.cache.Lookup(key); ok {
		if err := s.cache.Remove(key); err != nil {
			s.log.Warn("gc: drop cached content", "id", o.ID, "err", err)
		} else {
			st.Bytes += info.Present
		}
	}
	if o.State == fs.StateStored {
		// Unlink without the Writer's directory fsync: losing the unlink
		// in a crash only leaves an orphan that fsck removes, and a batch
		// of fsyncs would make collection disk-bound.
		p, err := s.primaryFS.LocalPath(primaryPath(o.ID))
		if err == nil {
			err = os.Remove(p)
		}
		switch {
		case err == nil:
			st.Bytes += o.Size
		case !errors.Is(err, iofs.ErrNotExist):
			s.log.Warn("gc: drop stored content", "id", o.ID, "err", err)
		}
	}
	// Copies in other stores go too, here rather than only through the
	// change feed, which may drop events under load (replicate.go).
	s.dropCopies(ctx, o)
	if s.atSource[o.Source.Provider] && o.Source.Offset == 0 && o.Source.Length == 0 && o.Source.Path != "" {
		if s.pins.deferIfHeld(o.ID, o.Source) {
			s.log.Debug("gc: source deletion waits for readers", "id", o.ID, "source", o.Source.Provider+":"+o.Source.Path)
			return
		}
		s.deleteSource(ctx, o.ID, o.Source, o.Size, st)
	}
}

// deleteSource deletes a provider's file unless an object is (again)
// registered at any range of it.
func (s *Store) deleteSource(ctx context.Context, id fs.ID, l fs.Location, size int64, st *CollectStats) {
	src := l.Provider + ":" + l.Path
	refs, err := s.idx.SourceRefs(ctx, l.Provider, l.Path)
	if err != nil {
		s.log.Warn("gc: delete at source", "id", id, "source", src, "err", err)
		return
	}
	if refs > 0 {
		s.log.Debug("gc: source file still registered, kept", "source", src, "objects", refs)
		return
	}
	p, _ := s.providers.get(l.Provider)
	w, ok := p.(backends.Writer)
	if !ok {
		s.log.Warn("gc: delete at source: provider cannot delete", "id", id, "source", src)
		return
	}
	if err := w.Delete(ctx, l.Path); err != nil {
		s.log.Warn("gc: delete at source", "id", id, "source", src, "err", err)
		return
	}
	st.SourceFiles++
	if size > 0 {
		st.Bytes += size
	}
	s.log.Debug("gc: deleted at source", "id", id, "source", src)
}
