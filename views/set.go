package views

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
	"github.com/datagate/datagate/fs/store"
)

// Set is the set of views: those of the configuration plus those created
// at run time. Its Derive method is the index's Deriver. Safe for
// concurrent use; readers never block: the set is an immutable snapshot
// behind an atomic pointer, replaced whole when a view is created.
type Set struct {
	cur   atomic.Pointer[snapshot]
	log   *slog.Logger
	audit atomic.Pointer[slog.Logger] // nil: no audit (audit.go)

	collisions atomic.Uint64 // objects superseded at a shared path (collisions.go)

	mu sync.Mutex // serialises CreateView/DeleteView, Attach and Reconfigure
	// guarded by mu
	st *store.Store

	rb rebuilder // re-derives view paths after Reconfigure (reload.go)
}

type snapshot struct {
	views map[string]*View
	list  []*View // by name
}

func newSnapshot(views map[string]*View) *snapshot {
	s := &snapshot{views: views}
	for _, n := range sortedNames(views) {
		s.list = append(s.list, views[n])
	}
	return s
}

// runtimeKey is where a view created at run time is kept: a Badger key
// outside the index's prefixes (0x01-0x0f belong to fs/index).
const runtimePrefix = 0x10

func runtimeKey(name string) []byte { return append([]byte{runtimePrefix}, name...) }

// runtimeRecord is a persisted runtime view.
type runtimeRecord struct {
	Def   Def    `json:"def"`
	Owner string `json:"owner,omitempty"`
}

// parseDefs parses view definitions; an error names the view.
func parseDefs(defs map[string]Def) (map[string]*View, error) {
	views := make(map[string]*View, len(defs))
	for _, name := range sortedNames(defs) {
		v, err := NewView(name, defs[name])
		if err != nil {
			return nil, err
		}
		views[name] = v
	}
	return views, nil
}

// NewSet parses the configured views. Errors are Invalid and name the
// view. log may be nil.
func NewSet(defs map[string]Def, log *slog.Logger) (*Set, error) {
	if log == nil {
		log = slog.Default()
	}
	views, err := parseDefs(defs)
	if err != nil {
		return nil, err
	}
	s := &Set{log: log}
	s.cur.Store(newSnapshot(views))
	return s, nil
}

// Attach gives the set the store whose index it derives keys for, and
// loads the views created at run time in earlier runs. Call it once,
// right after store.Open, before anything else writes.
//
// The index derives path entries with the view definitions current at
// each write, so entries made under an older definition (a template or
// filter edited in the configuration, a view added or removed) would be
// wrong. Attach keeps the configured definitions in the index (prefix
// 0x11) and, when they differ from the last run's, rebuilds the path
// index with the index's repairing check: a full scan, O(catalogue),
// logged, only at such a start.
func (s *Set) Attach(ctx context.Context, st *store.Store) error {
	if err := s.attach(ctx, st); err != nil {
		return err
	}
	return s.syncDefs(ctx, st)
}

// defsPrefix keys the configured definitions the path index was built
// with.
const defsPrefix = 0x11

// formatKey, beside the definitions, names the path index's value
// format (no view name can hold a NUL), so that the first start after a
// format change (v2 added the ETag) rebuilds the index once, as an
// edited view does. Indexes built before it was kept lack it.
const (
	formatKey   = "\x00format"
	valueFormat = "2"
)

// configuredDefs returns the definitions of snap's configured views as
// they are kept in the index, with the format key.
func configuredDefs(snap *snapshot) map[string]string {
	want := map[string]string{}
	for _, v := range snap.list {
		if !v.runtime {
			b, _ := json.Marshal(v.def)
			want[v.name] = string(b)
		}
	}
	want[formatKey] = valueFormat
	return want
}

// loadDefs returns the definitions the path index was built with.
func loadDefs(db *badger.DB) (map[string]string, error) {
	have := map[string]string{}
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{defsPrefix}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			b, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			have[string(it.Item().Key()[1:])] = string(b)
		}
		return nil
	})
	if err != nil {
		return nil, fs.E(fs.Other, "load view definitions", "", err)
	}
	return have, nil
}

