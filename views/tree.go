package views

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"strings"
	"time"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/pathtmpl"
	"github.com/datagate/datagate/fs/store"
)

// TreeOptions configure NewTree.
type TreeOptions struct {
	Set     *Set
	Store   *store.Store
	User    string
	Profile Profile
	// ViewDirs makes the root always hold one directory per view, even
	// when the user sees one view (the S3 front-end: buckets are views).
	ViewDirs bool
	// StatfsDir is the directory whose file system Statfs reports (the
	// data directory); "" reports zeros.
	StatfsDir string
}

// Tree is one user's virtual file system. It is safe for concurrent use
// and cheap to make (one per session is fine). Every method cleans and
// checks its paths (see cleanPath) and the user's rights, and returns
// *fs.Error with the path as the user gave it.
type Tree struct {
	// immutable after NewTree
	set      *Set
	st       *store.Store
	user     string
	prof     Profile
	viewDirs bool
	statfs   string
	actor    func(context.Context) Actor // for audit records, when ctx has none (WithActor)
}

// NewTree returns the tree of opts.User.
func NewTree(opts TreeOptions) *Tree {
	prof := opts.Profile
	if prof.Views == nil {
		prof.Views = map[string]Rights{}
	}
	return &Tree{set: opts.Set, st: opts.Store, user: opts.User, prof: prof, viewDirs: opts.ViewDirs, statfs: opts.StatfsDir}
}

// User returns the tree's user.
func (t *Tree) User() string { return t.user }

// visible returns the views the user sees with their rights, by name.
func (t *Tree) visible() ([]*View, []Rights) {
	var vs []*View
	var rs []Rights
	for _, v := range t.set.cur.Load().list {
		r := t.prof.Views[v.name]
		if v.runtime && v.owner != "" && v.owner == t.user {
			r = All
		}
		if r != 0 {
			vs = append(vs, v)
			rs = append(rs, r)
		}
	}
	return vs, rs
}

// Views returns the names of the views the user sees, with their rights.
func (t *Tree) Views() map[string]Rights {
	vs, rs := t.visible()
	m := make(map[string]Rights, len(vs))
	for i, v := range vs {
		m[v.name] = rs[i]
	}
	return m
}

// CreateView creates a view at run time on behalf of the user (S3
// CreateBucket), who then has every right on it. Permission unless the
// profile allows it; see Set.CreateView for the rest.
func (t *Tree) CreateView(ctx context.Context, name string, d Def) (err error) {
	defer t.auditedView(ctx, "create view", name).end(&err)
	if !t.prof.CreateViews {
		return fs.E(fs.Permission, "create view", name, nil)
	}
	_, err = t.set.CreateView(ctx, name, d, t.user)
	return err
}

// DeleteView deletes a view created at run time (S3 DeleteBucket): the
// user must have d on it (its creator has). A view they do not see is
// NotExist; see Set.DeleteView for the rest.
func (t *Tree) DeleteView(ctx context.Context, name string) (err error) {
	defer t.auditedView(ctx, "delete view", name).end(&err)
	if t.Views()[name]&Delete == 0 {
		return fs.E(fs.NotExist, "delete view", name, nil)
	}
	return t.set.DeleteView(ctx, name)
}

// loc is a resolved path.
type loc struct {
	user   string // the path as given, for errors
	root   bool   // the user's root, holding one directory per view
	view   *View
	rights Rights
	vp     string // path within the view; "" is the view's root
	dir    bool   // the path had a trailing slash
	segs   []string
	name   string // base name: the last segment, or "/" for the root
}

