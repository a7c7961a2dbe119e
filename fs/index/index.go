package index

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/datagate/datagate/fs"
)

const (
	pObject  = 0x01
	pMeta    = 0x02
	pSource  = 0x03
	pExpiry  = 0x04
	pDerived = 0x05
	pFence   = 0x0f // FenceDerivations' key
)

// Limits on what the index accepts, so keys stay well under Badger's limits
// and separators stay unambiguous.
const (
	MaxMetaKey   = 128
	MaxMetaValue = 4096
	MaxName      = 4096
)

// Derived is one extra key an object implies, kept in the same transaction
// as the object (views use it for their path entries).
type Derived struct {
	Key, Value []byte
}

// Deriver computes the derived keys of an object. It must be a pure
// function of the object: the index calls it on the old version to delete
// and on the new one to insert. One whose rules change (views reloaded)
// calls FenceDerivations once they have.
type Deriver func(o *fs.Object) []Derived

// fenceKey is read by every write transaction and written by
// FenceDerivations, so Badger's conflict detection sends back any
// transaction that began before a fence and would commit after it.
var fenceKey = []byte{pFence}

// newWriteTxn begins a read-write transaction that conflicts with any
// fence committed before it does.
func (ix *Index) newWriteTxn() *badger.Txn {
	txn := ix.db.NewTransaction(true)
	txn.Get(fenceKey) // a miss is read too, for conflicts; the value is not used
	return txn
}

// FenceDerivations makes the Deriver's current rules the only ones any
// later commit can have used: a write transaction that derived keys
// before the call and commits after it fails with a conflict and is
// redone (Update and the others retry), deriving afresh. After it, the
// keys of the old rules are all in the index, for their owner to sweep.
func (ix *Index) FenceDerivations() error {
	var gen [8]byte
	binary.BigEndian.PutUint64(gen[:], uint64(time.Now().UnixNano()))
	if err := ix.db.Update(func(txn *badger.Txn) error { return txn.Set(fenceKey, gen[:]) }); err != nil {
		return fs.E(fs.Other, "fence derivations", "", err)
	}
	return nil
}

// Options configure Open.
type Options struct {
	Dir      string
	InMemory bool // for tests: nothing on disk
	// NoSync skips the sync after durable commits. Only for benchmarks
	// and tests.
	NoSync bool
	Derive Deriver
	Logger *slog.Logger
	// BlockCacheSize caps Badger's block cache (bytes); 0 = 64 MiB.
	BlockCacheSize int64
	// Tally and TallySig give named counts kept with the object counts
	// (counts.go); nil: objects and bytes only.
	Tally    Tally
	TallySig string
	// MinFree is the room a write that adds to the catalogue leaves on
	// the index's file system, or it is refused (space.go); 0 =
	// DefaultMinFree, < 0 = no check.
	MinFree int64
}

// Index is the catalogue. It is safe for concurrent use.
type Index struct {
	// immutable after Open
	db     *badger.DB
	derive Deriver
	log    *slog.Logger
	sync   *syncer
	noSync bool
	// dir and minFree: the room kept on the index's file system, "" and
	// 0 for none (space.go)
	dir     string
	minFree int64
	snaps   snapshots // what readers read (snapshot.go)
	cnt     counter   // objects, bytes, tallies (counts.go)

	mu   sync.Mutex // guards subs
	subs map[*Subscription]struct{}
}

