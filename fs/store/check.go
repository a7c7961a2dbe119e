package store

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
)

// Integrity checks for the operator: Verify re-hashes content, Fsck checks
// that the catalogue, its indexes, the cache and the primary store agree.
// Both scan everything; they are meant for a store no server is using
// (the CLI refuses to run them beside one), although they only take the
// same locks as any reader or writer.

// Damage is one problem found by Verify or Fsck.
type Damage struct {
	Where    string // "cache", "store", "index", "objects"
	ID       fs.ID  // the object concerned, when known
	Path     string // the file or key concerned
	Problem  string
	Repaired bool
}

func (d Damage) String() string {
	s := d.Where + ": "
	if d.ID != (fs.ID{}) {
		s += d.ID.String() + ": "
	}
	s += d.Problem
	if d.Path != "" {
		s += " (" + d.Path + ")"
	}
	if d.Repaired {
		s += " [repaired]"
	}
	return s
}

// CheckOptions configure Verify and Fsck.
type CheckOptions struct {
	Repair bool
	// Progress, if set, is called after each object (Verify: with the
	// content bytes hashed so far) or every few thousand keys (Fsck).
	Progress func(objects, bytes int64)
}

// CheckReport sums up a Verify or Fsck.
type CheckReport struct {
	Objects    int64 // objects examined
	Bytes      int64 // content bytes hashed (Verify)
	Damaged    int   // problems found
	Unrepaired int   // problems left as they were
}

func (r *CheckReport) add(d Damage, report func(Damage)) {
	r.Damaged++
	if !d.Repaired {
		r.Unrepaired++
	}
	if report != nil {
		report(d)
	}
}

// Verify re-hashes every copy of content the store holds — complete cache
// entries and primary-store files — against the object's recorded
// checksums (and size), and reports each mismatch. With Repair, a bad
// cache entry is dropped and the object's state reset so the next read
// fetches it again; a bad stored copy is repaired from a good copy
// elsewhere when there is one — today the primary store is the only
// store, so stored damage is reported as unrepaired. Content whose
// checksums were never recorded cannot be verified and is skipped.
func (s *Store) Verify(ctx context.Context, opts CheckOptions, report func(Damage)) (CheckReport, error) {
	var rep CheckReport
	// Collect ids first: hashing takes long and must not hold one Badger
	// read transaction open for the whole run.
	var todo []*fs.Object
	err := s.idx.Walk(ctx, fs.ID{}, func(o *fs.Object) error {
		if len(o.MD5) == 0 && len(o.SHA256) == 0 {
			return nil
		}
		if o.State != fs.StateStored {
			if info, ok := s.cache.Lookup(o.ContentKey()); !ok || !info.Complete {
				return nil
			}
		}
		todo = append(todo, &fs.Object{ID: o.ID, Version: o.Version, State: o.State})
		return nil
	})
	if err != nil {
		return rep, fs.Wrap("verify", "", err)
	}
	for _, stub := range todo {
		if err := ctx.Err(); err != nil {
			return rep, fs.Wrap("verify", "", err)
		}
		o, err := s.idx.Get(ctx, stub.ID)
		if fs.KindOf(err) == fs.NotExist || (err == nil && o.Version != stub.Version) {
			continue // deleted or replaced since the walk
		}
		if err != nil {
			return rep, err
		}
		rep.Objects++
		if o.State == fs.StateStored {
			p, err := s.primaryFS.LocalPath(primaryPath(o.ID))
			if err != nil {
				return rep, err
			}
			n, bad, err := checkFile(ctx, p, o)
			rep.Bytes += n
			if err != nil {
				return rep, err
			}
			if bad != "" {
				// Repaired from another store's copy, when there is one.
				d := Damage{Where: "store", ID: o.ID, Path: p, Problem: bad}
				s.repairPrimary(ctx, opts, &d)
				rep.add(d, report)
			} else if opts.Repair {
				// Verified: reads may serve it without hashing it again
				// (integrity.go).
				s.stampPrimary(o)
			}
		} else if info, ok := s.cache.Lookup(o.ContentKey()); ok && info.Complete {
			n, bad, err := checkFile(ctx, info.Path, o)
			rep.Bytes += n
			if errors.Is(err, iofs.ErrNotExist) {
				continue // evicted meanwhile
			}
			if err != nil {
				return rep, err
			}
			if bad != "" {
				d := Damage{Where: "cache", ID: o.ID, Path: info.Path, Problem: bad}
				if opts.Repair {
					d.Repaired = s.dropBadCache(ctx, o) == nil
				}
				rep.add(d, report)
			}
		}
		if opts.Progress != nil {
			opts.Progress(rep.Objects, rep.Bytes)
		}
	}
	return rep, nil
}