// resolve cleans p and finds its view. A view the user does not see is
// NotExist, whether or not it exists, so as not to reveal it.
func (t *Tree) resolve(op, p string) (loc, error) {
	segs, dir, err := cleanPath(op, p)
	if err != nil {
		return loc{}, err
	}
	l := loc{user: p, dir: dir, name: "/"}
	if len(segs) > 0 {
		l.name = segs[len(segs)-1]
	}
	vs, rs := t.visible()
	if len(vs) == 1 && !t.viewDirs {
		l.view, l.rights = vs[0], rs[0]
		l.vp = strings.Join(segs, "/")
		l.segs = segs
		return l, nil
	}
	if len(segs) == 0 {
		l.root = true
		return l, nil
	}
	for i, v := range vs {
		if v.name == segs[0] {
			l.view, l.rights = v, rs[i]
			l.segs = segs[1:]
			l.vp = strings.Join(l.segs, "/")
			return l, nil
		}
	}
	return loc{}, fs.E(fs.NotExist, op, p, nil)
}

func (t *Tree) need(op string, l loc, r Rights) error {
	if l.root || l.rights&r != r {
		return fs.E(fs.Permission, op, l.user, fmt.Errorf("permission denied: needs right %q on view %s", r.String(), viewName(l)))
	}
	return nil
}

func viewName(l loc) string {
	if l.view == nil {
		return "(root)"
	}
	return l.view.name
}

// stat resolves l to what it is.
func (t *Tree) stat(ctx context.Context, op string, l loc) (node, error) {
	if l.root || l.vp == "" {
		return node{dir: true}, nil
	}
	n, err := lookup(ctx, t.st.Index(), l.view.name, l.vp)
	if err != nil {
		return n, fs.Wrap(op, l.user, err)
	}
	if !n.file && !n.dir {
		return n, fs.E(fs.NotExist, op, l.user, nil)
	}
	if n.file && l.dir {
		return n, fs.E(fs.NotDir, op, l.user, nil)
	}
	return n, nil
}

// baseName is the name Stat reports for l.
// file resolves p to the file there, for an operation that needs right r:
// NotExist, IsDir for a directory, Permission without r.
func (t *Tree) file(ctx context.Context, op, p string, r Rights) (loc, node, error) {
	l, err := t.resolve(op, p)
	if err != nil {
		return loc{}, node{}, err
	}
	n, err := t.stat(ctx, op, l)
	if err != nil {
		return loc{}, node{}, err
	}
	if n.dir {
		return loc{}, node{}, fs.E(fs.IsDir, op, p, nil)
	}
	if err := t.need(op, l, r); err != nil {
		return loc{}, node{}, err
	}
	return l, n, nil
}

func baseName(l loc) string { return l.name }

// Stat describes the file or directory at p. Any right on the view
// allows it.
func (t *Tree) Stat(ctx context.Context, p string) (*Info, error) {
	l, err := t.resolve("stat", p)
	if err != nil {
		return nil, err
	}
	n, err := t.stat(ctx, "stat", l)
	if err != nil {
		return nil, err
	}
	return newInfo(baseName(l), n.dir, l.rights, n.id, n.ent), nil
}

// ReadDir lists directory p: at most n entries (n <= 0: 1000) whose names
// sort after "after" (byte order), in name order. A page shorter than n
// ends the listing; pass the last name as after to get the next page.
// Cost: O(entries · log catalogue), whatever the directory's size. Needs
// r on the view.
func (t *Tree) ReadDir(ctx context.Context, p, after string, n int) ([]*Info, error) {
	const op = "readdir"
	if n <= 0 {
		n = 1000
	}
	l, err := t.resolve(op, p)
	if err != nil {
		return nil, err
	}
	if l.root {
		vs, rs := t.visible()
		var out []*Info
		for i, v := range vs {
			if v.name > after && len(out) < n {
				out = append(out, newInfo(v.name, true, rs[i], fs.ID{}, entry{}))
			}
		}
		return out, nil
	}
	if err := t.need(op, l, Read); err != nil {
		return nil, err
	}
	nd, err := t.stat(ctx, op, l)
	if err != nil {
		return nil, err
	}
	if !nd.dir {
		return nil, fs.E(fs.NotDir, op, l.user, nil)
	}
	out, err := listPage(ctx, t.st.Index(), l.view.name, l.vp, after, n, func(name string, dir bool, id fs.ID, e entry, _ bool) *Info {
		return newInfo(name, dir, l.rights, id, e)
	})
	if err != nil {
		return nil, fs.Wrap(op, l.user, err)
	}
	return out, nil
}