// Open opens (creating if needed) the index in opts.Dir.
func Open(opts Options) (*Index, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	bo := badger.DefaultOptions(opts.Dir).
		WithInMemory(opts.InMemory).
		// Durability comes from the syncer, after the commit is applied,
		// so that readers never wait for an fsync (sync.go).
		WithSyncWrites(false).
		WithNumVersionsToKeep(1).
		WithLogger(badgerLogger{log}).
		WithMetricsEnabled(false)
	if opts.BlockCacheSize > 0 {
		bo = bo.WithBlockCacheSize(opts.BlockCacheSize)
	} else {
		bo = bo.WithBlockCacheSize(64 << 20)
	}
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", opts.Dir, err)
	}
	derive := opts.Derive
	if derive == nil {
		derive = func(*fs.Object) []Derived { return nil }
	}
	dir := opts.Dir
	if opts.InMemory || opts.NoSync {
		dir = "" // nothing to sync
	}
	ix := &Index{db: db, derive: derive, log: log, subs: map[*Subscription]struct{}{},
		sync: newSyncer(db, dir), noSync: opts.NoSync, minFree: opts.MinFree}
	if !opts.InMemory {
		ix.dir = opts.Dir
	}
	if ix.minFree == 0 {
		ix.minFree = DefaultMinFree
	}
	if err := ix.loadCounts(opts.Tally, opts.TallySig); err != nil {
		ix.sync.close()
		db.Close()
		return nil, err
	}
	ix.refresh()
	return ix, nil
}

// Sync returns once every commit made before the call is on disk and
// visible to the index's readers. The index's own operations do it
// themselves; packages writing through DB() call it before acknowledging
// a write that must survive a power cut. Concurrent calls share syncs.
func (ix *Index) Sync() error {
	err := ix.syncDisk()
	ix.refresh()
	return err
}

func (ix *Index) syncDisk() error {
	if ix.noSync {
		return nil
	}
	if err := ix.sync.sync(); err != nil {
		return fs.E(fs.Other, "sync index", "", err)
	}
	return nil
}

// Close closes the index and every subscription.
func (ix *Index) Close() error {
	ix.mu.Lock()
	for s := range ix.subs {
		s.closeLocked()
	}
	ix.subs = map[*Subscription]struct{}{}
	ix.mu.Unlock()
	ix.closeSnapshots()
	ix.cnt.gate.Lock()
	defer ix.cnt.gate.Unlock()
	if err := ix.saveCounts(); err != nil {
		ix.log.Warn("index: save counts (the next open counts again)", "err", err)
	}
	ix.sync.close()
	return ix.db.Close()
}

// DB exposes the Badger handle to sibling packages that keep their own
// prefixed records (queues, locks). Prefixes 0x01–0x0f belong to the index.
// Badger runs without SyncWrites: a write through DB() that must survive a
// power cut is followed by Sync before it is acknowledged.
func (ix *Index) DB() *badger.DB { return ix.db }

func objectKey(id fs.ID) []byte {
	k := make([]byte, 17)
	k[0] = pObject
	copy(k[1:], id[:])
	return k
}

func metaPrefix(key, value string) []byte {
	k := make([]byte, 0, 3+len(key)+len(value)+16)
	k = append(k, pMeta)
	k = append(k, key...)
	k = append(k, 0)
	k = append(k, value...)
	return append(k, 0)
}