// dropBadCache removes a corrupt cache entry and resets the object's state
// so the content is fetched (and verified) again on the next read.
func (s *Store) dropBadCache(ctx context.Context, o *fs.Object) error {
	if err := s.cache.Remove(o.ContentKey()); err != nil {
		s.log.Warn("verify: drop cache entry", "id", o.ID, "err", err)
		return err
	}
	_, err := s.idx.Update(ctx, o.ID, func(n *fs.Object) error {
		if n.Version != o.Version || n.State == fs.StateStored {
			return errSkip
		}
		n.State = fs.StateRegistered
		return nil
	})
	if err != nil && !errors.Is(err, errSkip) && fs.KindOf(err) != fs.NotExist {
		return err
	}
	return nil
}

// checkFile hashes the file at p and compares size and checksums with o's.
// It returns the bytes read and a description of the damage ("" if none).
func checkFile(ctx context.Context, p string, o *fs.Object) (int64, string, error) {
	f, err := os.Open(p)
	if errors.Is(err, iofs.ErrNotExist) {
		return 0, "file missing", nil
	}
	if err != nil {
		return 0, "", fs.Wrap("verify", p, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, "", fs.Wrap("verify", p, err)
	}
	if o.Size >= 0 && fi.Size() != o.Size {
		return 0, fmt.Sprintf("size %d, recorded %d", fi.Size(), o.Size), nil
	}
	bad, err := hashCheck(ctx, f, &fs.Object{Size: fi.Size(), SHA256: o.SHA256, MD5: o.MD5})
	if err != nil {
		return 0, "", fs.Wrap("verify", p, err)
	}
	if bad != "" {
		return fi.Size(), bad, nil
	}
	return fi.Size(), "", nil
}

// Fsck checks that the catalogue, its secondary indexes, the cache and the
// primary store agree, and reports every disagreement:
//
//   - index: every record decodes; every metadata posting, source key,
//     expiry key and derived key belongs to an object having that value,
//     and every object has all its keys (index.Check; Repair deletes
//     dangling keys and rewrites missing ones; a bad record is kept);
//   - store: every stored object has its file in objects/ with the
//     recorded size (Repair copies it back from another store's verified
//     copy, when there is one), and every copy recorded in Object.Stores
//     exists with the right size (Repair forgets a bad one, which queues
//     the object for replication again; see replicate.go);
//   - objects: files in objects/ no object references, e.g. left by a
//     crash between the file and the index commit, or corrupt files set
//     aside by a read (Repair deletes them); temporary files of
//     interrupted uploads in objects/.tmp older than this Open (Repair
//     deletes them; Open already does);
//   - cache: entries whose key names no current object version (Repair
//     removes them).
//
// Fsck reads the cache's directory layout (key.state sidecars under a
// two-level fan-out, see backends/cache) to list its entries, as the cache
// offers no listing.
func (s *Store) Fsck(ctx context.Context, opts CheckOptions, report func(Damage)) (CheckReport, error) {
	var rep CheckReport
	progress := func(n int64) {
		if opts.Progress != nil {
			opts.Progress(n, 0)
		}
	}
	err := s.idx.Check(ctx, index.CheckOptions{Repair: opts.Repair, Progress: progress}, func(p index.Problem) {
		rep.add(Damage{Where: "index", ID: p.ID, Path: indexKeyString(p), Problem: p.Kind.String() + ": " + p.Detail, Repaired: p.Repaired}, report)
	})
	if err != nil {
		return rep, err
	}
	// Stored objects and their files.
	stored := make(map[fs.ID]struct{})
	var copies []*fs.Object     // objects with recorded store copies (fsckCopies)
	var damagedPrimary []Damage // repaired from another store's copy, if any
	err = s.idx.Walk(ctx, fs.ID{}, func(o *fs.Object) error {
		rep.Objects++
		if opts.Progress != nil && rep.Objects%10000 == 0 {
			opts.Progress(rep.Objects, 0)
		}
		if c := copiesToCheck(o); c != nil {
			copies = append(copies, c)
		}
		if o.State != fs.StateStored {
			return nil
		}
		stored[o.ID] = struct{}{}
		p, err := s.primaryFS.LocalPath(primaryPath(o.ID))
		if err != nil {
			return err
		}
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, iofs.ErrNotExist):
			damagedPrimary = append(damagedPrimary, Damage{Where: "store", ID: o.ID, Path: p, Problem: "stored content missing"})
		case err != nil:
			return err
		case fi.Size() != o.Size:
			damagedPrimary = append(damagedPrimary, Damage{Where: "store", ID: o.ID, Path: p, Problem: fmt.Sprintf("stored file has %d bytes, recorded %d", fi.Size(), o.Size)})
		}
		return nil
	})
	if err != nil {
		return rep, fs.Wrap("fsck", "", err)
	}
	for _, d := range damagedPrimary {
		s.repairPrimary(ctx, opts, &d)
		rep.add(d, report)
	}
	// Copies in the other stores (replicate.go).
	if err := s.fsckCopies(ctx, copies, opts, &rep, report); err != nil {
		return rep, err
	}
	// Files in objects/ nobody references.
	err = s.primary.List(ctx, "", func(e backends.Entry) error {
		id, ok := primaryID(e.Path)
		if ok {
			if _, known := stored[id]; known {
				return nil
			}
			// Indexed since the walk (a concurrent put)?
			if o, err := s.idx.Get(ctx, id); err == nil && o.State == fs.StateStored {
				return nil
			}
		}
		if s.isFetchedCopy(ctx, e.Path) {
			return nil
		}
		d := Damage{Where: "objects", ID: id, Path: e.Path, Problem: fmt.Sprintf("file (%d bytes) no object references", e.Size)}
		if strings.HasSuffix(e.Path, quarantineSuffix) {
			d.Problem = fmt.Sprintf("corrupt stored file (%d bytes) set aside when read", e.Size)
		}
		if opts.Repair {
			if err := s.primary.Delete(ctx, e.Path); err != nil {
				s.log.Warn("fsck: remove orphan", "path", e.Path, "err", err)
			} else {
				d.Repaired = true
			}
		}
		rep.add(d, report)
		return nil
	})
	if err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return rep, fs.Wrap("fsck", "objects", err)
	}
	// Temporary files of interrupted uploads (recovery.go).
	s.fsckTemp(opts, &rep, report)
	// Cache entries of unknown keys.
	if err := s.fsckCache(ctx, opts, &rep, report); err != nil {
		return rep, err
	}
	return rep, nil
}

