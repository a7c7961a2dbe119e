package views

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
)

// StatObject is Stat for a file plus its whole object: the Info's MD5,
// SHA256, Meta and ContentType are then known (Info.Object is true). It
// costs one catalogue read more than Stat. A directory gets what Stat
// gives. Any right on the view allows it.
func (t *Tree) StatObject(ctx context.Context, p string) (*Info, error) {
	const op = "stat"
	l, err := t.resolve(op, p)
	if err != nil {
		return nil, err
	}
	n, err := t.stat(ctx, op, l)
	if err != nil {
		return nil, err
	}
	if n.dir {
		return newInfo(baseName(l), true, l.rights, n.id, n.ent), nil
	}
	o, err := t.st.Get(ctx, n.id) // waits for a pending MD5 (fs/store md5job.go)
	if err != nil {
		return nil, fs.Wrap(op, p, err)
	}
	return objInfo(baseName(l), l.rights, o), nil
}

// Object returns a copy of the catalogue record of the file at p (the
// object that wins the path). IsDir for a directory. Any right on the
// view allows it.
func (t *Tree) Object(ctx context.Context, p string) (*fs.Object, error) {
	i, err := t.StatObject(ctx, p)
	if err != nil {
		return nil, err
	}
	if i.obj == nil {
		return nil, fs.E(fs.IsDir, "stat", p, nil)
	}
	return i.obj.Clone(), nil
}

// MaxMeta bounds the metadata (keys and values, in bytes) a metadata
// change may leave an object with (removals are always allowed). Every
// key is indexed, a header of S3's HEAD and GET and a property of
// PROPFIND allprop: an object grown through setfattr or PROPPATCH to
// thousands of keys made listings of megabytes for every user who sees
// it. S3's own limit is 2 KiB of user metadata.
const MaxMeta = 16 << 10

// metaBytes sums the lengths of m's keys and values.
func metaBytes(m map[string]string) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v)
	}
	return n
}

// SetMeta changes the metadata of the file at p (every object at the
// path, so the path keeps meaning one file): the keys of set get their
// values, those of del are removed (a key in both is set). A key the
// view's path template uses moves the file: it gets the path its new
// metadata renders to, in every view, as Rename would move it. The
// change is one index transaction, all or nothing.
//
// Errors: IsDir for a directory; Permission without w, or for a key the
// view fixes with set: (changing it would take the file out of the view
// it is in); Invalid for the reserved "name" (use Rename) and dg. keys,
// a key or value the index refuses, removing a key the template needs,
// or metadata the view's filter refuses (naming the view); Exist when
// the new path is taken by another file or a directory; NoSpace when
// the object would hold more than MaxMeta bytes of metadata. Returns the
// file's Info at its (possibly new) path, with its object.
func (t *Tree) SetMeta(ctx context.Context, p string, set map[string]string, del []string) (_ *Info, err error) {
	const op = "setmeta"
	rec := t.audited(ctx, op, p)
	defer rec.end(&err)
	rec.metaKeys(set, del)
	l, _, err := t.file(ctx, op, p, Write)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(set)+len(del))
	for k := range set {
		keys = append(keys, k)
	}
	keys = append(keys, del...)
	for _, k := range keys {
		switch {
		case k == NameKey:
			return nil, fs.E(fs.Invalid, op, p, errors.New(`metadata key "name" is the file's name: rename the file instead`))
		case strings.HasPrefix(k, reservedNS):
			return nil, fs.E(fs.Invalid, op, p, fmt.Errorf("metadata key %q: the %s namespace is reserved", k, reservedNS))
		case k == "" || len(k) > index.MaxMetaKey || strings.ContainsRune(k, 0):
			return nil, fs.E(fs.Invalid, op, p, fmt.Errorf("bad metadata key %.40q", k))
		}
		if _, fixed := l.view.def.Set[k]; fixed {
			return nil, fs.E(fs.Permission, op, p, fmt.Errorf("metadata key %q is fixed by view %s (set:)", k, l.view.name))
		}
	}
	for k, x := range set {
		if len(x) > index.MaxMetaValue || strings.ContainsRune(x, 0) {
			return nil, fs.E(fs.Invalid, op, p, fmt.Errorf("metadata %s: value longer than %d bytes or holding NUL", k, index.MaxMetaValue))
		}
	}
	ix := t.st.Index()
	ids, err := idsAt(ctx, ix, l.view.name, l.vp)
	if err != nil {
		return nil, fs.Wrap(op, p, err)
	}
	if len(ids) == 0 {
		return nil, fs.E(fs.NotExist, op, p, nil)
	}
	rec.id(ids...)
	// Where the newest object goes decides the target; the target is
	// checked before the transaction, as Rename does, and each object is
	// checked again inside it against the path planned.
	cur, err := ix.Get(ctx, ids[len(ids)-1])
	if err != nil {
		return nil, fs.Wrap(op, p, err)
	}
	before := metaBytes(cur.Meta)
	applyMeta(cur, set, del)
	if after := metaBytes(cur.Meta); after > MaxMeta && after > before {
		return nil, fs.E(fs.NoSpace, op, p, fmt.Errorf("it would hold %d bytes of metadata: at most %d", after, MaxMeta))
	}
	np, err := t.metaPath(l, cur)
	if err != nil {
		return nil, fs.E(fs.Invalid, op, p, err)
	}
	if np != l.vp {
		nt, err := lookup(ctx, ix, l.view.name, np)
		if err != nil {
			return nil, fs.Wrap(op, p, err)
		}
		if nt.file || nt.dir {
			return nil, fs.E(fs.Exist, op, p, fmt.Errorf("its new metadata puts it at %s, which exists", np))
		}
	}
	objs, err := t.st.UpdateMany(ctx, ids, func(o *fs.Object) error {
		applyMeta(o, set, del)
		got, err := t.metaPath(l, o)
		if err != nil {
			return fs.E(fs.Invalid, op, p, err)
		}
		if got != np {
			return fs.E(fs.Invalid, op, p, fmt.Errorf("the objects at the path would part: %s and %s", np, got))
		}
		return nil
	}, nil)
	if err != nil {
		return nil, fs.Wrap(op, p, err)
	}
	newest := objs[0]
	for _, o := range objs[1:] {
		if o.ID.Compare(newest.ID) > 0 {
			newest = o
		}
	}
	return objInfo(path.Base(np), l.rights, newest), nil
}

// applyMeta sets and deletes metadata keys of o in place.
func applyMeta(o *fs.Object, set map[string]string, del []string) {
	if o.Meta == nil {
		o.Meta = make(map[string]string, len(set))
	}
	for _, k := range del {
		delete(o.Meta, k)
	}
	for k, x := range set {
		o.Meta[k] = x
	}
}

// metaPath is the path o, given new metadata, has in l's view; an error
// when it would leave the view.
func (t *Tree) metaPath(l loc, o *fs.Object) (string, error) {
	v := l.view
	if !v.filter.Match(getter(o)) {
		return "", fmt.Errorf("the new metadata does not pass view %s's filter %q", v.name, v.filter.String())
	}
	np, ok := v.pathOf(o, nil)
	if !ok {
		return "", fmt.Errorf("the new metadata lacks a key template %q of view %s needs, or renders a path too long", v.tmpl.String(), v.name)
	}
	return np, nil
}