func (s *Set) syncDefs(ctx context.Context, st *store.Store) error {
	want := configuredDefs(s.cur.Load())
	have, err := loadDefs(st.Index().DB())
	if err != nil {
		return err
	}
	var changed []string
	for n, d := range want {
		if have[n] != d {
			changed = append(changed, n)
		}
	}
	for n := range have {
		if _, ok := want[n]; !ok {
			changed = append(changed, n)
		}
	}
	if len(changed) == 0 {
		return nil
	}
	sort.Strings(changed)
	empty := true
	if err := st.Index().Walk(ctx, fs.ID{}, func(*fs.Object) error { empty = false; return index.ErrStop }); err != nil {
		return fs.Wrap("load view definitions", "", err)
	}
	if !empty {
		s.log.Info("view definitions changed since the path index was built: rebuilding it", "views", changed)
		fixed := 0
		err = st.Index().Check(ctx, index.CheckOptions{Repair: true}, func(p index.Problem) {
			if p.Repaired {
				fixed++
			}
		})
		if err != nil {
			return fs.Wrap("rebuild path index", strings.Join(changed, ","), err)
		}
		s.log.Info("path index rebuilt", "views", changed, "repairs", fixed)
	}
	return storeDefs(st, want)
}

// storeDefs records want as the definitions the path index is built with.
func storeDefs(st *store.Store, want map[string]string) error {
	have, err := loadDefs(st.Index().DB())
	if err != nil {
		return err
	}
	err = st.Index().DB().Update(func(txn *badger.Txn) error {
		for n := range have {
			if _, ok := want[n]; !ok {
				if err := txn.Delete(append([]byte{defsPrefix}, n...)); err != nil {
					return err
				}
			}
		}
		for n, d := range want {
			if err := txn.Set(append([]byte{defsPrefix}, n...), []byte(d)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fs.E(fs.Other, "save view definitions", "", err)
	}
	return st.Index().Sync()
}

func (s *Set) attach(ctx context.Context, st *store.Store) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st = st
	snap := s.cur.Load()
	views := make(map[string]*View, len(snap.views))
	for k, v := range snap.views {
		views[k] = v
	}
	if err := st.Index().DB().View(func(txn *badger.Txn) error { return s.loadRuntime(txn, views) }); err != nil {
		return fs.E(fs.Other, "load views", "", err)
	}
	s.cur.Store(newSnapshot(views))
	return nil
}

// loadRuntime adds the views created at run time to views, which holds
// the configured ones: a configured view hides a runtime one of its name.
func (s *Set) loadRuntime(txn *badger.Txn, views map[string]*View) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{runtimePrefix}, PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		name := string(it.Item().Key()[1:])
		var rec runtimeRecord
		if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &rec) }); err != nil {
			return fmt.Errorf("runtime view %s: %w", name, err)
		}
		if _, ok := views[name]; ok {
			s.log.Warn("a configured view hides the view of the same name created at run time", "view", name)
			continue
		}
		v, err := NewView(name, rec.Def)
		if err != nil {
			s.log.Error("runtime view no longer parses; ignored", "view", name, "err", err)
			continue
		}
		v.runtime, v.owner = true, rec.Owner
		views[name] = v
	}
	return nil
}

// View returns the view called name.
func (s *Set) View(name string) (*View, bool) {
	v, ok := s.cur.Load().views[name]
	return v, ok
}

// Views returns every view, by name.
func (s *Set) Views() []*View {
	return append([]*View(nil), s.cur.Load().list...)
}

// Derive is the index's Deriver: the path index keys of o, one per view
// o is in (see the package doc for the layout). A directory marker yields
// one key, in its own view only.
func (s *Set) Derive(o *fs.Object) []index.Derived {
	snap := s.cur.Load()
	if dir, ok := o.Meta[MetaDirPath]; ok {
		v := snap.views[o.Meta[MetaDirView]]
		if v == nil || dir == "" || !pathFits(dir) {
			return nil
		}
		return []index.Derived{{Key: markerKey(v.name, dir, o.ID), Value: encodeEntry(entryOf(o, true))}}
	}
	var (
		out  []index.Derived
		meta map[string]string
		val  []byte
		get  = getter(o)
	)
	for _, v := range snap.list {
		if !v.filter.Match(get) {
			continue
		}
		if meta == nil {
			meta = renderMeta(o)
		}
		p, ok := v.tmpl.Render(meta)
		if !ok || !pathFits(p) {
			continue
		}
		if val == nil {
			val = encodeEntry(entryOf(o, false))
		}
		out = append(out, index.Derived{Key: fileKey(v.name, p, o.ID), Value: val})
	}
	return out
}