func sourceKey(l fs.Location) []byte {
	k := make([]byte, 0, 3+len(l.Provider)+len(l.Path)+16)
	k = append(k, pSource)
	k = append(k, l.Provider...)
	k = append(k, 0)
	k = append(k, l.Path...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint64(k, uint64(l.Offset))
	return binary.BigEndian.AppendUint64(k, uint64(l.Length))
}

func expiryKey(t time.Time, id fs.ID) []byte {
	k := make([]byte, 0, 25)
	k = append(k, pExpiry)
	k = binary.BigEndian.AppendUint64(k, uint64(t.UnixNano()))
	return append(k, id[:]...)
}

func derivedKey(k []byte) []byte {
	return append([]byte{pDerived}, k...)
}

// Validate checks what the key layout depends on, so callers can refuse
// bad input before doing expensive work (a put streams its content first).
func Validate(o *fs.Object) error {
	if o.ID == (fs.ID{}) {
		return fs.E(fs.Invalid, "index", o.Name, errors.New("object has no id"))
	}
	if len(o.Name) > MaxName {
		return fs.E(fs.Invalid, "index", o.Name[:64]+"…", errors.New("name too long"))
	}
	for k, v := range o.Meta {
		switch {
		case k == "" || len(k) > MaxMetaKey:
			return fs.E(fs.Invalid, "index", o.Name, fmt.Errorf("metadata key %.40q: empty or longer than %d bytes", k, MaxMetaKey))
		case len(v) > MaxMetaValue:
			return fs.E(fs.Invalid, "index", o.Name, fmt.Errorf("metadata %s: value longer than %d bytes", k, MaxMetaValue))
		case bytes.IndexByte([]byte(k), 0) >= 0 || bytes.IndexByte([]byte(v), 0) >= 0:
			return fs.E(fs.Invalid, "index", o.Name, fmt.Errorf("metadata %q: NUL byte", k))
		}
	}
	if bytes.IndexByte([]byte(o.Source.Provider), 0) >= 0 || bytes.IndexByte([]byte(o.Source.Path), 0) >= 0 {
		return fs.E(fs.Invalid, "index", o.Name, errors.New("source location has a NUL byte"))
	}
	return nil
}

// putKeys writes o and all its secondary keys into txn.
func (ix *Index) putKeys(txn *badger.Txn, o *fs.Object) error {
	if err := txn.Set(objectKey(o.ID), encodeObject(nil, o)); err != nil {
		return err
	}
	for k, v := range o.Meta {
		if err := txn.Set(append(metaPrefix(k, v), o.ID[:]...), nil); err != nil {
			return err
		}
	}
	if !o.Source.IsZero() {
		if err := txn.Set(sourceKey(o.Source), o.ID[:]); err != nil {
			return err
		}
	}
	if !o.Expires.IsZero() {
		if err := txn.Set(expiryKey(o.Expires, o.ID), nil); err != nil {
			return err
		}
	}
	for _, d := range ix.derive(o) {
		if err := txn.Set(derivedKey(d.Key), d.Value); err != nil {
			return err
		}
	}
	return nil
}

// deleteKeys removes o and all its secondary keys from txn.
func (ix *Index) deleteKeys(txn *badger.Txn, o *fs.Object) error {
	if err := txn.Delete(objectKey(o.ID)); err != nil {
		return err
	}
	for k, v := range o.Meta {
		if err := txn.Delete(append(metaPrefix(k, v), o.ID[:]...)); err != nil {
			return err
		}
	}
	if !o.Source.IsZero() {
		if err := txn.Delete(sourceKey(o.Source)); err != nil {
			return err
		}
	}
	if !o.Expires.IsZero() {
		if err := txn.Delete(expiryKey(o.Expires, o.ID)); err != nil {
			return err
		}
	}
	for _, d := range ix.derive(o) {
		if err := txn.Delete(derivedKey(d.Key)); err != nil {
			return err
		}
	}
	return nil
}

// replaceKeys turns old into new in txn. Deleting every old key and then
// writing every new one is correct for keys both versions share: within a
// transaction the last write to a key wins.
func (ix *Index) replaceKeys(txn *badger.Txn, old, new *fs.Object) error {
	if err := ix.deleteKeys(txn, old); err != nil {
		return err
	}
	return ix.putKeys(txn, new)
}

func getObject(txn *badger.Txn, id fs.ID) (*fs.Object, error) {
	item, err := txn.Get(objectKey(id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fs.E(fs.NotExist, "get", id.String(), nil)
	}
	if err != nil {
		return nil, fs.E(fs.Other, "get", id.String(), err)
	}
	var o *fs.Object
	err = item.Value(func(v []byte) error {
		var derr error
		o, derr = decodeObject(v)
		return derr
	})
	if err != nil {
		return nil, fs.E(fs.Other, "get", id.String(), err)
	}
	return o, nil
}

// durability says whether a commit must be on disk before it returns.
type durability bool

const (
	durable durability = true
	// lazy commits may be lost in a crash: the collector's deletes, which
	// the next collection redoes. They reach the disk with the next
	// durable commit's sync, or when Badger flushes its memtable.
	lazy durability = false
)

// update runs fn in a read-write transaction, retrying on conflicts, and
// publishes the changes fn reports once the commit is applied and, for a
// durable one, synced. Readers see the commit from then on (refresh).
func (ix *Index) update(ctx context.Context, op string, d durability, fn func(txn *badger.Txn) ([]Change, error)) error {
	const maxAttempts = 10
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return fs.E(fs.Other, op, "", err)
		}
		txn := ix.newWriteTxn()
		changes, err := fn(txn)
		if err == nil {
			ix.cnt.gate.RLock()
			err = txn.Commit()
			if err == nil {
				ix.cnt.apply(changes)
			}
			ix.cnt.gate.RUnlock()
		}
		txn.Discard()
		switch {
		case err == nil:
			var serr error
			if d == durable {
				serr = ix.syncDisk()
			}
			// Applied either way: readers and subscribers see it. On a
			// sync error the caller must not acknowledge it, though.
			ix.refresh()
			ix.publish(changes)
			return fs.Wrap(op, "", serr)
		case errors.Is(err, badger.ErrConflict) && attempt < maxAttempts:
			time.Sleep(time.Duration(attempt+1) * time.Millisecond)
			continue
		case errors.Is(err, badger.ErrTxnTooBig):
			return fs.E(fs.Invalid, op, "", fmt.Errorf("batch too large for one transaction: %w", err))
		}
		var fe *fs.Error
		if errors.As(err, &fe) {
			return err
		}
		return fs.E(fs.Other, op, "", err)
	}
}

