package webdav

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/webdav"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/views"
)

// fileInfo is a views.Info that also gives x/net/webdav the ETag and
// Content-Type of a file (webdav.ETager, webdav.ContentTyper) from the
// object's record, fetched once and only when asked for: without them
// x/net/webdav would open and sniff the content of every PROPFIND entry.
type fileInfo struct {
	*views.Info
	s *Server

	once sync.Once
	obj  *fs.Object
	err  error
}

func (fi *fileInfo) object(ctx context.Context) (*fs.Object, error) {
	fi.once.Do(func() {
		// An upload's Info carries its record: no lookup, and none that
		// fails when a concurrent upload to the path has superseded it.
		if fi.obj = fi.Record(); fi.obj == nil {
			fi.obj, fi.err = fi.s.opts.Store.Get(ctx, fi.ID())
		}
	})
	return fi.obj, fi.err
}

// ETag is the strong entity tag of the content: its SHA-256 when known,
// else the object's id and content version (which change whenever the
// content does).
func (fi *fileInfo) ETag(ctx context.Context) (string, error) {
	if fi.IsDir() {
		return "", webdav.ErrNotImplemented
	}
	o, err := fi.object(ctx)
	if err != nil {
		return "", osError("etag", fi.Name(), err)
	}
	return etagOf(o), nil
}

// ContentType is the type the object was uploaded with, else the one its
// name's extension suggests.
func (fi *fileInfo) ContentType(ctx context.Context) (string, error) {
	if fi.IsDir() {
		return "", webdav.ErrNotImplemented
	}
	o, err := fi.object(ctx)
	if err != nil {
		return "", osError("contenttype", fi.Name(), err)
	}
	return contentType(o, fi.Name()), nil
}

// ModTime is the Info's; a directory implied by objects has none, and
// clients show the zero time as year 1: it gets the server's start time.
func (fi *fileInfo) ModTime() time.Time {
	if t := fi.Info.ModTime(); !t.IsZero() {
		return t
	}
	return fi.s.started
}

// etagOf: 128 bits of the SHA-256 are plenty to tell versions apart and
// keep If headers short (litmus, for one, cuts long ones).
func etagOf(o *fs.Object) string {
	if len(o.SHA256) == 32 {
		return `"` + hex.EncodeToString(o.SHA256[:16]) + `"`
	}
	return fmt.Sprintf(`"%s-%d"`, o.ID, o.Version)
}

// etagsOf are the entity tags of o's content version: the one served
// now and, once the SHA-256 is known, the "id-version" one served before
// it was (content fetched lazily is digested after its first whole
// read). A client that cached the earlier one (davfs2 sends it back in
// If-Match) must not be refused for a version that did not change; the
// version changes with the content, so both stay exact.
func etagsOf(o *fs.Object) []string {
	v := fmt.Sprintf(`"%s-%d"`, o.ID, o.Version)
	if len(o.SHA256) == 32 {
		return []string{etagOf(o), v}
	}
	return []string{v}
}

