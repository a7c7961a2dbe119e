package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/cache"
	"github.com/datagate/datagate/backends/health"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
)

// PrimaryName is the store name recorded in Object.Stores for content
// held by the primary store.
const PrimaryName = "primary"

// Options configure Open.
type Options struct {
	Dir       string                       // data directory; created if missing
	Providers map[string]backends.Provider // sources of registered content, by name
	Primary   backends.Writer              // where pushed content goes; must also be a backends.Filer
	Cache     cache.Options                // Dir defaults to Dir/cache
	Derive    index.Deriver                // derived keys (view paths), set by the wiring
	NoSync    bool                         // benchmarks only: skip fsync on index commits
	Logger    *slog.Logger
	Now       func() time.Time // for tests; default time.Now
	// Retention, if set, gives the retention of an object registered or
	// pushed without an expiry time (its Source is zero when pushed);
	// the object then expires that long after it is indexed. 0 = never.
	Retention func(o *fs.Object) time.Duration
	// DeleteAtSource names the providers whose files the collector
	// deletes when an object registered as a whole file expires.
	DeleteAtSource map[string]bool
	// Replication: further stores, copies wanted, prefetch (replicate.go).
	Replication Replication
	// OnFetch, if set, is told of every provider fetch (stats.go).
	OnFetch FetchObserver
}

// Store is the object store. Safe for concurrent use.
type Store struct {
	// immutable after Open
	dir       string
	idx       *index.Index
	cache     *cache.Cache
	providers providerSet // swapped on reload (providers.go)
	primary   backends.Writer
	primaryFS backends.Filer
	log       *slog.Logger
	ids       *fs.IDGen
	now       func() time.Time
	lock      *os.File
	retention func(o *fs.Object) time.Duration
	atSource  map[string]bool
	cacheDir  string
	opened    time.Time // files changed before it are of earlier runs (recovery.go)

	pins pins // readers open on registered content; see expire.go

	rep    *replicator     // copies to further stores; see replicate.go
	health *health.Tracker // failing stores and providers; see fallback.go

	swept atomic.Bool // no unindexed files of a crash are left to sweep (recovery.go)
	st    storeStats  // counters for Stats (stats.go)

	closeOnce sync.Once
	closeErr  error

	bg     sync.WaitGroup // background checksum jobs
	md5s   md5Jobs        // pushed objects' MD5s being computed (md5job.go)
	bgSem  chan struct{}
	closed chan struct{}
	// background checksum jobs waiting for bgSem (reader.go)
	sumsWaiting atomic.Int64

	// afterChecksums, when set (tests), runs between a background
	// checksum job's hashing and its recording.
	afterChecksums func()
}

// Open opens the store in opts.Dir, taking ownership of the directory.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, fs.E(fs.Invalid, "open store", "", errors.New("no data directory"))
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	if opts.Primary == nil {
		return nil, fs.E(fs.Invalid, "open store", opts.Dir, errors.New("no primary store"))
	}
	filer, ok := opts.Primary.(backends.Filer)
	if !ok {
		return nil, fs.E(fs.Invalid, "open store", opts.Dir, errors.New("primary store must hold local files"))
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	lock, err := lockDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	opened := openTime(opts.Primary)
	clean, err := takeCleanMarker(opts.Dir)
	if err != nil {
		lock.Close()
		return nil, err
	}
	s := &Store{
		dir: opts.Dir, primary: opts.Primary, primaryFS: filer,
		log: log, ids: fs.NewIDGen(), now: opts.Now, lock: lock,
		bgSem: make(chan struct{}, 1), closed: make(chan struct{}),
		retention: opts.Retention, atSource: opts.DeleteAtSource, opened: opened,
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.providers.set(opts.Providers)
	s.health = health.New(health.Options{Base: opts.Replication.HealthBackoff})
	s.rep = newReplicator(s, opts.Replication)
	s.idx, err = index.Open(index.Options{Dir: filepath.Join(opts.Dir, "index"), NoSync: opts.NoSync, Derive: deriveMD5Pending(s.rep.derive(opts.Derive)), Logger: log,
		Tally: s.rep.tally, TallySig: s.rep.tallySig()})
	if err != nil {
		lock.Close()
		return nil, err
	}
	if err := s.rep.rebuild(ctx); err != nil {
		s.idx.Close()
		lock.Close()
		return nil, err
	}
	co := opts.Cache
	if co.Dir == "" {
		co.Dir = filepath.Join(opts.Dir, "cache")
	}
	if co.Logger == nil {
		co.Logger = log
	}
	s.cacheDir = co.Dir
	s.cache, err = cache.New(co)
	if err != nil {
		s.idx.Close()
		lock.Close()
		return nil, err
	}
	s.recoverLeftovers(clean, opened)
	s.st.onFetch = opts.OnFetch
	s.startCounting()
	if !clean {
		s.resumeMD5s(ctx)
	}
	return s, nil
}

// Close waits for background work and closes the cache and the index,
// then marks the shutdown clean (recovery.go). Calling it again is a
// no-op.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.bg.Wait()
		s.closeErr = errors.Join(s.cache.Close(), s.idx.Close())
		if s.closeErr == nil && s.swept.Load() {
			if err := leaveCleanMarker(s.dir); err != nil {
				s.log.Warn("mark the shutdown clean", "err", err)
			}
		}
		s.lock.Close()
	})
	return s.closeErr
}

// Index gives the wiring access to the catalogue (subscriptions, derived
// key walks). Front-ends use views, not this.
func (s *Store) Index() *index.Index { return s.idx }