func indexKeyString(p index.Problem) string {
	if len(p.Key) == 0 {
		return ""
	}
	return "key " + index.FormatKey(p.Key)
}

// primaryID parses the id out of a primary-store path ("XY/ID", see
// primaryPath).
func primaryID(p string) (fs.ID, bool) {
	id, err := fs.ParseID(path.Base(p))
	if err != nil || primaryPath(id) != p {
		return fs.ID{}, false
	}
	return id, true
}

func (s *Store) fsckCache(ctx context.Context, opts CheckOptions, rep *CheckReport, report func(Damage)) error {
	<-s.cache.Loaded()
	const stateSuffix = ".state"
	root := s.cacheDir
	err := filepath.WalkDir(root, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, iofs.ErrNotExist) {
				return nil
			}
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		key, ok := strings.CutSuffix(d.Name(), stateSuffix)
		if d.IsDir() || !ok {
			return nil
		}
		problem := ""
		idPart, ver, ok := strings.Cut(key, "-")
		id, perr := fs.ParseID(idPart)
		switch {
		case !ok || perr != nil:
			problem = "cache entry with a key that names no object"
		default:
			o, err := s.idx.Get(ctx, id)
			switch {
			case fs.KindOf(err) == fs.NotExist:
				problem = "cache entry of an object the catalogue does not hold"
			case err != nil:
				return err
			case o.ContentKey() != key:
				problem = fmt.Sprintf("cache entry of version %s; the object is at version %d", ver, o.Version)
			}
			// A stored object has a cache entry when its primary copy
			// was unreadable and a replica was read through the cache
			// (fallback.go): evicted like any other, no damage.
		}
		if problem == "" {
			return nil
		}
		dmg := Damage{Where: "cache", ID: id, Path: p, Problem: problem}
		if opts.Repair {
			if err := s.cache.Remove(key); err != nil {
				s.log.Warn("fsck: remove cache entry", "key", key, "err", err)
			} else {
				dmg.Repaired = true
			}
		}
		rep.add(dmg, report)
		return nil
	})
	if err != nil {
		return fs.Wrap("fsck", root, err)
	}
	return nil
}
