package views

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/pathtmpl"
)

// MaxRename bounds how many objects one directory rename may move, so
// the plan stays small in memory (the index may refuse a smaller batch as
// too large for one transaction: the rename then fails whole).
const MaxRename = 100_000

// Rename moves the file or directory at from to to. It is a metadata
// change: the objects get the metadata the new path implies (to is
// matched with its view's template; moving into another view also adds
// that view's set:) and then appear at their new paths in every view. A
// directory is moved with everything under it in one transaction, or not
// at all. What is at to is replaced: every object at a file path, or the
// markers of an empty directory (a non-empty one is NotEmpty). A file
// onto a directory is IsDir, a directory onto a file NotDir, a directory
// into itself Invalid, and a target whose metadata would not put the
// object at to (the view's filter refuses it) Invalid, naming the view.
// Needs w on both views.
func (t *Tree) Rename(ctx context.Context, from, to string) (err error) {
	const op = "rename"
	rec := t.audited(ctx, op, from)
	defer rec.end(&err)
	rec.add(slog.String("to", to))
	lf, err := t.resolve(op, from)
	if err != nil {
		return err
	}
	lt, err := t.resolve(op, to)
	if err != nil {
		return err
	}
	if lf.root || lf.vp == "" {
		return fs.E(fs.Permission, op, from, errors.New("a view's root cannot be renamed"))
	}
	if lt.root || lt.vp == "" {
		return fs.E(fs.Exist, op, to, nil)
	}
	nf, err := t.stat(ctx, op, lf)
	if err != nil {
		return err
	}
	if err := t.need(op, lf, Write); err != nil {
		return err
	}
	if err := t.need(op, lt, Write); err != nil {
		return err
	}
	if lf.view == lt.view && lf.vp == lt.vp {
		return nil
	}
	ix := t.st.Index()
	nt, err := lookup(ctx, ix, lt.view.name, lt.vp)
	if err != nil {
		return fs.Wrap(op, to, err)
	}
	type plan struct {
		path   string
		marker bool
	}
	plans := map[fs.ID]plan{}
	var ids, del []fs.ID
	if nf.dir {
		switch {
		case lf.view == lt.view && strings.HasPrefix(lt.vp+"/", lf.vp+"/"):
			return fs.E(fs.Invalid, op, to, fmt.Errorf("cannot move directory %s into itself", from))
		case nt.file:
			return fs.E(fs.NotDir, op, to, nil)
		case nt.dir:
			if del, err = t.markersOnly(ctx, op, lt); err != nil {
				return err
			}
		}
		ents, more, err := subtree(ctx, ix, lf.view.name, lf.vp, MaxRename)
		if err != nil {
			return fs.Wrap(op, from, err)
		}
		if more {
			return fs.E(fs.Invalid, op, from, fmt.Errorf("directory holds more than %d objects", MaxRename))
		}
		for _, e := range ents {
			np := lt.vp
			if e.rel != "" {
				np += "/" + e.rel
			}
			plans[e.id] = plan{path: np, marker: e.marker}
			ids = append(ids, e.id)
		}
	} else {
		if nt.dir {
			return fs.E(fs.IsDir, op, to, nil)
		}
		if lt.dir {
			return fs.E(fs.NotDir, op, to, nil)
		}
		if ids, err = idsAt(ctx, ix, lf.view.name, lf.vp); err != nil {
			return fs.Wrap(op, from, err)
		}
		for _, id := range ids {
			plans[id] = plan{path: lt.vp}
		}
		if nt.file {
			if del, err = idsAt(ctx, ix, lt.view.name, lt.vp); err != nil {
				return fs.Wrap(op, to, err)
			}
		}
	}
	// An object may already be at to through the other view: it moves,
	// it is not deleted.
	kept := del[:0]
	for _, id := range del {
		if _, ok := plans[id]; !ok {
			kept = append(kept, id)
		}
	}
	del = kept
	cross := lf.view != lt.view
	rec.id(ids...)
	_, err = t.st.UpdateMany(ctx, ids, func(o *fs.Object) error {
		pl := plans[o.ID]
		if pl.marker {
			meta, err := dirMeta(lt.view, pl.path, o.Meta)
			if err != nil {
				return fs.E(fs.Invalid, op, to, err)
			}
			o.Meta = meta
			o.Name = unescapedBase(pl.path)
			return nil
		}
		// Within a view, set: was applied when the object came in (or
		// deliberately not, for registered objects): leave it be.
		name, meta, err := pathMeta(lt.view, pl.path, o.Meta, cross)
		if err != nil {
			return fs.E(fs.Invalid, op, to, err)
		}
		o.Name, o.Meta = name, meta
		return nil
	}, del)
	if err != nil {
		return fs.Wrap(op, from, err)
	}
	return nil
}

func unescapedBase(p string) string {
	b := path.Base(p)
	if u, err := pathtmpl.UnescapeSegment(b); err == nil {
		return u
	}
	return b
}