// Get returns the object with the given id, or a NotExist error.
func (ix *Index) Get(ctx context.Context, id fs.ID) (*fs.Object, error) {
	var o *fs.Object
	err := ix.view(func(txn *badger.Txn) error {
		var err error
		o, err = getObject(txn, id)
		return err
	})
	return o, err
}

// Insert adds new objects, all or none. An id already present is an Exist
// error and nothing is written.
func (ix *Index) Insert(ctx context.Context, objs ...*fs.Object) error {
	for _, o := range objs {
		if err := Validate(o); err != nil {
			return err
		}
	}
	if err := ix.roomFor("insert"); err != nil {
		return err
	}
	return ix.update(ctx, "insert", durable, func(txn *badger.Txn) ([]Change, error) {
		changes := make([]Change, 0, len(objs))
		for _, o := range objs {
			if _, err := txn.Get(objectKey(o.ID)); err == nil {
				return nil, fs.E(fs.Exist, "insert", o.ID.String(), nil)
			}
			if err := ix.putKeys(txn, o); err != nil {
				return nil, err
			}
			changes = append(changes, Change{Op: OpPut, New: o})
		}
		return changes, nil
	})
}

// Outcome says what Register did with one record.
type Outcome uint8

const (
	Added     Outcome = iota // a new object
	Updated                  // the source or the record's description changed (reregister.go)
	Unchanged                // already registered with the same source and description
)

func (o Outcome) String() string {
	return [...]string{"added", "updated", "unchanged"}[o]
}

