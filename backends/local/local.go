// Package local is a backends.Provider, Writer and Filer over a directory of
// the local file system: a data provider's export or a store.
//
// Put is atomic and durable: content goes to a temporary file in the
// ".tmp" directory under the root (same file system, so rename is atomic),
// is fsynced, renamed into place, and the directory is fsynced, before Put
// returns. ".tmp" is therefore reserved: paths under it are invalid and
// List skips it.
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/datagate/datagate/backends"
)

// tmpDir is the directory under the root that holds Put's temporary files.
const tmpDir = ".tmp"

// Config configures a local provider.
type Config struct {
	Root string `yaml:"root"`
}

// Provider serves the files under one directory.
type Provider struct {
	// immutable after New
	name string
	root string // absolute, cleaned
}

// New returns a provider over cfg.Root, creating the directory if
// missing: for a store, whose content datagate writes.
func New(name string, cfg Config) (*Provider, error) {
	return open(name, cfg, true)
}

// Open returns a provider over cfg.Root, which must be a directory: for
// a data provider, whose root is someone else's export. Creating a
// mistyped one would serve an empty tree, every read of what was
// registered failing as not found; the error wraps fs.ErrNotExist.
func Open(name string, cfg Config) (*Provider, error) {
	return open(name, cfg, false)
}

// missingRoot is Open's error for a root that is not there.
type missingRoot struct{ name, root string }

func (e missingRoot) Error() string {
	return fmt.Sprintf("local provider %q: root %s does not exist", e.name, e.root)
}

func (e missingRoot) Unwrap() error { return iofs.ErrNotExist }

func open(name string, cfg Config, create bool) (*Provider, error) {
	if cfg.Root == "" {
		return nil, fmt.Errorf("local provider %q: no root directory configured", name)
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("local provider %q: root %s: %w", name, cfg.Root, err)
	}
	if create {
		if err := os.MkdirAll(root, 0o755); err != nil {
			return nil, fmt.Errorf("local provider %q: create root %s: %w", name, root, err)
		}
	}
	fi, err := os.Stat(root)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, missingRoot{name, root}
	}
	if err != nil {
		return nil, fmt.Errorf("local provider %q: root %s: %w", name, root, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("local provider %q: root %s is not a directory", name, root)
	}
	return &Provider{name: name, root: root}, nil
}

// Name returns the configured name.
func (p *Provider) Name() string { return p.name }

// Root returns the absolute root directory.
func (p *Provider) Root() string { return p.root }

// checkPath validates a provider path: relative, slash-separated, with no
// empty, "." or ".." segment, no NUL, and not under the reserved ".tmp".
// Everything that turns a provider path into a file name goes through it,
// so no path can reach outside the root.
func checkPath(path string) error {
	if path == "" || strings.HasPrefix(path, "/") || strings.IndexByte(path, 0) >= 0 {
		return fmt.Errorf("path %q: %w", path, iofs.ErrInvalid)
	}
	for i, seg := range strings.Split(path, "/") {
		if seg == "" || seg == "." || seg == ".." || (i == 0 && seg == tmpDir) {
			return fmt.Errorf("path %q: %w", path, iofs.ErrInvalid)
		}
	}
	return nil
}

// file returns the file name of a checked path.
func (p *Provider) file(path string) string {
	return filepath.Join(p.root, filepath.FromSlash(path))
}

// LocalPath returns the file that holds path, for sendfile and passthrough.
func (p *Provider) LocalPath(path string) (string, error) {
	if err := checkPath(path); err != nil {
		return "", p.wrap("localpath", path, err)
	}
	return p.file(path), nil
}

// wrap names the provider, operation and path, and classifies err.
func (p *Provider) wrap(op, path string, err error) error {
	return fmt.Errorf("local provider %q: %s %s: %w", p.name, op, path, classify(err))
}

