package cache

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Cache. Zero values select the defaults.
type Options struct {
	Dir       string // cache root, created if missing
	ChunkSize int64  // default 4 MiB; changing it discards what a previous run cached
	MaxSize   int64  // byte cap; 0 = unlimited
	ReadAhead int    // chunks fetched ahead for sequential readers; default 4, < 0 disables
	Fetchers  int    // max concurrent chunk fetches overall; default 16
	Logger    *slog.Logger
}

// Source describes the content of one entry and how to get and check it.
type Source struct {
	Key  string // stable unique key; [A-Za-z0-9._-]{1,128}, else error wrapping iofs.ErrInvalid
	Size int64  // exact content size, >= 0
	// Fetch returns the bytes [off, off+length) of the content. A reader that yields fewer bytes
	// (or io.ErrUnexpectedEOF) is an error: nothing from that fetch is marked present.
	Fetch func(ctx context.Context, off, length int64) (io.ReadCloser, error)
	// Verify is called exactly once when the entry first becomes whole, with the data file
	// (read it with ReadAt / a SectionReader; do not close it). A non-nil error means the content
	// is wrong: the entry is dropped entirely (data and state) and the error returned to the reader
	// that completed it and to later reads until refetched. nil marks the entry complete (persisted).
	// A nil Verify accepts any content.
	Verify func(ctx context.Context, f *os.File) error
	// NewDigest, if set, replaces Verify by a check that costs no second
	// read of the content: the cache feeds a fresh Digest the content in
	// order as it arrives (a goroutine reads each newly contiguous stretch
	// back from the page cache, off the fetch path), and calls its Verify
	// once when the entry becomes whole, with the same contract as Verify.
	// Content cached by a previous run is fed from the data file.
	NewDigest func() Digest
}

// Digest judges content written to it in order, from the first byte.
type Digest interface {
	io.Writer
	// Verify is called once after the whole content was written: nil
	// when it is right, as Source.Verify.
	Verify(ctx context.Context) error
}

// Info describes an entry without opening it.
type Info struct {
	Present  int64  // bytes present
	Complete bool   // whole and verified
	Path     string // the data file
}

var (
	errInvalid = iofs.ErrInvalid
	errClosed  = iofs.ErrClosed
)

// Cache is a chunked disk cache of keyed entries. See the package doc.
type Cache struct {
	// immutable after New
	opts   Options
	dir    string
	chunk  int64
	log    *slog.Logger
	ctx    context.Context // cancelled by Close; parent of every fetch
	cancel context.CancelFunc
	sem    chan struct{} // bounds concurrent fetches
	bufs   sync.Pool     // *[]byte of copyBufSize
	evictc chan struct{}
	flushc chan struct{}
	loaded chan struct{} // closed when the startup walk ends

	wg    sync.WaitGroup
	usage atomic.Int64  // bytes of present chunks of live entries
	drops atomic.Uint64 // entries dropped, and their files closed, so far (space freed): see makeRoom
	held  atomic.Int64  // dropped entries whose data file is still open
	st    counters      // statistics (stats.go)

	goMu    sync.RWMutex // orders wg.Add against Close's wg.Wait
	closing bool         // guarded by goMu

	mu sync.Mutex
	// guarded by mu
	entries   map[string]*entry
	lru       *list.List // of *entry; front = most recently used
	closed    bool
	walkDone  bool
	overshoot bool // the "everything pinned" warning was logged

	dirtyMu sync.Mutex
	// guarded by dirtyMu
	dirty  map[*entry]struct{} // to persist on the next tick
	urgent map[*entry]struct{} // to persist now (became complete)
}