// Register adds registered objects in one atomic transaction. A record
// whose source location is already known keeps the existing id; it is
// Unchanged when the source looks the same and the record describes the
// object as the last registration did (same Fingerprint), and Updated
// otherwise: a changed source bumps the version and resets the content
// state, a changed description moves the object (reregister.go). A
// record without a Fingerprint gets one from its fields as given.
// Records without a source location are Added.
// Either every record of the batch is applied or none is, and the result
// is the one registering the records one by one, in order, would give
// (the lookups and the building of keys are done for the whole batch
// first: register.go).
func (ix *Index) Register(ctx context.Context, objs []*fs.Object) ([]Outcome, error) {
	for _, o := range objs {
		if err := Validate(o); err != nil {
			return nil, err
		}
		if o.Fingerprint == 0 {
			o.Fingerprint = Fingerprint(o)
		}
	}
	if err := ix.roomFor("register"); err != nil {
		return nil, err
	}
	out := make([]Outcome, len(objs))
	plan := planRegister(objs)
	err := ix.update(ctx, "register", durable, func(txn *badger.Txn) ([]Change, error) {
		return ix.registerIn(txn, objs, plan, out)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Update applies fn to the object with the given id in one transaction and
// returns the new version. fn receives a copy it may modify; it must not
// change the ID. An error from fn aborts the update and is returned.
func (ix *Index) Update(ctx context.Context, id fs.ID, fn func(o *fs.Object) error) (*fs.Object, error) {
	if err := ix.roomFor("update"); err != nil {
		return nil, err
	}
	var res *fs.Object
	err := ix.update(ctx, "update", durable, func(txn *badger.Txn) ([]Change, error) {
		ch, err := ix.updateIn(txn, id, fn)
		if err != nil {
			return nil, err
		}
		res = ch.New
		return []Change{ch}, nil
	})
	return res, err
}

// updateIn is the read-modify-write of one object inside txn.
func (ix *Index) updateIn(txn *badger.Txn, id fs.ID, fn func(o *fs.Object) error) (Change, error) {
	old, err := getObject(txn, id)
	if err != nil {
		return Change{}, err
	}
	o := old.Clone()
	if err := fn(o); err != nil {
		return Change{}, err
	}
	o.ID = id
	if err := Validate(o); err != nil {
		return Change{}, err
	}
	if err := ix.replaceKeys(txn, old, o); err != nil {
		return Change{}, err
	}
	return Change{Op: OpPut, Old: old, New: o}, nil
}

// Delete removes the objects with the given ids, all or none, returning
// the deleted records. A missing id is a NotExist error.
func (ix *Index) Delete(ctx context.Context, ids ...fs.ID) ([]*fs.Object, error) {
	var res []*fs.Object
	err := ix.update(ctx, "delete", durable, func(txn *badger.Txn) ([]Change, error) {
		res = res[:0]
		changes := make([]Change, 0, len(ids))
		for _, id := range ids {
			old, err := getObject(txn, id)
			if err != nil {
				return nil, err
			}
			if err := ix.deleteKeys(txn, old); err != nil {
				return nil, err
			}
			res = append(res, old)
			changes = append(changes, Change{Op: OpDelete, Old: old})
		}
		return changes, nil
	})
	return res, err
}

// Swap atomically deletes the objects in del and inserts the objects in
// add (overwrite = new version at a new id replacing old ones).
func (ix *Index) Swap(ctx context.Context, del []fs.ID, add []*fs.Object) error {
	for _, o := range add {
		if err := Validate(o); err != nil {
			return err
		}
	}
	if err := ix.roomFor("swap"); err != nil {
		return err
	}
	return ix.update(ctx, "swap", durable, func(txn *badger.Txn) ([]Change, error) {
		var changes []Change
		for _, id := range del {
			old, err := getObject(txn, id)
			if fs.KindOf(err) == fs.NotExist {
				continue
			}
			if err != nil {
				return nil, err
			}
			if err := ix.deleteKeys(txn, old); err != nil {
				return nil, err
			}
			changes = append(changes, Change{Op: OpDelete, Old: old})
		}
		for _, o := range add {
			if err := ix.putKeys(txn, o); err != nil {
				return nil, err
			}
			changes = append(changes, Change{Op: OpPut, New: o})
		}
		return changes, nil
	})
}

// BySource returns the id of the object registered at l.
func (ix *Index) BySource(ctx context.Context, l fs.Location) (fs.ID, error) {
	var id fs.ID
	err := ix.view(func(txn *badger.Txn) error {
		item, err := txn.Get(sourceKey(l))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return fs.E(fs.NotExist, "lookup source", l.Provider+":"+l.Path, nil)
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error { copy(id[:], v); return nil })
	})
	return id, err
}

type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Infof(f string, a ...any) {
	b.l.Debug(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Debugf(f string, a ...any) {}

var (
	errNoConds = errors.New("no conditions")
	// ErrStop, returned by a walk callback, ends the walk without error.
	ErrStop = errors.New("stop")
)