// CreateView adds a view at run time (an S3 CreateBucket) and keeps it in
// the index, so it survives restarts; owner (may be "") gets every right
// on it. Existing objects that fall in the view are re-indexed into it.
// That needs an index lookup, so the filter must have at least one
// equality condition (key = value); otherwise the error is Invalid. A
// view of that name already existing is an Exist error.
func (s *Set) CreateView(ctx context.Context, name string, d Def, owner string) (*View, error) {
	v, err := NewView(name, d)
	if err != nil {
		return nil, err
	}
	conds := v.filter.Equalities()
	if len(conds) == 0 {
		return nil, fs.E(fs.Invalid, "create view", name, errors.New("a view created at run time needs an equality condition (key = value) in its filter"))
	}
	v.runtime, v.owner = true, owner
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st == nil {
		return nil, fs.E(fs.Unavailable, "create view", name, errors.New("view set not attached to a store"))
	}
	snap := s.cur.Load()
	if _, ok := snap.views[name]; ok {
		return nil, fs.E(fs.Exist, "create view", name, nil)
	}
	rec, err := json.Marshal(runtimeRecord{Def: v.def, Owner: owner})
	if err != nil {
		return nil, fs.E(fs.Other, "create view", name, err)
	}
	if err := s.st.Index().DB().Update(func(txn *badger.Txn) error {
		return txn.Set(runtimeKey(name), rec)
	}); err != nil {
		return nil, fs.E(fs.Other, "create view", name, err)
	}
	// Written past the index, so not synced by it: an acknowledged
	// CreateBucket must survive a power cut.
	if err := s.st.Index().Sync(); err != nil {
		return nil, fs.Wrap("create view", name, err)
	}
	views := make(map[string]*View, len(snap.views)+1)
	for k, x := range snap.views {
		views[k] = x
	}
	views[name] = v
	s.cur.Store(newSnapshot(views))
	s.fence()
	// From here new writes derive keys for the view; re-index what was
	// there before. A no-op update re-derives an object's keys.
	var ids []fs.ID
	err = s.st.Find(ctx, conds, index.FindOptions{}, func(o *fs.Object) error {
		if _, ok := v.PathOf(o); ok {
			ids = append(ids, o.ID)
		}
		return nil
	})
	for _, id := range ids {
		if err != nil {
			break
		}
		_, err = s.st.Update(ctx, id, func(*fs.Object) error { return nil })
		if fs.KindOf(err) == fs.NotExist {
			err = nil // deleted meanwhile
		}
	}
	if err != nil {
		return nil, fs.Wrap("create view "+name, "re-index existing objects", err)
	}
	return v, nil
}

// DeleteView removes a view created at run time. It must be empty (no
// object and no directory): otherwise the error is NotEmpty. A configured
// view cannot be deleted (Permission); an unknown one is NotExist.
func (s *Set) DeleteView(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := s.cur.Load()
	v, ok := snap.views[name]
	switch {
	case !ok:
		return fs.E(fs.NotExist, "delete view", name, nil)
	case !v.runtime:
		return fs.E(fs.Permission, "delete view", name, errors.New("a configured view is removed from the configuration"))
	case s.st == nil:
		return fs.E(fs.Unavailable, "delete view", name, errors.New("view set not attached to a store"))
	}
	empty := true
	err := s.st.Index().Derived(ctx, index.DerivedOptions{Prefix: viewBase(name)}, func(_, _ []byte) error {
		empty = false
		return index.ErrStop
	})
	if err != nil {
		return fs.Wrap("delete view", name, err)
	}
	if !empty {
		return fs.E(fs.NotEmpty, "delete view", name, nil)
	}
	if err := s.st.Index().DB().Update(func(txn *badger.Txn) error { return txn.Delete(runtimeKey(name)) }); err != nil {
		return fs.E(fs.Other, "delete view", name, err)
	}
	if err := s.st.Index().Sync(); err != nil {
		return fs.Wrap("delete view", name, err)
	}
	views := make(map[string]*View, len(snap.views))
	for k, x := range snap.views {
		if k != name {
			views[k] = x
		}
	}
	s.cur.Store(newSnapshot(views))
	s.fence()
	return nil
}

// fence follows a change of the definitions: no write that derived its
// keys before it commits after it (index.FenceDerivations), so the keys
// of the old definitions are all in the index for a rebuild to sweep.
func (s *Set) fence() {
	if s.st == nil {
		return
	}
	if err := s.st.Index().FenceDerivations(); err != nil {
		// The rebuild's grace period still covers most such writes.
		s.log.Warn("fence of view path derivations", "err", err)
	}
}

// Count returns how many objects are at a path of view name (paths
// hidden by a newer object count too) and how many directory markers it
// has. It walks the whole view: O(objects in the view), for operators
// (datagate views), never for a request path.
func (s *Set) Count(ctx context.Context, name string) (objects, markers int, err error) {
	s.mu.Lock()
	st := s.st
	s.mu.Unlock()
	if st == nil {
		return 0, 0, fs.E(fs.Unavailable, "count view", name, errors.New("view set not attached to a store"))
	}
	base := viewBase(name)
	err = st.Index().Derived(ctx, index.DerivedOptions{Prefix: base}, func(k, _ []byte) error {
		if _, _, marker, ok := keyPath(base, k); ok && marker {
			markers++
		} else {
			objects++
		}
		return nil
	})
	return objects, markers, err
}