// File is an open file of a Tree: io.Reader, io.ReaderAt, io.Seeker,
// io.WriterTo and io.Closer over the object's content, fetched lazily
// through the store. File gives the plain local file when the content is
// whole on disk (for sendfile or FUSE passthrough).
type File struct {
	*store.Reader
	info *Info
}

// Stat describes the open file.
func (f *File) Stat() *Info { return f.info }

// File returns the plain local file holding the whole content, if any.
func (f *File) File() (*os.File, bool) { return f.Reader.File() }

// Open opens the file at p for reading. A directory is IsDir. Needs r.
func (t *Tree) Open(ctx context.Context, p string) (*File, error) {
	const op = "open"
	l, n, err := t.file(ctx, op, p, Read)
	if err != nil {
		return nil, err
	}
	r, err := t.st.Open(ctx, n.id)
	if err != nil {
		return nil, fs.Wrap(op, l.user, err)
	}
	return &File{Reader: r, info: objInfo(baseName(l), l.rights, r.Object())}, nil
}

// OpenID opens object id for reading, with the rights of path p, where
// the Tree showed it: for front-ends that resolved p earlier (a FUSE
// inode) and must read that object even if p has since moved or been
// taken by another one. NotExist once the object is gone. Needs r on p's
// view; p itself need not exist any more.
func (t *Tree) OpenID(ctx context.Context, p string, id fs.ID) (*File, error) {
	const op = "open"
	l, err := t.resolve(op, p)
	if err != nil {
		return nil, err
	}
	if l.root || l.vp == "" {
		return nil, fs.E(fs.IsDir, op, p, nil)
	}
	if err := t.need(op, l, Read); err != nil {
		return nil, err
	}
	r, err := t.st.Open(ctx, id)
	if err != nil {
		return nil, fs.Wrap(op, p, err)
	}
	return &File{Reader: r, info: objInfo(baseName(l), l.rights, r.Object())}, nil
}

// CreateOptions describe an upload.
type CreateOptions struct {
	Size        int64 // expected size, or -1 when unknown
	ContentType string
	ModTime     time.Time // zero: now
	MD5, SHA256 []byte    // expected checksums, if known
	// Meta is extra metadata (S3 x-amz-meta-*). The path's metadata and
	// the view's set: take precedence over it.
	Meta map[string]string
	// ETag, when set, is the object's ETag instead of the hex MD5 (an S3
	// multipart upload's md5-of-md5s-N).
	ETag string
	// ID, when set, comes from NewID, taken when the upload began: of
	// concurrent uploads to one path, the one begun last wins (supersede).
	ID fs.ID
}

// NewID returns an id for CreateOptions.ID. A front-end that feeds Create
// from another goroutine takes it before starting that goroutine.
func (t *Tree) NewID() fs.ID { return t.st.NewID() }

// Create streams r into a new object at p. The path is matched with the
// view's template into metadata (an error names the template), the view's
// set: metadata is added, and the object must then pass the view's
// filter. The content is durable before the object becomes visible, at
// once at its paths in every view; what was at p before is replaced in the
// same transaction (overwrite = new version). A failed upload leaves no
// trace. Needs w.
func (t *Tree) Create(ctx context.Context, p string, r io.Reader, opts CreateOptions) (_ *Info, err error) {
	const op = "create"
	rec := t.audited(ctx, op, p)
	defer rec.end(&err)
	c, err := t.prepCreate(ctx, op, p, opts.Meta, true)
	if err != nil {
		return nil, err
	}
	o, err := t.st.Put(ctx, store.PutRequest{
		Name: c.name, Meta: c.meta, ContentType: opts.ContentType, ModTime: opts.ModTime,
		Size: opts.Size, MD5: opts.MD5, SHA256: opts.SHA256, Replace: c.replace, ETag: opts.ETag, ID: opts.ID,
	}, r)
	if err != nil {
		return nil, fs.Wrap(op, p, err)
	}
	rec.id(o.ID)
	rec.add(slog.Int64("size", o.Size))
	t.supersede(ctx, c.l)
	return objInfo(baseName(c.l), c.l.rights, o), nil
}