// Cache exposes the chunk cache, for statistics.
func (s *Store) Cache() *cache.Cache { return s.cache }

// Provider returns the provider registered under name.
func (s *Store) Provider(name string) (backends.Provider, bool) {
	return s.providers.get(name)
}

// Get returns the object with the given id; the MD5 of a fresh push
// once computed (md5job.go).
func (s *Store) Get(ctx context.Context, id fs.ID) (*fs.Object, error) {
	o, err := s.idx.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.awaitMD5(ctx, o), nil
}

// Find calls fn for the objects whose metadata satisfies every condition.
func (s *Store) Find(ctx context.Context, conds []index.Cond, opts index.FindOptions, fn func(*fs.Object) error) error {
	return s.idx.Find(ctx, conds, opts, fn)
}

// Update applies fn to an object's record (metadata, expiry, name...).
// Content fields are not fn's to change: they are restored.
func (s *Store) Update(ctx context.Context, id fs.ID, fn func(o *fs.Object) error) (*fs.Object, error) {
	return s.idx.Update(ctx, id, func(o *fs.Object) error {
		keep := *o
		if err := fn(o); err != nil {
			return err
		}
		o.Size, o.MD5, o.SHA256, o.ETag = keep.Size, keep.MD5, keep.SHA256, keep.ETag
		o.Source, o.State, o.Stores, o.Version, o.Created = keep.Source, keep.State, keep.Stores, keep.Version, keep.Created
		return nil
	})
}

// Delete removes objects from the catalogue and drops their content from
// the cache and the primary store. Readers holding one open keep reading it
// until they close it (the cache defers removal; an unlinked file stays
// readable through open descriptors).
func (s *Store) Delete(ctx context.Context, ids ...fs.ID) error {
	objs, err := s.idx.Delete(ctx, ids...)
	if err != nil {
		return err
	}
	for _, o := range objs {
		s.dropContent(ctx, o)
	}
	return nil
}

// dropTimeout bounds the removal of a deleted object's bytes.
const dropTimeout = time.Minute

// dropContent removes an old version's bytes; failures only cost space, so
// they are logged rather than returned. The index change is committed by
// then: a caller that gives up now (a client gone right after its DELETE
// committed: the soak test's S3 clients at the load's end) must not leave
// the bytes behind unreferenced until an fsck --repair, so its
// cancellation is not passed on; dropTimeout bounds the work instead.
func (s *Store) dropContent(ctx context.Context, o *fs.Object) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dropTimeout)
	defer cancel()
	if err := s.cache.Remove(o.ContentKey()); err != nil {
		s.log.Warn("drop cached content", "id", o.ID, "err", err)
	}
	if o.State == fs.StateStored {
		if err := s.primary.Delete(ctx, primaryPath(o.ID)); err != nil {
			s.log.Warn("drop stored content", "id", o.ID, "err", err)
		}
	}
	s.dropCopies(ctx, o) // other stores' copies (replicate.go)
}

// primaryPath fans objects out over 1024 directories by the id's last two
// characters, which are random (the leading ones are a timestamp).
func primaryPath(id fs.ID) string {
	s := id.String()
	return path.Join(s[24:26], s)
}

// Check reports whether o could be registered: a source on a known
// provider, a sane range, checksums of the right length, valid metadata.
func (s *Store) Check(o *fs.Object) error {
	src := o.Source.Provider + ":" + o.Source.Path
	switch {
	case o.Source.Provider == "" || o.Source.Path == "":
		return fs.E(fs.Invalid, "register", o.Name, errors.New("no source location"))
	case !s.hasProvider(o.Source.Provider):
		return fs.E(fs.Invalid, "register", src, fmt.Errorf("unknown provider %q", o.Source.Provider))
	case o.Source.Offset < 0 || o.Source.Length < 0:
		return fs.E(fs.Invalid, "register", src, errors.New("negative offset or length"))
	case o.Source.Length > 0 && o.Size > 0 && o.Size != o.Source.Length:
		return fs.E(fs.Invalid, "register", src, fmt.Errorf("size %d disagrees with range length %d", o.Size, o.Source.Length))
	case (len(o.MD5) != 0 && len(o.MD5) != 16) || (len(o.SHA256) != 0 && len(o.SHA256) != 32):
		return fs.E(fs.Invalid, "register", src, errors.New("checksum of the wrong length"))
	}
	c := *o
	if c.ID == (fs.ID{}) {
		c.ID[0] = 1 // Validate wants an id; the real one is given later
	}
	return index.Validate(&c)
}

// Register adds registered objects in one atomic batch (see index.Register
// for the outcomes). Each record needs a source location on a known
// provider. Missing names default to the base of the source path, missing
// sizes to "unknown" (-1, learnt on first read).
func (s *Store) Register(ctx context.Context, objs []*fs.Object) ([]index.Outcome, error) {
	now := s.now().UTC()
	for _, o := range objs {
		if err := s.Check(o); err != nil {
			return nil, err
		}
		if o.Name == "" {
			o.Name = path.Base(o.Source.Path)
		}
		if o.Source.Length > 0 {
			o.Size = o.Source.Length
		}
		if o.ID == (fs.ID{}) {
			o.ID = s.ids.New(now)
		}
		o.State = fs.StateRegistered
		o.Stores = nil
		o.Created = now
		s.applyRetention(o, now)
	}
	out, err := s.idx.Register(ctx, objs)
	if err != nil {
		return nil, err
	}
	for i, o := range objs {
		if out[i] == index.Updated && o.Version > 0 {
			old := o.Clone()
			old.Version--
			s.cache.Remove(old.ContentKey())
		}
	}
	return out, nil
}
