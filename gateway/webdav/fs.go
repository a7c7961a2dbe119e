package webdav

import (
	"context"
	"errors"
	"io"
	"mime"
	"os"
	"path"
	"strings"
	"sync"

	"golang.org/x/net/webdav"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/views"
)

// reqFS is the webdav.FileSystem of one request: the user's Tree, what
// the request says about an upload, and the last error it returned (for
// overrideStatus). One per request, so it may remember things a shared
// one could not.
type reqFS struct {
	// immutable after newReqFS
	s    *Server
	tree *views.Tree
	put  putInfo // the upload a PUT carries, for the file at put.path
	// moveTo is a MOVE's destination: x/net/webdav removes what is there
	// before renaming, but a file is replaced by the rename itself, in
	// one transaction, so that removal is skipped.
	moveFrom, moveTo string

	mu sync.Mutex
	// guarded by mu
	lastErr   error
	movedAway string // the file a PROPPATCH moved to another path
}

// putInfo is what a PUT request tells about its body.
type putInfo struct {
	path string
	opts views.CreateOptions
	body *trackedBody
}

// fail records err for overrideStatus and returns it in the shape
// x/net/webdav expects.
func (f *reqFS) fail(op, name string, err error) error {
	if err == nil {
		return nil
	}
	f.mu.Lock()
	f.lastErr = err
	f.mu.Unlock()
	return osError(op, name, err)
}

func (f *reqFS) setMovedAway(name string) {
	f.mu.Lock()
	f.movedAway = name
	f.mu.Unlock()
}

func (f *reqFS) moved() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.movedAway
}

func (f *reqFS) last() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastErr
}

// clean turns x/net/webdav's name (the URL path, or a path.Join of one)
// into a Tree path: a trailing slash is dropped, since WebDAV clients add
// it to collections loosely; the Tree checks everything else.
func clean(name string) string {
	if name == "" {
		return "/"
	}
	if len(name) > 1 {
		name = strings.TrimRight(name, "/")
		if name == "" {
			name = "/"
		}
	}
	return name
}

func (f *reqFS) stat(ctx context.Context, name string) (*fileInfo, error) {
	info, err := f.tree.Stat(ctx, clean(name))
	if err != nil {
		return nil, err
	}
	return &fileInfo{Info: info, s: f.s}, nil
}

// etags are the ETags of the file at name (etagsOf), none for a
// collection or nothing.
func (f *reqFS) etags(ctx context.Context, name string) []string {
	fi, err := f.stat(ctx, name)
	if err != nil || fi.IsDir() {
		return nil
	}
	o, err := fi.object(ctx)
	if err != nil {
		return nil
	}
	return etagsOf(o)
}

// Stat describes name.
func (f *reqFS) Stat(ctx context.Context, name string) (os.FileInfo, error) {
	fi, err := f.stat(ctx, name)
	if err != nil {
		return nil, f.fail("stat", name, err)
	}
	return fi, nil
}

// parent checks that the parent collection of name exists (WebDAV does not
// make parents implicitly, unless Options.CreateParents) and returns it.
func (f *reqFS) parent(ctx context.Context, name string) error {
	if f.s.opts.CreateParents {
		return nil
	}
	dir := path.Dir(clean(name))
	if dir == "/" || dir == "." {
		return nil
	}
	fi, err := f.stat(ctx, dir)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case fs.KindOf(err) == fs.NotExist:
		top := "/" + strings.SplitN(dir[1:], "/", 2)[0]
		if _, terr := f.stat(ctx, top); fs.KindOf(terr) == fs.NotExist {
			return fs.E(fs.NotExist, "parent", name, errNoView)
		}
		return fs.E(fs.NotExist, "parent", name, errNoParent)
	case err == nil, fs.KindOf(err) == fs.NotDir:
		return fs.E(fs.NotExist, "parent", name, errNoParent)
	default:
		return err
	}
}

// Mkdir makes a collection.
func (f *reqFS) Mkdir(ctx context.Context, name string, _ os.FileMode) error {
	if err := f.parent(ctx, name); err != nil {
		return f.fail("mkdir", name, err)
	}
	return f.fail("mkdir", name, f.tree.Mkdir(ctx, clean(name)))
}