// supersede keeps only the newest object at file path l after a Create.
// c.replace was read when the upload began: an upload to the same path
// that committed meanwhile is not in it and would otherwise stay behind,
// hidden by the newer one and never collected. Every Create ending with
// this converges on one object, as if the uploads had committed in the
// order they began (ids are time-ordered). Failures cost space only.
func (t *Tree) supersede(ctx context.Context, l loc) {
	ids, err := idsAt(ctx, t.st.Index(), l.view.name, l.vp)
	if err != nil || len(ids) < 2 {
		return
	}
	t.set.collided(len(ids) - 1)
	for _, id := range ids[:len(ids)-1] {
		if err := t.st.Delete(ctx, id); err != nil && fs.KindOf(err) != fs.NotExist {
			t.set.log.Warn("views: removing an object superseded by a concurrent upload", "view", l.view.name, "id", id, "err", err)
		}
	}
}

// CheckCreate tells, before any data arrives, whether Create at p would
// be refused, with the error Create would give: IsDir for the root, a
// view's root, a path with a trailing slash or a directory at p;
// Permission without w; Invalid when the path does not fit the view's
// template or the metadata it implies does not pass the view's filter.
// SFTP and FUSE call it at open so a client fails there rather than at
// close. It costs one path index seek. A nil answer is not a promise:
// the tree may change before Create.
func (t *Tree) CheckCreate(ctx context.Context, p string) error {
	_, err := t.prepCreate(ctx, "create", p, nil, false)
	return err
}

// createPlan is what Create needs to know about its target.
type createPlan struct {
	l       loc
	name    string
	meta    map[string]string
	replace []fs.ID
}

// prepCreate checks a Create at p and plans it; with ids false it skips
// listing the objects the upload would replace.
func (t *Tree) prepCreate(ctx context.Context, op, p string, base map[string]string, ids bool) (createPlan, error) {
	var c createPlan
	l, err := t.resolve(op, p)
	if err != nil {
		return c, err
	}
	c.l = l
	if l.root || l.vp == "" || l.dir {
		return c, fs.E(fs.IsDir, op, p, nil)
	}
	if err := t.need(op, l, Write); err != nil {
		return c, err
	}
	if c.name, c.meta, err = pathMeta(l.view, l.vp, base, true); err != nil {
		return c, fs.E(fs.Invalid, op, p, err)
	}
	n, err := lookup(ctx, t.st.Index(), l.view.name, l.vp)
	if err != nil {
		return c, fs.Wrap(op, p, err)
	}
	if n.dir {
		return c, fs.E(fs.IsDir, op, p, nil)
	}
	if n.file && ids {
		if c.replace, err = idsAt(ctx, t.st.Index(), l.view.name, l.vp); err != nil {
			return c, fs.Wrap(op, p, err)
		}
	}
	return c, nil
}

// pathMeta turns a file path of view v into the object's name and
// metadata: base (may be nil) overlaid with the view's set: (if applySet)
// and then the keys the template takes from the path. It checks that the
// object would be at exactly that path in v.
func pathMeta(v *View, vp string, base map[string]string, applySet bool) (string, map[string]string, error) {
	m, err := v.tmpl.Match(vp)
	if err != nil {
		return "", nil, err
	}
	meta := make(map[string]string, len(base)+len(v.def.Set)+len(m))
	for k, x := range base {
		if !strings.HasPrefix(k, reservedNS) {
			meta[k] = x
		}
	}
	if applySet {
		for k, x := range v.def.Set {
			meta[k] = x
		}
	}
	name, hasName := m[NameKey]
	for k, x := range m {
		if k != NameKey {
			meta[k] = x
		}
	}
	if !hasName {
		name = path.Base(vp)
		if u, err := pathtmpl.UnescapeSegment(name); err == nil {
			name = u
		}
	}
	o := &fs.Object{Name: name, Meta: meta}
	if got, ok := v.pathOf(o, nil); !ok || got != vp {
		if !v.filter.Match(getter(o)) {
			return "", nil, fmt.Errorf("the metadata of path %q does not pass view %s's filter %q", vp, v.name, v.filter.String())
		}
		return "", nil, fmt.Errorf("path %q does not render back through template %q of view %s (got %q)", vp, v.tmpl.String(), v.name, got)
	}
	return name, meta, nil
}