// classify maps file system errors the os package leaves unmapped onto the
// backends vocabulary. The os errors already satisfy errors.Is for
// ErrNotExist and ErrPermission.
func classify(err error) error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return err
	}
	switch errno {
	case syscall.ENOSPC, syscall.EDQUOT:
		return fmt.Errorf("%w: %w", backends.ErrNoSpace, err)
	case syscall.ENOTDIR:
		// A file where the path expects a directory: "a.txt/b" is no file.
		return fmt.Errorf("%w: %w", iofs.ErrNotExist, err)
	case syscall.ENAMETOOLONG, syscall.EISDIR:
		return fmt.Errorf("%w: %w", iofs.ErrInvalid, err)
	case syscall.EROFS:
		return fmt.Errorf("%w: %w", iofs.ErrPermission, err)
	}
	return err
}

// Open returns bytes [off, off+length) of the file, or [off, EOF) when
// length < 0. off past the end is iofs.ErrInvalid; a file shorter than
// off+length yields io.ErrUnexpectedEOF from the reader.
func (p *Provider) Open(ctx context.Context, path string, off, length int64) (io.ReadCloser, error) {
	return p.open(ctx, path, off, length, -1)
}

// OpenSized is Open for a file that must be size bytes long when opened:
// another size is backends.ErrChanged.
func (p *Provider) OpenSized(ctx context.Context, path string, off, length, size int64) (io.ReadCloser, error) {
	return p.open(ctx, path, off, length, size)
}

