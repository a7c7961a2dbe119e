package views

import (
	"bytes"
	"context"
	"strings"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
)

// node is what one path of a view is.
type node struct {
	file    bool
	id      fs.ID // the newest object at the path (file)
	ent     entry // file: its entry; directory: its marker's, if any
	dir     bool
	hasMark bool
}

// lookup finds what path vp (non-empty) of view is: one seek. The keys of
// the objects at vp (vp 0x00 id), then those under it as a directory (vp
// 0x01 ...) are adjacent, so one forward walk sees the newest id (ids are
// time-ordered) and then whether a directory follows. A directory wins
// over a file of the same name.
func lookup(ctx context.Context, ix *index.Index, view, vp string) (node, error) {
	var n node
	base := appendPath(viewBase(view), vp)
	fileP := len(base)
	var err error
	werr := ix.Derived(ctx, index.DerivedOptions{Snapshot: true, Prefix: base, Start: append(bytes.Clone(base), sepEnd)}, func(k, v []byte) error {
		if len(k) <= fileP {
			return index.ErrStop
		}
		switch k[fileP] {
		case sepEnd:
			n.file = true
			copy(n.id[:], k[len(k)-idLen:])
			n.ent, err = decodeEntry(v)
			return err
		case sepDir:
			n.dir = true
			if len(k) == fileP+2+idLen && k[fileP+1] == sepEnd {
				n.hasMark = true
				n.ent, err = decodeEntry(v)
			}
		}
		return index.ErrStop
	})
	if werr != nil {
		return n, werr
	}
	if n.dir {
		n.file = false
		if !n.hasMark {
			n.ent = entry{}
		}
	}
	return n, nil
}

// idsAt returns every object at file path vp of view, oldest first.
func idsAt(ctx context.Context, ix *index.Index, view, vp string) ([]fs.ID, error) {
	var ids []fs.ID
	err := ix.Derived(ctx, index.DerivedOptions{Snapshot: true, Prefix: fileKeyPrefix(view, vp)}, func(k, _ []byte) error {
		var id fs.ID
		copy(id[:], k[len(k)-idLen:])
		ids = append(ids, id)
		return nil
	})
	return ids, err
}

// subEntry is one key under a directory.
type subEntry struct {
	rel    string // path relative to the directory ("" for its own marker)
	id     fs.ID
	marker bool // rel is then a directory (the marker's)
}

// subtree returns the keys under directory dir of view, in key order: at
// most limit of them (0: no limit), and whether there were more.
func subtree(ctx context.Context, ix *index.Index, view, dir string, limit int) ([]subEntry, bool, error) {
	base := viewBase(view)
	prefix := dirPrefix(view, dir)
	var out []subEntry
	more := false
	err := ix.Derived(ctx, index.DerivedOptions{Snapshot: true, Prefix: prefix}, func(k, _ []byte) error {
		if limit > 0 && len(out) == limit {
			more = true
			return index.ErrStop
		}
		p, id, marker, ok := keyPath(base, k)
		if !ok {
			return nil
		}
		rel := strings.TrimPrefix(p, dir)
		rel = strings.TrimPrefix(rel, "/")
		out = append(out, subEntry{rel: rel, id: id, marker: marker})
		return nil
	})
	return out, more, err
}

// listPage lists up to n entries of directory dir of view with names
// after "after", in name order. skipRun is how many keys of a
// subdirectory's subtree are walked before seeking past it instead: short
// subtrees are cheaper to step over than to seek past (a seek opens a new
// iterator).
func listPage(ctx context.Context, ix *index.Index, view, dir, after string, n int, mk func(name string, isDir bool, id fs.ID, e entry, hasEnt bool) *Info) ([]*Info, error) {
	const skipRun = 16
	prefix := dirPrefix(view, dir)
	start := prefix
	if after != "" {
		start = append(append(bytes.Clone(prefix), after...), afterDir)
	}
	var (
		out     []*Info
		pend    *Info
		pendKey []byte
	)
	for {
		var (
			restart []byte
			full    bool
			sub     []byte
			subN    int
			derr    error
		)
		err := ix.Derived(ctx, index.DerivedOptions{Snapshot: true, Prefix: prefix, Start: start}, func(k, v []byte) error {
			if sub != nil {
				if bytes.HasPrefix(k, sub) {
					if subN++; subN > skipRun {
						restart = append(sub[:len(sub)-1:len(sub)-1], afterDir)
						return index.ErrStop
					}
					return nil
				}
				sub = nil
			}
			rest := k[len(prefix):]
			i := bytes.IndexAny(rest, "\x00\x01")
			if i <= 0 || i+1 >= len(rest) {
				return nil // this directory's own marker (or a malformed key)
			}
			name := rest[:i]
			if pend != nil && !bytes.Equal(name, pendKey) {
				out, pend = append(out, pend), nil
				if len(out) >= n {
					full = true
					return index.ErrStop
				}
			}
			if rest[i] == sepEnd {
				e, err := decodeEntry(v)
				if err != nil {
					derr = err
					return err
				}
				var id fs.ID
				copy(id[:], k[len(k)-idLen:])
				// Several objects under one name: the newest (last) wins.
				pend = mk(string(name), false, id, e, true)
				pendKey = append(pendKey[:0], name...)
				return nil
			}
			// A directory: it hides a file of the same name.
			pend = nil
			var info *Info
			if rest[i+1] == sepEnd && len(rest) == i+2+idLen {
				e, err := decodeEntry(v)
				if err != nil {
					derr = err
					return err
				}
				info = mk(string(name), true, fs.ID{}, e, true)
			} else {
				info = mk(string(name), true, fs.ID{}, entry{}, false)
			}
			out = append(out, info)
			if len(out) >= n {
				full = true
				return index.ErrStop
			}
			sub = append(bytes.Clone(prefix), rest[:i+1]...)
			subN = 0
			return nil
		})
		if derr != nil {
			return nil, derr
		}
		if err != nil {
			return nil, err
		}
		if full {
			return out, nil
		}
		if restart == nil {
			break
		}
		start = restart
	}
	if pend != nil {
		out = append(out, pend)
	}
	return out, nil
}

// markersOf returns the ids of directory dir's own markers: the keys
// right under its prefix with an empty name.
func markersOf(ctx context.Context, ix *index.Index, view, dir string) ([]fs.ID, error) {
	var ids []fs.ID
	err := ix.Derived(ctx, index.DerivedOptions{Snapshot: true, Prefix: append(dirPrefix(view, dir), sepEnd)}, func(k, _ []byte) error {
		var id fs.ID
		copy(id[:], k[len(k)-idLen:])
		ids = append(ids, id)
		return nil
	})
	return ids, err
}