// Mkdir makes an empty directory at p, kept by a directory marker: an
// empty object whose metadata records the view and the directory (dg.view,
// dg.dir) plus the keys the directory's segments fix and the view's set:.
// A marker appears in its own view only. Parents need not exist:
// directories are implied by what is under them. Exist if p exists; the
// directory must fit the template (Invalid otherwise). Needs w.
func (t *Tree) Mkdir(ctx context.Context, p string) (err error) {
	const op = "mkdir"
	rec := t.audited(ctx, op, p)
	defer rec.end(&err)
	l, err := t.resolve(op, p)
	if err != nil {
		return err
	}
	if l.root || l.vp == "" {
		return fs.E(fs.Exist, op, p, nil)
	}
	if err := t.need(op, l, Write); err != nil {
		return err
	}
	meta, err := dirMeta(l.view, l.vp, nil)
	if err != nil {
		return fs.E(fs.Invalid, op, p, err)
	}
	n, err := lookup(ctx, t.st.Index(), l.view.name, l.vp)
	if err != nil {
		return fs.Wrap(op, p, err)
	}
	if n.file || n.dir {
		return fs.E(fs.Exist, op, p, nil)
	}
	name := path.Base(l.vp)
	if u, err := pathtmpl.UnescapeSegment(name); err == nil {
		name = u
	}
	o, err := t.st.Put(ctx, store.PutRequest{Name: name, Meta: meta, Size: 0}, strings.NewReader(""))
	if err != nil {
		return fs.Wrap(op, p, err)
	}
	rec.id(o.ID)
	return nil
}

// dirMeta is the metadata of a marker for directory dir of view v.
func dirMeta(v *View, dir string, base map[string]string) (map[string]string, error) {
	m, err := v.tmpl.MatchDir(dir)
	if err != nil {
		return nil, err
	}
	meta := make(map[string]string, len(base)+len(m)+len(v.def.Set)+2)
	for k, x := range base {
		meta[k] = x
	}
	for k, x := range v.def.Set {
		meta[k] = x
	}
	for k, x := range m {
		if k != NameKey {
			meta[k] = x
		}
	}
	get := func(k string) (string, bool) { x, ok := m[k]; return x, ok }
	if !v.filter.MatchPartial(get) {
		return nil, fmt.Errorf("directory %q of view %s: its metadata contradicts the filter %q", dir, v.name, v.filter.String())
	}
	meta[MetaDirView] = v.name
	meta[MetaDirPath] = dir
	return meta, nil
}

// Remove removes the file at p: every object at that path (the visible
// one and any older ones it hides), from every view. IsDir for a
// directory. Needs d.
func (t *Tree) Remove(ctx context.Context, p string) (err error) {
	const op = "remove"
	rec := t.audited(ctx, op, p)
	defer rec.end(&err)
	l, _, err := t.file(ctx, op, p, Delete)
	if err != nil {
		return err
	}
	ids, err := idsAt(ctx, t.st.Index(), l.view.name, l.vp)
	if err != nil {
		return fs.Wrap(op, p, err)
	}
	rec.id(ids...)
	if err := t.st.Delete(ctx, ids...); err != nil {
		return fs.Wrap(op, p, err)
	}
	return nil
}

// Rmdir removes the empty directory at p (its markers). NotEmpty when
// anything is under it; NotDir for a file. Needs d.
func (t *Tree) Rmdir(ctx context.Context, p string) error {
	return t.removeDir(ctx, p, t.markersOnly)
}