// open is Open; size is the file's expected size, < 0 if unknown.
func (p *Provider) open(ctx context.Context, path string, off, length, size int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, p.wrap("open", path, err)
	}
	if err := checkPath(path); err != nil {
		return nil, p.wrap("open", path, err)
	}
	if off < 0 {
		return nil, p.wrap("open", path, fmt.Errorf("negative offset %d: %w", off, iofs.ErrInvalid))
	}
	f, err := os.Open(p.file(path))
	if err != nil {
		return nil, p.wrap("open", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, p.wrap("open", path, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, p.wrap("open", path, fmt.Errorf("not a regular file: %w", iofs.ErrInvalid))
	}
	if size >= 0 && fi.Size() != size {
		f.Close()
		return nil, p.wrap("open", path, fmt.Errorf("%w: %d bytes, registered with %d", backends.ErrChanged, fi.Size(), size))
	}
	if off > fi.Size() {
		f.Close()
		return nil, p.wrap("open", path, fmt.Errorf("offset %d beyond size %d: %w", off, fi.Size(), iofs.ErrInvalid))
	}
	n := length
	if n < 0 {
		// To EOF as it is when read, should the file grow meanwhile.
		n = 1<<63 - 1 - off
	}
	return &reader{p: p, path: path, f: f, sr: io.NewSectionReader(f, off, n), want: length}, nil
}

// reader reads a section of a file and reports a short file.
type reader struct {
	p    *Provider
	path string
	f    *os.File
	sr   *io.SectionReader
	want int64 // bytes asked for; < 0: to EOF
	got  int64
}

func (r *reader) Read(b []byte) (int, error) {
	n, err := r.sr.Read(b)
	r.got += int64(n)
	if err == io.EOF && r.want >= 0 && r.got < r.want {
		err = fmt.Errorf("local provider %q: read %s: file ends after %d of %d bytes: %w",
			r.p.name, r.path, r.got, r.want, io.ErrUnexpectedEOF)
	} else if err != nil && err != io.EOF {
		err = r.p.wrap("read", r.path, err)
	}
	return n, err
}

func (r *reader) Close() error { return r.f.Close() }

// Stat describes the file at path.
func (p *Provider) Stat(ctx context.Context, path string) (backends.Entry, error) {
	if err := ctx.Err(); err != nil {
		return backends.Entry{}, p.wrap("stat", path, err)
	}
	if err := checkPath(path); err != nil {
		return backends.Entry{}, p.wrap("stat", path, err)
	}
	fi, err := os.Stat(p.file(path))
	if err != nil {
		return backends.Entry{}, p.wrap("stat", path, err)
	}
	if !fi.Mode().IsRegular() {
		return backends.Entry{}, p.wrap("stat", path, fmt.Errorf("not a regular file: %w", iofs.ErrInvalid))
	}
	return backends.Entry{Path: path, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List calls fn for every regular file under prefix. Symbolic links to
// files are listed; links to directories are not followed (no loops).
// A missing prefix is iofs.ErrNotExist.
func (p *Provider) List(ctx context.Context, prefix string, fn func(backends.Entry) error) error {
	if len(prefix) > 1 {
		prefix = strings.TrimSuffix(prefix, "/") // "dir/" means "dir"
	}
	dir := p.root
	if prefix != "" {
		if err := checkPath(prefix); err != nil {
			return p.wrap("list", prefix, err)
		}
		dir = p.file(prefix)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return p.wrap("list", prefix, err)
	}
	if !fi.IsDir() {
		return p.wrap("list", prefix, fmt.Errorf("not a directory: %w", iofs.ErrInvalid))
	}
	tmp := filepath.Join(p.root, tmpDir)
	var fnErr error
	err = filepath.WalkDir(dir, func(name string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if d.IsDir() {
			if name == tmp {
				return filepath.SkipDir
			}
			return nil
		}
		var info iofs.FileInfo
		if d.Type()&iofs.ModeSymlink != 0 {
			info, err = os.Stat(name)
			if err != nil {
				// A dangling link is no file.
				return nil
			}
		} else if d.Type().IsRegular() {
			info, err = d.Info()
			if err != nil {
				if errors.Is(err, iofs.ErrNotExist) {
					return nil // removed since the directory was read
				}
				return err
			}
		}
		if info == nil || !info.Mode().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(p.root, name)
		if err != nil {
			return err
		}
		if err := fn(backends.Entry{Path: filepath.ToSlash(rel), Size: info.Size(), ModTime: info.ModTime()}); err != nil {
			fnErr = err
			return err
		}
		return nil
	})
	if fnErr != nil {
		return fnErr // the caller's own error, unwrapped
	}
	if err != nil {
		return p.wrap("list", prefix, err)
	}
	return nil
}

// beginPut checks a Put's path and context and creates its temporary file.
func (p *Provider) beginPut(ctx context.Context, path string) (*os.File, error) {
	tmp, err := p.putTemp(ctx, path)
	if err != nil {
		return nil, err
	}
	f, err := createTemp(tmp)
	if err != nil {
		return nil, p.wrap("put", path, err)
	}
	return f, nil
}

// putTemp checks a put to path and returns the temporary directory its
// file is made in.
func (p *Provider) putTemp(ctx context.Context, path string) (string, error) {
	if err := checkPath(path); err != nil {
		return "", p.wrap("put", path, err)
	}
	if err := ctx.Err(); err != nil {
		return "", p.wrap("put", path, err)
	}
	tmp := filepath.Join(p.root, tmpDir)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", p.wrap("put", path, err)
	}
	return tmp, nil
}

// Put writes the file atomically and durably; see the package comment.
func (p *Provider) Put(ctx context.Context, path string, r io.Reader, size int64) (err error) {
	f, err := p.beginPut(ctx, path)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	wb := &writeback{f: f}
	if bw, ok := r.(bufferWriter); ok {
		if err := p.putBuffers(ctx, wb, bw, size); err != nil {
			return p.wrap("put", path, err)
		}
		return p.finishPut(f, path)
	}
	src := &ctxReader{ctx: ctx, r: r}
	buf := make([]byte, 256<<10) // 8x fewer write calls than io.Copy's 32 KiB
	if size >= 0 {
		// One byte more than announced reveals an over-long reader.
		n, err := io.CopyBuffer(wb, io.LimitReader(src, size+1), buf)
		if err != nil {
			return p.wrap("put", path, err)
		}
		if n != size {
			return p.wrap("put", path, fmt.Errorf("reader gave %s bytes, announced %d: %w", countString(n, size), size, iofs.ErrInvalid))
		}
	} else if _, err := io.CopyBuffer(wb, src, buf); err != nil {
		return p.wrap("put", path, err)
	}
	return p.finishPut(f, path)
}

// finishPut makes a written temporary file durable and puts it in place.
func (p *Provider) finishPut(f *os.File, path string) error {
	if err := f.Sync(); err != nil {
		return p.wrap("put", path, err)
	}
	if err := f.Close(); err != nil {
		return p.wrap("put", path, err)
	}
	return p.place(f.Name(), path)
}

// bufferWriter is a Put source that holds its content in large buffers
// of its own (fs/store's hashing pipeline): it writes them out itself
// (WriteTo), which saves copying every byte into a buffer of Put's.
type bufferWriter interface {
	io.WriterTo
	LargeBuffers()
}

// putBuffers has bw write its content to wb, stopping it at the first
// byte past size (when known) or when ctx is done.
func (p *Provider) putBuffers(ctx context.Context, wb *writeback, bw bufferWriter, size int64) error {
	lw := &limitWriter{ctx: ctx, w: wb, left: size}
	n, err := bw.WriteTo(lw)
	if errors.Is(err, errTooLong) {
		n = size + 1
	}
	if errors.Is(err, errTooLong) || (err == nil && size >= 0 && n != size) {
		return fmt.Errorf("reader gave %s bytes, announced %d: %w", countString(n, size), size, iofs.ErrInvalid)
	}
	return err
}

var errTooLong = errors.New("longer than announced")

// limitWriter passes writes on while ctx lasts, refusing anything past
// left bytes (unless left is negative: unknown size).
type limitWriter struct {
	ctx  context.Context
	w    io.Writer
	left int64
}

func (l *limitWriter) Write(b []byte) (int, error) {
	if err := l.ctx.Err(); err != nil {
		return 0, err
	}
	if l.left >= 0 && int64(len(b)) > l.left {
		n, err := l.w.Write(b[:l.left])
		l.left -= int64(n)
		if err == nil {
			err = errTooLong
		}
		return n, err
	}
	n, err := l.w.Write(b)
	if l.left >= 0 {
		l.left -= int64(n)
	}
	return n, err
}

// place renames the durable temporary file tmp to path, creating its
// directories, and makes the name durable.
func (p *Provider) place(tmp, path string) error {
	dst := p.file(path)
	if err := mkdirAllSync(p.root, filepath.Dir(dst)); err != nil {
		return p.wrap("put", path, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return p.wrap("put", path, err)
	}
	// The rename is done: from here on the temporary file is gone and an
	// error only means the new name may not survive a crash.
	if serr := syncDir(filepath.Dir(dst)); serr != nil {
		return p.wrap("put", path, serr)
	}
	return nil
}

// PutFile is Put of the first size bytes of a local file (read from its
// start, moving its offset), copied by the kernel (copy_file_range,
// io.Copy's way between files) instead of through a buffer. h, when set,
// is fed the written copy, read back from a file of its own step by step
// as the kernel copies it and while the copy is being fsynced (the flush
// leaves the CPU idle); check, when set, then judges it. The copy is
// renamed into place only when all succeed.
func (p *Provider) PutFile(ctx context.Context, path string, src *os.File, size int64, h io.Writer, check func() error) error {
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return p.wrap("put", path, err)
	}
	return p.putCopy(ctx, path, h, check, func(f *os.File, rb *readBack) error {
		return copySteps(ctx, f, src, 0, size, rb)
	})
}

// PutFiles is PutFile of the whole files named, one after the other (an
// S3 multipart upload's parts), size bytes in all: a different total
// fails it.
func (p *Provider) PutFiles(ctx context.Context, path string, names []string, size int64, h io.Writer, check func() error) error {
	return p.putCopy(ctx, path, h, check, func(f *os.File, rb *readBack) error {
		var off int64
		for _, name := range names {
			src, err := os.Open(name)
			if err != nil {
				return err
			}
			fi, err := src.Stat()
			if err == nil && off+fi.Size() > size {
				err = fmt.Errorf("%s makes the content longer than the %d bytes announced: %w", name, size, iofs.ErrInvalid)
			}
			if err == nil {
				err = copySteps(ctx, f, src, off, fi.Size(), rb)
			}
			src.Close()
			if err != nil {
				return err
			}
			off += fi.Size()
		}
		if off != size {
			return fmt.Errorf("files hold %d bytes, announced %d: %w", off, size, iofs.ErrInvalid)
		}
		return nil
	})
}

// putCopy runs copyIn into a new temporary file, reads the copy back into
// h meanwhile, flushes it, asks check, and renames it to path.
func (p *Provider) putCopy(ctx context.Context, path string, h io.Writer, check func() error, copyIn func(f *os.File, rb *readBack) error) (err error) {
	f, err := p.beginPut(ctx, path)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	rb := &readBack{h: h, steps: make(chan int64, 4), done: make(chan error, 1)}
	if h != nil {
		rf, err := os.Open(f.Name())
		if err != nil {
			return p.wrap("put", path, err)
		}
		defer rf.Close()
		go rb.run(ctx, rf)
	}
	err = copyIn(f, rb)
	var synced chan error
	if err == nil {
		// The flush and the rest of the read-back side by side.
		synced = make(chan error, 1)
		go func() { synced <- f.Sync() }()
	}
	if h != nil {
		close(rb.steps)
		err = errors.Join(err, <-rb.done)
	}
	if synced != nil {
		err = errors.Join(err, <-synced)
	}
	if err != nil {
		return p.wrap("put", path, err)
	}
	if check != nil {
		if err := check(); err != nil {
			return p.wrap("put", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return p.wrap("put", path, err)
	}
	return p.place(f.Name(), path)
}

// copySteps copies size bytes from src's offset to f at base by the
// kernel, in write-back steps: each is handed to the kernel for writing
// and to rb for reading back.
func copySteps(ctx context.Context, f, src *os.File, base, size int64, rb *readBack) error {
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(size-off, writebackEvery)
		m, err := f.ReadFrom(&io.LimitedReader{R: src, N: n})
		if err == nil && m < n {
			err = fmt.Errorf("source ends after %d of %d bytes: %w", off+m, size, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return err
		}
		StartWriteback(f, base+off, n)
		off += n
		if rb.h != nil {
			select {
			case rb.steps <- base + off:
			case err := <-rb.done:
				rb.done <- err // for the caller
				return errors.New("read-back stopped")
			}
		}
	}
	return nil
}

// readBack feeds h the copy up to each offset sent on steps, and sends
// its verdict on done once steps is closed (or at its first error).
type readBack struct {
	h     io.Writer
	steps chan int64
	done  chan error
}

func (r *readBack) run(ctx context.Context, f *os.File) {
	buf := make([]byte, 1<<20)
	var off int64
	for end := range r.steps {
		for off < end {
			if err := ctx.Err(); err != nil {
				r.done <- err
				return
			}
			n, err := f.ReadAt(buf[:min(int64(len(buf)), end-off)], off)
			r.h.Write(buf[:n])
			off += int64(n)
			if err != nil && !(errors.Is(err, io.EOF) && off == end) {
				r.done <- err
				return
			}
		}
	}
	r.done <- nil
}

func countString(n, size int64) string {
	if n > size {
		return "more than"
	}
	return fmt.Sprint(n)
}

// createTemp creates a new file in dir, readable as umask allows (unlike
// os.CreateTemp's 0600), because stores are read by other tools too.
func createTemp(dir string) (*os.File, error) {
	var b [12]byte
	for range 10 {
		rand.Read(b[:])
		f, err := os.OpenFile(filepath.Join(dir, "put-"+hex.EncodeToString(b[:])), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if !errors.Is(err, iofs.ErrExist) {
			return f, err
		}
	}
	return nil, fmt.Errorf("create temporary file in %s: too many collisions", dir)
}

// mkdirAllSync creates dir and its missing parents below root, fsyncing
// each parent after creating a child in it, so the new path survives a
// crash once the file's own directory is synced.
func mkdirAllSync(root, dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return &iofs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
		}
		return nil
	}
	if !errors.Is(err, iofs.ErrNotExist) || dir == root {
		return err
	}
	parent := filepath.Dir(dir)
	if err := mkdirAllSync(root, parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, iofs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

// syncDir fsyncs a directory, making the names in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// ctxReader stops a copy when ctx is done.
// writeback writes to f and starts the kernel writing each 8 MiB to disk
// as soon as it is written: the fsync that ends a Put then waits for the
// last few MiB instead of the whole file (256 MiB: 145 ms -> 10 ms here).
type writeback struct {
	f             *os.File
	written, sent int64
}

const writebackEvery = 8 << 20

func (w *writeback) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.written += int64(n)
	if w.written-w.sent >= writebackEvery {
		StartWriteback(w.f, w.sent, w.written-w.sent)
		w.sent = w.written
	}
	return n, err
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}

// Delete removes the file; an absent file is not an error. Directories
// left empty are kept: removing them would race with a concurrent Put
// into the same directory.
func (p *Provider) Delete(ctx context.Context, path string) error {
	if err := checkPath(path); err != nil {
		return p.wrap("delete", path, err)
	}
	if err := ctx.Err(); err != nil {
		return p.wrap("delete", path, err)
	}
	name := p.file(path)
	fi, err := os.Lstat(name)
	if errors.Is(err, iofs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil
	}
	if err != nil {
		return p.wrap("delete", path, err)
	}
	if fi.IsDir() {
		return p.wrap("delete", path, fmt.Errorf("is a directory: %w", iofs.ErrInvalid))
	}
	if err := os.Remove(name); err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return p.wrap("delete", path, err)
	}
	if err := syncDir(filepath.Dir(name)); err != nil {
		return p.wrap("delete", path, err)
	}
	return nil
}

var (
	_ backends.Provider    = (*Provider)(nil)
	_ backends.Writer      = (*Provider)(nil)
	_ backends.SizedOpener = (*Provider)(nil)
	_ backends.Filer       = (*Provider)(nil)
)

// CleanTemp counts Put's temporary files last changed before before (by
// ctime, which nothing can set back) and, with remove, deletes them. Run by
// the owner of a store when no Put of an earlier run can still be going:
// they are then what interrupted uploads (a crash, kill -9) left behind.
func (p *Provider) CleanTemp(before time.Time, remove bool) (files int, bytes int64, err error) {
	dir := filepath.Join(p.root, tmpDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, iofs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, p.wrap("clean", tmpDir, err)
	}
	var errs []error
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		if changed(fi).After(before) || fi.IsDir() {
			continue
		}
		if remove {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, iofs.ErrNotExist) {
				errs = append(errs, err)
				continue
			}
		}
		files++
		bytes += fi.Size()
	}
	if err := errors.Join(errs...); err != nil {
		return files, bytes, p.wrap("clean", tmpDir, err)
	}
	return files, bytes, nil
}

// Now returns the file system's current time as it stamps files: the
// change time of a file created now (then removed). File times come from
// the kernel's coarse clock, or a file server's, which can lag the clock
// time.Now reads by milliseconds or more; a bound to compare ctimes with
// must be taken from the same clock.
func (p *Provider) Now() (time.Time, error) {
	dir := filepath.Join(p.root, tmpDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return time.Time{}, p.wrap("now", tmpDir, err)
	}
	f, err := createTemp(dir)
	if err != nil {
		return time.Time{}, p.wrap("now", tmpDir, err)
	}
	fi, err := f.Stat()
	f.Close()
	os.Remove(f.Name())
	if err != nil {
		return time.Time{}, p.wrap("now", tmpDir, err)
	}
	return changed(fi), nil
}

// Changed returns when the file at path last changed, data or metadata
// (its ctime; errors.ErrUnsupported where it is not read). Unlike the
// mtime it cannot be set back, so it tells files of an earlier run from
// files being written now.
func (p *Provider) Changed(path string) (time.Time, error) {
	if err := checkPath(path); err != nil {
		return time.Time{}, p.wrap("stat", path, err)
	}
	fi, err := os.Lstat(p.file(path))
	if err != nil {
		return time.Time{}, p.wrap("stat", path, err)
	}
	return ctime(fi)
}