// RemoveAll removes a file, or a collection with everything under it.
func (f *reqFS) RemoveAll(ctx context.Context, name string) error {
	name = clean(name)
	if name == "/" {
		return f.fail("remove", name, fs.E(fs.Permission, "remove", name, errors.New("the root cannot be removed")))
	}
	// A view's root cannot go (Tree.Rmdir refuses it), but only its
	// last step would have found out: a DELETE of /view, or a MOVE or
	// COPY onto it, removed every file of the view first.
	for v := range f.tree.Views() {
		if up, ok := f.tree.UserPath(v, ""); ok && up == name {
			return f.fail("remove", name, fs.E(fs.Permission, "remove", name, errors.New("a view cannot be removed")))
		}
	}
	return f.fail("remove", name, f.removeAll(ctx, name))
}

func (f *reqFS) removeAll(ctx context.Context, name string) error {
	info, err := f.tree.Stat(ctx, name)
	if err != nil {
		return err
	}
	if f.moveTo != "" && name == clean(f.moveTo) && !info.IsDir() {
		if src, err := f.tree.Stat(ctx, clean(f.moveFrom)); err == nil && !src.IsDir() {
			return nil // Rename replaces it atomically
		}
	}
	if !info.IsDir() {
		return f.tree.Remove(ctx, name)
	}
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		ents, err := f.tree.ReadDir(ctx, name, after, 500)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := f.removeAll(ctx, path.Join(name, e.Name())); err != nil && fs.KindOf(err) != fs.NotExist {
				return err
			}
		}
		if len(ents) < 500 {
			break
		}
		after = ents[len(ents)-1].Name()
	}
	// An implied directory vanished with its last object; a made one
	// still has its marker.
	if err := f.tree.Rmdir(ctx, name); err != nil && fs.KindOf(err) != fs.NotExist {
		return err
	}
	return nil
}

// Rename moves a file or collection: a metadata change in the store.
func (f *reqFS) Rename(ctx context.Context, oldName, newName string) error {
	if err := f.parent(ctx, newName); err != nil {
		return f.fail("rename", newName, err)
	}
	return f.fail("rename", oldName, f.tree.Rename(ctx, clean(oldName), clean(newName)))
}

// OpenFile opens name for reading (content fetched on first Read, so a
// PROPFIND that opens every entry reads none), or, with O_CREATE, for
// writing: an upload streamed into Tree.Create.
func (f *reqFS) OpenFile(ctx context.Context, name string, flag int, _ os.FileMode) (webdav.File, error) {
	if flag&os.O_CREATE != 0 {
		wf, err := f.create(ctx, name)
		if err != nil {
			return nil, f.fail("create", name, err)
		}
		return wf, nil
	}
	fi, err := f.stat(ctx, name)
	if err != nil {
		return nil, f.fail("open", name, err)
	}
	return &davFile{fs: f, ctx: ctx, name: clean(name), info: fi}, nil
}

func (f *reqFS) create(ctx context.Context, name string) (*writeFile, error) {
	p := clean(name)
	if fi, err := f.stat(ctx, p); err == nil && fi.IsDir() {
		return nil, fs.E(fs.IsDir, "create", p, nil)
	} else if err != nil && fs.KindOf(err) != fs.NotExist {
		return nil, err
	}
	if err := f.parent(ctx, p); err != nil {
		return nil, err
	}
	wf := &writeFile{fs: f, ctx: ctx, name: p, opts: views.CreateOptions{Size: -1}}
	if f.put.path != "" && clean(f.put.path) == p {
		wf.opts = f.put.opts
		wf.body = f.put.body
	}
	if wf.opts.ContentType == "" {
		wf.opts.ContentType = mime.TypeByExtension(path.Ext(p))
	}
	return wf, nil
}

var _ webdav.FileSystem = (*reqFS)(nil)

// trackedBody remembers whether reading the request body failed: a PUT
// whose client went away must fail, even if what arrived looks complete
// to a reader that sees only io.EOF after it.
type trackedBody struct {
	io.ReadCloser
	mu  sync.Mutex
	err error
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		b.mu.Lock()
		b.err = err
		b.mu.Unlock()
	}
	return n, err
}

func (b *trackedBody) failed() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}