// New opens the cache in opts.Dir, creating it if missing. Entries left by a
// previous run are loaded by a background walk, so New returns at once;
// Loaded says when the walk is done (until then Usage undercounts).
func New(opts Options) (*Cache, error) {
	if opts.Dir == "" {
		return nil, fmt.Errorf("cache: no directory: %w", errInvalid)
	}
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = defaultChunk
	}
	if opts.ReadAhead == 0 {
		opts.ReadAhead = 4
	}
	if opts.Fetchers <= 0 {
		opts.Fetchers = 16
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxSize < 0 {
		return nil, fmt.Errorf("cache: negative MaxSize %d: %w", opts.MaxSize, errInvalid)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("cache: %s: %w", opts.Dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, diskErr("create", dir, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cache{
		opts:    opts,
		dir:     dir,
		chunk:   opts.ChunkSize,
		log:     opts.Logger,
		ctx:     ctx,
		cancel:  cancel,
		sem:     make(chan struct{}, opts.Fetchers),
		evictc:  make(chan struct{}, 1),
		flushc:  make(chan struct{}, 1),
		loaded:  make(chan struct{}),
		entries: make(map[string]*entry),
		lru:     list.New(),
		dirty:   make(map[*entry]struct{}),
		urgent:  make(map[*entry]struct{}),
	}
	c.bufs.New = func() any { b := make([]byte, copyBufSize); return &b }
	c.goOwned(c.walk)
	c.goOwned(c.evictLoop)
	c.goOwned(c.flushLoop)
	return c, nil
}

// goOwned runs fn in a goroutine Close waits for; false once Close began.
func (c *Cache) goOwned(fn func()) bool {
	c.goMu.RLock()
	defer c.goMu.RUnlock()
	if c.closing {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
	return true
}

// Close stops fetches and background work and persists the state of every
// entry. Files still open fail reads that need a fetch; they must still be
// closed.
func (c *Cache) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.goMu.Lock()
	c.closing = true
	c.goMu.Unlock()
	c.cancel()
	c.wg.Wait()
	return c.flushAll(false)
}

// Loaded is closed when the walk over entries left by a previous run ends.
func (c *Cache) Loaded() <-chan struct{} { return c.loaded }

func checkSource(src Source) error {
	switch {
	case !validKey(src.Key):
		return fmt.Errorf("cache: bad key %q: %w", src.Key, errInvalid)
	case src.Size < 0:
		return fmt.Errorf("cache: %s: negative size %d: %w", src.Key, src.Size, errInvalid)
	case src.Fetch == nil:
		return fmt.Errorf("cache: %s: no Fetch: %w", src.Key, errInvalid)
	}
	return nil
}

// Open returns a File reading src's content through the cache. Nothing is
// fetched until it is read. An entry whose recorded size differs from src's
// is dropped and started afresh (Files open on the old one keep reading it).
// A size-0 entry is verified here, and its Verify error returned.
func (c *Cache) Open(ctx context.Context, src Source) (*File, error) {
	if err := checkSource(src); err != nil {
		return nil, err
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, fmt.Errorf("cache: open %s: %w", src.Key, errClosed)
		}
		e := c.entries[src.Key]
		if e == nil {
			e = c.newEntry(src.Key)
			c.entries[src.Key] = e
			e.elem = c.lru.PushFront(e)
		} else {
			c.lru.MoveToFront(e.elem)
		}
		e.mu.Lock()
		e.refs++
		e.pins++
		e.mu.Unlock()
		c.mu.Unlock()

		e.mu.Lock()
		if e.dropped {
			// Removed between the two locks: its paths may belong to a
			// new entry already. Start over.
			e.mu.Unlock()
			c.unpin(e, false)
			continue
		}
		c.loadLocked(e)
		if e.hasState && (e.size != src.Size || e.chunkSize != c.chunk) {
			// The content changed under a stable key (or the sidecar is
			// stale): drop the old entry, as Remove would, and start a
			// fresh one. Files open on the old one keep their view.
			c.log.Info("cache: entry size changed, refetching", "key", e.key, "old", e.size, "new", src.Size)
			e.mu.Unlock()
			c.mu.Lock()
			e.mu.Lock()
			c.dropLocked(e, nil)
			e.mu.Unlock()
			c.mu.Unlock()
			c.unpin(e, false)
			continue
		}
		if err := c.prepareLocked(e, src); err != nil {
			e.mu.Unlock()
			c.unpin(e, false)
			return nil, err
		}
		fd, err := os.Open(e.dataPath)
		if err != nil {
			e.mu.Unlock()
			c.unpin(e, false)
			return nil, diskErr("open", e.dataPath, err)
		}
		f := &File{c: c, e: e, fd: fd, size: e.size}
		stale := e.complete.Load() && !stamped(fd)
		if stale {
			// Written to since it was verified: judge it again
			// before serving it.
			c.log.Warn("cache: complete entry modified since its verification, verifying again", "key", e.key)
			e.complete.Store(false)
			c.markDirtyLocked(e, false)
		}
		whole := e.present == e.nchunks && !e.complete.Load()
		e.mu.Unlock()
		if whole {
			if err := c.verifyOnOpen(ctx, e); err != nil {
				f.Close()
				if stale && e.isDropped() && ctx.Err() == nil {
					continue // wrong content gone: fetch it afresh
				}
				return nil, err
			}
		}
		return f, nil
	}
}

func (c *Cache) newEntry(key string) *entry {
	e := &entry{key: key, inflight: make(map[int64]*fetch)}
	e.dataPath, e.statePath = c.paths(key)
	return e
}

// Remove drops the entry of key: it stops counting and Lookup no longer
// sees it at once, and Opens after Remove start a fresh entry. Files open on
// it keep reading (its files are unlinked; the space is freed when the last
// one closes). Removing an absent key is not an error.
func (c *Cache) Remove(key string) error {
	if !validKey(key) {
		return fmt.Errorf("cache: bad key %q: %w", key, errInvalid)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[key]; e != nil {
		e.mu.Lock()
		c.dropLocked(e, nil)
		e.mu.Unlock()
		return nil
	}
	// Not loaded (yet): it may still be on disk from a previous run.
	data, st := c.paths(key)
	if err := removeFiles(data, st); err != nil {
		return diskErr("remove", data, err)
	}
	return nil
}

// Lookup describes the entry of key without opening it.
func (c *Cache) Lookup(key string) (Info, bool) {
	if !validKey(key) {
		return Info{}, false
	}
	c.mu.Lock()
	e := c.entries[key]
	if e == nil {
		defer c.mu.Unlock()
		if c.walkDone {
			return Info{}, false
		}
		// The walk has not reached it yet: peek at its sidecar.
		data, st := c.paths(key)
		s, ok, err := readState(st)
		if !ok || err != nil || s.chunkSize != c.chunk {
			return Info{}, false
		}
		present, n := int64(0), chunkCount(s.size, s.chunkSize)
		for i := int64(0); i < n; i++ {
			if s.bits[i>>6]&(1<<(uint(i)&63)) != 0 {
				present += min(s.chunkSize, s.size-i*s.chunkSize)
			}
		}
		return Info{Present: present, Complete: s.complete && present == s.size, Path: data}, true
	}
	c.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	c.loadLocked(e)
	if e.dropped || !e.hasState {
		return Info{}, false
	}
	return Info{Present: e.presentB, Complete: e.complete.Load(), Path: e.dataPath}, true
}

// Usage returns the bytes of present chunks and the number of entries.
func (c *Cache) Usage() (bytes int64, entries int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.usage.Load(), len(c.entries)
}

func (c *Cache) evictLoop() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.evictc:
			c.evict()
		}
	}
}