func contentType(o *fs.Object, name string) string {
	if o.ContentType != "" {
		return o.ContentType
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// davFile is a file or collection opened for reading. Its methods have no
// context (http.File), so it keeps the request's: it lives only as long
// as the request that opened it.
type davFile struct {
	fs   *reqFS
	ctx  context.Context
	name string
	info *fileInfo

	r     *views.File // content, opened on the first Read or Seek
	after string      // Readdir position: the last name returned
	done  bool        // Readdir reached the end
}

func (d *davFile) open() error {
	if d.r != nil {
		return nil
	}
	if d.info.IsDir() {
		return d.fs.fail("read", d.name, fs.E(fs.IsDir, "read", d.name, nil))
	}
	r, err := d.fs.tree.Open(d.ctx, d.name)
	if err != nil {
		return d.fs.fail("open", d.name, err)
	}
	d.r = r
	return nil
}

func (d *davFile) Read(p []byte) (int, error) {
	if err := d.open(); err != nil {
		return 0, err
	}
	return d.r.Read(p)
}

func (d *davFile) Seek(off int64, whence int) (int64, error) {
	if err := d.open(); err != nil {
		return 0, err
	}
	return d.r.Seek(off, whence)
}

// Readdir lists the collection in the Tree's pages: count > 0 returns the
// next count entries (io.EOF at the end), count <= 0 all that remain.
func (d *davFile) Readdir(count int) ([]os.FileInfo, error) {
	if !d.info.IsDir() {
		return nil, d.fs.fail("readdir", d.name, fs.E(fs.NotDir, "readdir", d.name, nil))
	}
	var out []os.FileInfo
	for !d.done {
		n := 1000
		if count > 0 {
			n = count - len(out)
		}
		ents, err := d.fs.tree.ReadDir(d.ctx, d.name, d.after, n)
		if err != nil {
			return out, d.fs.fail("readdir", d.name, err)
		}
		for _, e := range ents {
			out = append(out, &fileInfo{Info: e, s: d.fs.s})
		}
		if len(ents) > 0 {
			d.after = ents[len(ents)-1].Name()
		}
		if len(ents) < n {
			d.done = true
		}
		if count > 0 && len(out) >= count {
			break
		}
	}
	if count > 0 && len(out) == 0 {
		return nil, io.EOF
	}
	return out, nil
}

func (d *davFile) Stat() (os.FileInfo, error) { return d.info, nil }

func (d *davFile) Write([]byte) (int, error) {
	return 0, &os.PathError{Op: "write", Path: d.name, Err: os.ErrPermission}
}

func (d *davFile) Close() error {
	if d.r == nil {
		return nil
	}
	err := d.r.Close()
	d.r = nil
	return err
}

// writeFile is an upload: its content streams into Tree.Create, which
// makes the object visible only once the content is whole and durable.
// x/net/webdav's PUT and COPY do io.Copy(file, src), which calls ReadFrom:
// src then goes to Create as it is, without a copy. Write (other callers)
// feeds Create through a pipe. Stat and Close finish the upload and
// report its outcome; a source that failed makes Create fail, so nothing
// of it becomes visible.
type writeFile struct {
	fs   *reqFS
	ctx  context.Context // the request's, as for davFile
	name string
	opts views.CreateOptions
	body *trackedBody // the PUT body, when this is the PUT's target

	started bool
	pw      *io.PipeWriter
	done    chan struct{} // closed when the piped Create returns
	// set once Create returned
	finished bool
	info     *views.Info
	err      error
}

// ReadFrom streams r into the object.
func (w *writeFile) ReadFrom(r io.Reader) (int64, error) {
	if w.started {
		return io.Copy(struct{ io.Writer }{w}, r)
	}
	w.started = true
	cr := &countReader{r: r}
	w.info, w.err = w.fs.tree.Create(w.ctx, w.name, w.guard(cr), w.opts)
	w.finished = true
	if w.err != nil {
		return cr.n, w.fs.fail("write", w.name, w.err)
	}
	return cr.n, nil
}

// guard makes a failed request body fail the upload, even if the body
// reader then reports a plain EOF.
func (w *writeFile) guard(r io.Reader) io.Reader {
	if w.body == nil {
		return r
	}
	return &guardReader{r: r, body: w.body}
}

func (w *writeFile) Write(p []byte) (int, error) {
	if w.finished {
		return 0, w.fs.fail("write", w.name, fs.E(fs.Invalid, "write", w.name, errors.New("upload already finished")))
	}
	if !w.started {
		w.started = true
		pr, pw := io.Pipe()
		w.pw, w.done = pw, make(chan struct{})
		go func() {
			defer close(w.done)
			w.info, w.err = w.fs.tree.Create(w.ctx, w.name, w.guard(pr), w.opts)
			pr.CloseWithError(w.err) // unblocks Write if Create gave up early
		}()
	}
	n, err := w.pw.Write(p)
	if err != nil {
		<-w.done
		w.finished = true
		if w.err != nil {
			return n, w.fs.fail("write", w.name, w.err)
		}
		return n, w.fs.fail("write", w.name, err)
	}
	return n, nil
}

// finish ends the upload: an upload nothing was written to is an empty
// file (LOCK on an unmapped URL, a zero-length PUT).
func (w *writeFile) finish() error {
	if !w.finished {
		w.finished = true
		switch {
		case !w.started:
			w.started = true
			w.info, w.err = w.fs.tree.Create(w.ctx, w.name, w.guard(strings.NewReader("")), w.opts)
		default:
			if err := w.body.failed(); err != nil {
				w.pw.CloseWithError(err)
			} else {
				w.pw.Close()
			}
			<-w.done
		}
	}
	if w.err != nil {
		return w.fs.fail("write", w.name, w.err)
	}
	return nil
}

func (w *writeFile) Stat() (os.FileInfo, error) {
	if err := w.finish(); err != nil {
		return nil, err
	}
	return &fileInfo{Info: w.info, s: w.fs.s}, nil
}

func (w *writeFile) Close() error { return w.finish() }

func (w *writeFile) Read([]byte) (int, error) {
	return 0, &os.PathError{Op: "read", Path: w.name, Err: os.ErrPermission}
}

func (w *writeFile) Seek(int64, int) (int64, error) {
	return 0, &os.PathError{Op: "seek", Path: w.name, Err: os.ErrPermission}
}

func (w *writeFile) Readdir(int) ([]os.FileInfo, error) {
	return nil, &os.PathError{Op: "readdir", Path: w.name, Err: os.ErrPermission}
}

var (
	_ webdav.File = (*davFile)(nil)
	_ webdav.File = (*writeFile)(nil)
)

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// guardReader turns the end of an upload's source into the request
// body's error when reading the body failed.
type guardReader struct {
	r    io.Reader
	body *trackedBody
}

func (g *guardReader) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if errors.Is(err, io.EOF) {
		if berr := g.body.failed(); berr != nil {
			return n, fmt.Errorf("request body: %w", berr)
		}
	}
	return n, err
}