// RemoveMarkers removes directory p's own markers (the objects Mkdir
// made), and nothing under it: S3 deletes a folder object ("dir/") alone,
// the directory staying while keys under it imply it. Needs d. A
// directory without markers is left as it is.
func (t *Tree) RemoveMarkers(ctx context.Context, p string) error {
	return t.removeDir(ctx, p, func(ctx context.Context, op string, l loc) ([]fs.ID, error) {
		ids, err := markersOf(ctx, t.st.Index(), l.view.name, l.vp)
		if err != nil {
			return nil, fs.Wrap(op, l.user, err)
		}
		return ids, nil
	})
}

// removeDir deletes the markers that markers picks for the directory at
// p, after the checks every removal of a directory makes.
func (t *Tree) removeDir(ctx context.Context, p string, markers func(context.Context, string, loc) ([]fs.ID, error)) (err error) {
	const op = "rmdir"
	defer t.audited(ctx, op, p).end(&err)
	l, err := t.resolve(op, p)
	if err != nil {
		return err
	}
	n, err := t.stat(ctx, op, l)
	if err != nil {
		return err
	}
	if !n.dir {
		return fs.E(fs.NotDir, op, p, nil)
	}
	if l.root || l.vp == "" {
		return fs.E(fs.Permission, op, p, errors.New("a view's root cannot be removed"))
	}
	if err := t.need(op, l, Delete); err != nil {
		return err
	}
	ids, err := markers(ctx, op, l)
	if err != nil || len(ids) == 0 {
		return err
	}
	if err := t.st.Delete(ctx, ids...); err != nil {
		return fs.Wrap(op, p, err)
	}
	return nil
}

// markersOnly returns the markers of directory l, or NotEmpty if anything
// else is under it.
func (t *Tree) markersOnly(ctx context.Context, op string, l loc) ([]fs.ID, error) {
	ents, more, err := subtree(ctx, t.st.Index(), l.view.name, l.vp, 64)
	if err != nil {
		return nil, fs.Wrap(op, l.user, err)
	}
	var marks []fs.ID
	for _, e := range ents {
		if !e.marker || e.rel != "" {
			return nil, fs.E(fs.NotEmpty, op, l.user, nil)
		}
		marks = append(marks, e.id)
	}
	if more {
		return nil, fs.E(fs.NotEmpty, op, l.user, nil)
	}
	return marks, nil
}

// Chtimes sets the modification time of the file at p (every object at
// the path), or of a directory's marker (a directory implied by objects
// has no time of its own: nothing to do). Needs w.
func (t *Tree) Chtimes(ctx context.Context, p string, mtime time.Time) (err error) {
	const op = "chtimes"
	rec := t.audited(ctx, op, p)
	defer rec.end(&err)
	rec.add(slog.Time("mtime", mtime))
	l, err := t.resolve(op, p)
	if err != nil {
		return err
	}
	n, err := t.stat(ctx, op, l)
	if err != nil {
		return err
	}
	if err := t.need(op, l, Write); err != nil {
		return err
	}
	var ids []fs.ID
	switch {
	case n.file:
		ids, err = idsAt(ctx, t.st.Index(), l.view.name, l.vp)
	case l.vp != "":
		ids, err = markersOf(ctx, t.st.Index(), l.view.name, l.vp)
	}
	if err != nil {
		return fs.Wrap(op, p, err)
	}
	if len(ids) == 0 {
		return nil
	}
	_, err = t.st.UpdateMany(ctx, ids, func(o *fs.Object) error { o.ModTime = mtime.UTC(); return nil }, nil)
	return fs.Wrap(op, p, err)
}

// Statfs describes the space of the file system holding the data.
type Statfs struct {
	BlockSize           int64
	Blocks, Free, Avail uint64 // in blocks
}

// Statfs reports the space of the data directory's file system.
func (t *Tree) Statfs(ctx context.Context) (Statfs, error) {
	if t.statfs == "" {
		return Statfs{BlockSize: 4096}, nil
	}
	return statfs(t.statfs)
}