// makeRoom evicts unpinned entries other than e, least recently used
// first, until their present bytes reach need, because a write into e
// found the disk full. drops is c.drops before that write: when space
// was freed since (another fetch made room meanwhile), nothing more is
// evicted. With nothing to evict but entries dropped whose files are
// still open (a flush or fetch finishing), it waits a little for them.
// It reports whether the write is worth retrying.
func (c *Cache) makeRoom(ctx context.Context, e *entry, need int64, drops uint64) bool {
	if c.evictFor(e, need, drops) {
		return true
	}
	for wait := 0; wait < roomWaits && c.held.Load() > 0; wait++ {
		if !sleepCtx(ctx, roomWait) {
			return false
		}
		if c.drops.Load() != drops {
			return true
		}
	}
	return false
}

// sleepCtx waits for d, or reports false when ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// How long makeRoom waits for dropped entries' files to be closed:
// they are held by a flush or a fetch ending, a matter of milliseconds.
const (
	roomWait  = 10 * time.Millisecond
	roomWaits = 200
)

// evictFor is makeRoom's eviction: it reports whether space was freed
// since drops, by it or meanwhile.
func (c *Cache) evictFor(e *entry, need int64, drops uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.drops.Load() != drops {
		return true
	}
	var freed int64
	n := 0
	for el := c.lru.Back(); el != nil && freed < need; {
		prev := el.Prev()
		o := el.Value.(*entry)
		if o != e {
			o.mu.Lock()
			if o.pins == 0 {
				freed += o.presentB
				n++
				c.dropLocked(o, nil)
				c.st.evictions.Add(1)
			}
			o.mu.Unlock()
		}
		el = prev
	}
	if n > 0 {
		c.log.Warn("cache: disk full below max_size, evicted entries", "entries", n, "bytes", freed, "needed", need)
	}
	return c.drops.Load() != drops
}

// evict drops unpinned entries, least recently used first, until usage is
// under MaxSize.
func (c *Cache) evict() {
	if c.opts.MaxSize <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.lru.Back(); el != nil && c.usage.Load() > c.opts.MaxSize; {
		prev := el.Prev()
		e := el.Value.(*entry)
		e.mu.Lock()
		if e.pins == 0 {
			c.log.Debug("cache: evicting", "key", e.key, "bytes", e.presentB)
			c.dropLocked(e, nil)
			c.st.evictions.Add(1)
		}
		e.mu.Unlock()
		el = prev
	}
	if u := c.usage.Load(); u > c.opts.MaxSize {
		if !c.overshoot {
			c.log.Warn("cache: over its size cap and every entry is in use", "usage", u, "max", c.opts.MaxSize)
			c.overshoot = true
		}
	} else {
		c.overshoot = false
	}
}

func (c *Cache) flushLoop() {
	t := time.NewTicker(persistInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			c.flushAll(false)
		case <-c.flushc:
			c.flushAll(true)
		}
	}
}

// flushAll persists dirty entries (only the urgent ones if urgentOnly).
func (c *Cache) flushAll(urgentOnly bool) error {
	c.dirtyMu.Lock()
	set := c.dirty
	if urgentOnly {
		set = c.urgent
		for e := range set {
			delete(c.dirty, e)
		}
		c.urgent = make(map[*entry]struct{})
	} else {
		c.dirty = make(map[*entry]struct{})
		c.urgent = make(map[*entry]struct{})
	}
	c.dirtyMu.Unlock()
	var errs []error
	for e := range set {
		if err := c.flush(e); err != nil {
			c.log.Warn("cache: persisting entry state", "key", e.key, "err", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// walk loads the entries a previous run left, most recently used first
// (by sidecar mtime, which File.Close touches), behind any entry this run
// already used. It deletes data files without a usable sidecar and
// leftover temporary files.
func (c *Cache) walk() {
	defer close(c.loaded)
	type found struct {
		key   string
		mtime time.Time
	}
	var states []found
	data := make(map[string]string) // key → data path
	tmps := make(map[string]string) // key → temporary sidecar path
	err := filepath.WalkDir(c.dir, func(path string, d iofs.DirEntry, err error) error {
		if cerr := c.ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			c.log.Warn("cache: walking", "path", path, "err", err)
			return nil
		}
		if d.IsDir() {
			return nil
		}
		switch name := d.Name(); {
		case strings.HasSuffix(name, stateTmpSuffix):
			tmps[strings.TrimSuffix(name, stateTmpSuffix)] = path
		case strings.HasSuffix(name, stateSuffix):
			if info, err := d.Info(); err == nil {
				states = append(states, found{strings.TrimSuffix(name, stateSuffix), info.ModTime()})
			}
		case strings.HasSuffix(name, dataSuffix):
			data[strings.TrimSuffix(name, dataSuffix)] = path
		}
		return nil
	})
	if err != nil {
		if c.ctx.Err() == nil {
			c.log.Warn("cache: walking", "dir", c.dir, "err", err)
		}
		return
	}
	slices.SortFunc(states, func(a, b found) int { return b.mtime.Compare(a.mtime) })
	for _, s := range states {
		if c.ctx.Err() != nil {
			return
		}
		if !validKey(s.key) {
			continue
		}
		_, hasData := data[s.key]
		delete(data, s.key)
		c.mu.Lock()
		if c.entries[s.key] == nil {
			e := c.newEntry(s.key)
			e.mu.Lock()
			if hasData {
				c.loadLocked(e)
			}
			if e.hasState {
				c.entries[s.key] = e
				e.elem = c.lru.PushBack(e)
			} else if err := removeFiles(e.dataPath, e.statePath); err != nil {
				c.log.Warn("cache: removing entry", "key", s.key, "err", err)
			}
			e.mu.Unlock()
		}
		c.mu.Unlock()
	}
	// Leftovers: data files without a usable sidecar (a crash before the
	// first persist) and temporary sidecars. The check under c.mu keeps
	// the files of an entry this run created.
	for key, p := range data {
		c.removeLeftover(key, p)
	}
	for key, p := range tmps {
		c.removeLeftover(key, p)
	}
	c.mu.Lock()
	c.walkDone = true
	c.mu.Unlock()
	c.log.Debug("cache: loaded", "entries", len(states), "bytes", c.usage.Load())
	c.kickEvict()
}

func (c *Cache) removeLeftover(key, path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if validKey(key) && c.entries[key] != nil {
		if d, st := c.paths(key); path == d || path == strings.TrimSuffix(st, stateSuffix)+stateTmpSuffix {
			return
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		c.log.Warn("cache: removing leftover", "path", path, "err", err)
	}
}
