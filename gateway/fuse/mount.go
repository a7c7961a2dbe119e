package fuse

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	ffs "github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"github.com/hanwen/go-fuse/v2/splice"

	"github.com/datagate/datagate/views"
)

// Options configure Mount.
type Options struct {
	// Tree is the user's file system to mount. Required.
	Tree *views.Tree
	// Set is no longer used (extended attributes go through
	// views.Tree.SetMeta); kept so existing callers compile.
	Set *views.Set
	// Events is the change feed (views.Watch) that drives kernel cache
	// invalidation; nil leaves it to the timeouts. The caller owns the
	// Watcher and closes it after Unmount.
	Events <-chan views.Event
	// SpoolDir holds written files until they are pushed (unlinked at
	// once: nothing is left there after a crash). Required unless ReadOnly.
	SpoolDir string
	// ReadOnly mounts read-only whatever the user's rights.
	ReadOnly bool
	// AllowOther lets other users than the mounting one in (FUSE
	// allow_other; needs user_allow_other in /etc/fuse.conf unless root).
	AllowOther bool
	// EntryTimeout and AttrTimeout are how long the kernel may trust a
	// name or an attribute. With Events the change feed invalidates what
	// changes, so the default is long (1 hour) and the kernel also keeps
	// directory listings and file pages; without Events it is 1s and
	// listings are not kept.
	EntryTimeout, AttrTimeout time.Duration
	// OpTimeout bounds each call into the store, so a stuck provider
	// gives EIO, never a hung process (default 1 minute).
	OpTimeout time.Duration
	// UID and GID own every file (default: the mounting process's).
	UID, GID uint32
	// Debug logs every FUSE request.
	Debug  bool
	Logger *slog.Logger
	// WrapRaw, if set, wraps the file system go-fuse serves: metrics
	// (gateway/metrics) count every request there. nil: none.
	WrapRaw func(gofuse.RawFileSystem) gofuse.RawFileSystem
}

// Mounted is a mounted tree.
type Mounted struct {
	// immutable after Mount
	dir    string
	srv    *gofuse.Server
	fsys   *filesys
	cancel context.CancelFunc // ends fsys.life: in-flight calls fail
	wg     sync.WaitGroup     // the change feed goroutine

	once sync.Once
	uerr error
}

// filesys is what every node shares.
type filesys struct {
	// immutable after Mount
	tree      *views.Tree
	spool     string
	ro        bool
	uid, gid  uint32
	opTimeout time.Duration
	mounted   time.Time
	log       *slog.Logger
	life      context.Context // cancelled by Unmount
	root      *node
	// notified: the change feed invalidates the kernel's caches, so it
	// may keep names, attributes, listings and pages long, and nodes may
	// trust what they last learnt.
	notified bool
	settler  *releaseSettler // set before the mount serves (release.go)
	pins     pins            // quick opens, pinned before this mount drops their object (pin.go)
	// noOpen: a read-only mount with the change feed answers OPEN with
	// ENOSYS, so the kernel opens files without asking (see noOpenRead).
	noOpen bool

	pages   atomic.Int64 // directory pages read from the index, for tests
	eventAt atomic.Int64 // when follow last applied an event (Unix ns), for benchmarks
	// xattrGen counts metadata changes made through this mount: they
	// void every node's kept xattrs at once (another node of the same
	// object would otherwise show the old ones until the feed arrives).
	xattrGen atomic.Int64
}

// notifiedTimeout is the entry and attribute timeout when the change
// feed keeps the kernel's caches right.
const notifiedTimeout = time.Hour

// rootTimeout is how long the kernel trusts the root's entries and
// listing, which the change feed does not cover entirely (see child).
const rootTimeout = time.Second

// Mount mounts opts.Tree at dir and serves it until Unmount (or an
// external fusermount -u). The mount point must be an existing directory.
func Mount(ctx context.Context, dir string, opts Options) (*Mounted, error) {
	if opts.Tree == nil {
		return nil, errors.New("fuse: Options.Tree is required")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("fuse: mount point %s: %w", dir, err)
	}
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("fuse: mount point: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("fuse: mount point %s is not a directory", dir)
	}
	if !opts.ReadOnly {
		if opts.SpoolDir == "" {
			return nil, errors.New("fuse: Options.SpoolDir is required for a writable mount")
		}
		if err := os.MkdirAll(opts.SpoolDir, 0o700); err != nil {
			return nil, fmt.Errorf("fuse: spool directory: %w", err)
		}
	}
	defTimeout := time.Second
	if opts.Events != nil {
		defTimeout = notifiedTimeout
	}
	if opts.EntryTimeout <= 0 {
		opts.EntryTimeout = defTimeout
	}
	if opts.AttrTimeout <= 0 {
		opts.AttrTimeout = defTimeout
	}
	if opts.OpTimeout <= 0 {
		opts.OpTimeout = time.Minute
	}
	if opts.UID == 0 && opts.GID == 0 {
		opts.UID, opts.GID = uint32(os.Getuid()), uint32(os.Getgid())
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	life, cancel := context.WithCancel(context.WithoutCancel(ctx))
	mid := views.NewRequestID() // the mount's id in logs and audit records (audit.go)
	fsys := &filesys{
		tree: mountTree(opts.Tree, mid), spool: opts.SpoolDir, ro: opts.ReadOnly, uid: opts.UID, gid: opts.GID,
		opTimeout: opts.OpTimeout, mounted: time.Now(), log: opts.Logger.With("mount", dir, "mount_id", mid), life: life,
		notified: opts.Events != nil,
		noOpen:   opts.ReadOnly && opts.Events != nil,
	}
	fsys.root = &node{fsys: fsys, dir: true}
	mopts := gofuse.MountOptions{
		FsName:       "datagate:" + opts.Tree.User(),
		Name:         "datagate",
		AllowOther:   opts.AllowOther,
		MaxWrite:     1 << 20,
		MaxReadAhead: 1 << 20,
		// Root mounts without fusermount; others fall back to it.
		DirectMount: true,
		Debug:       opts.Debug,
		// READDIRPLUS for a listing's first batch, and for the rest only
		// when the lister also looks entries up (ls -l, not ls -f or
		// find): the kernel decides, per directory.
		// O_TRUNC in OPEN (not a SETATTR after it): a file opened to be
		// rewritten starts from an empty spool instead of a copy of the
		// content it replaces.
		// Shared mappings of files opened with direct I/O (every writer,
		// a reader of a file whose size was unknown): without it mmap
		// fails with ENODEV. The kernel writes a mapping's dirty pages
		// back as WRITEs before FLUSH and at munmap.
		ExtraCapabilities: gofuse.CAP_READDIRPLUS_AUTO | gofuse.CAP_ATOMIC_O_TRUNC | gofuse.CAP_DIRECT_IO_ALLOW_MMAP,
		Logger:            log.New(slogWriter{fsys.log}, "", 0),
	}
	if opts.ReadOnly {
		mopts.Options = append(mopts.Options, "ro")
	}
	if mr := maxRead(); mr < mopts.MaxWrite {
		// After go-fuse's own max_read=MaxWrite, so it wins on a direct
		// (root) mount. Through fusermount go-fuse's comes last, but
		// there the kernel's 128 KiB read-ahead window keeps READs
		// small anyway (setReadAhead needs root).
		mopts.Options = append(mopts.Options, fmt.Sprintf("max_read=%d", mr))
	}
	if opts.AllowOther {
		// Other local users get the mode bits (files are the mounting
		// user's, writable only with the w right) checked by the kernel.
		mopts.Options = append(mopts.Options, "default_permissions")
	}
	neg := time.Duration(0)
	srv, err := mountRaw(dir, fsys, opts.WrapRaw, &ffs.Options{
		MountOptions:    mopts,
		EntryTimeout:    &opts.EntryTimeout,
		AttrTimeout:     &opts.AttrTimeout,
		NegativeTimeout: &neg,
		UID:             opts.UID,
		GID:             opts.GID,
		Logger:          log.New(slogWriter{fsys.log}, "", 0),
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("fuse: mount %s: %w", dir, err)
	}
	m := &Mounted{dir: dir, srv: srv, fsys: fsys, cancel: cancel}
	if err := setReadAhead(dir, readAheadKB); err != nil {
		fsys.log.Debug("read-ahead left at the kernel's default", "err", err)
	}
	if opts.Events != nil {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			fsys.follow(opts.Events)
		}()
	}
	fsys.log.Info("mounted", "user", opts.Tree.User(), "read_only", opts.ReadOnly)
	return m, nil
}

// Dir returns the mount point.
func (m *Mounted) Dir() string { return m.dir }

// Wait blocks until the file system is unmounted.
func (m *Mounted) Wait() { m.srv.Wait() }

// Unmount unmounts. In-flight calls into the store are cancelled first
// (they fail with EIO); a busy mount (open files, a shell inside) is
// detached lazily, so the mount point is free at once and never left as
// a dead "transport endpoint is not connected". If the last users do not
// let go before ctx ends, the connection is aborted: their calls fail.
func (m *Mounted) Unmount(ctx context.Context) error {
	m.once.Do(func() { m.uerr = m.unmount(ctx) })
	return m.uerr
}

func (m *Mounted) unmount(ctx context.Context) error {
	conn := connectionID(m.dir)
	m.cancel()
	done := make(chan struct{})
	go func() { m.srv.Wait(); close(done) }()
	err := syscall.Unmount(m.dir, 0)
	if err != nil && !errors.Is(err, syscall.EINVAL) {
		// Busy, or not root: detach lazily.
		if derr := syscall.Unmount(m.dir, syscall.MNT_DETACH); derr != nil {
			if out, ferr := fusermount(m.dir); ferr != nil {
				m.wg.Wait()
				return fmt.Errorf("fuse: unmount %s: %v; lazy: %v; fusermount: %v %s", m.dir, err, derr, ferr, out)
			}
		}
		m.fsys.log.Info("busy: detached lazily", "err", err)
		// Whoever still holds it (a shell's cwd, an open file) would
		// only get errors from us now: give in-flight replies a moment,
		// then abort the connection rather than wait for them to leave.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, detachGrace)
		defer cancel()
	}
	select {
	case <-done:
	case <-ctx.Done():
		// Users still hold the detached file system: abort the
		// connection so they get errors instead of waiting on us.
		if conn != "" {
			os.WriteFile(filepath.Join("/sys/fs/fuse/connections", conn, "abort"), []byte("1"), 0)
		}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
	}
	m.wg.Wait()
	m.fsys.log.Info("unmounted")
	return nil
}

// detachGrace is how long a lazily detached mount may keep serving its
// last users before its connection is aborted.
const detachGrace = 2 * time.Second

// readAheadKB is the mount's read-ahead window. The kernel gives a FUSE
// mount its default 128 KiB whatever MaxReadAhead says (the INIT reply can
// only lower it), so sequential reads of content that is not passed
// through arrive as 128 KiB READs: eight times the requests of 1 MiB ones
// (MaxWrite bounds a request). A wider window also keeps several READs in
// flight, so a cold read overlaps its fetches from the provider.
const readAheadKB = 4096

// maxRead is the largest READ the kernel is asked to send: the largest
// reply that fits a splice pipe, so that every READ not passed through
// (content being fetched, or cached but read beside a cached open) is
// spliced from the file (fromFile) instead of pread into a buffer and
// written out of it. Pipes hold /proc/sys/fs/pipe-max-size, 1 MiB by
// default (raising it is the administrator's call, not ours): a 1 MiB
// READ's reply, with its header and the page go-fuse keeps free, never
// fits; 1016 KiB does. Only reads are capped: WRITEs stay 1 MiB
// (MaxWrite). Measured on the cold read (BenchmarkColdHTTP256MiB, same
// CPU per byte): 700–836 MB/s against 484–595 uncapped, alternated. With
// a pipe limit so small that capping would make READs tiny, they are
// left at MaxWrite.
func maxRead() int {
	pg := os.Getpagesize()
	mr := (splice.MaxPipeSize() - spliceSlack) / pg * pg
	if mr < minCappedRead {
		return 1 << 30 // no cap
	}
	return mr
}

// minCappedRead is the smallest READ size maxRead caps to.
const minCappedRead = 256 << 10

// setReadAhead sets the read-ahead window of the mount's backing device
// info (root only; others keep the kernel's default).
func setReadAhead(dir string, kb int) error {
	major, minor, err := device(dir)
	if err != nil {
		return err
	}
	return os.WriteFile(fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", major, minor), []byte(fmt.Sprint(kb)), 0)
}

// device returns the device numbers of the file system mounted at dir.
func device(dir string) (major, minor uint32, err error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return 0, 0, err
	}
	d := uint64(st.Dev)
	return uint32((d>>8)&0xfff | (d>>32)&^0xfff), uint32(d&0xff | (d>>12)&^0xff), nil
}

// mountRaw is ffs.Mount with the raw file system passed through wrap
// (when not nil) before it is served.
func mountRaw(dir string, fsys *filesys, wrap func(gofuse.RawFileSystem) gofuse.RawFileSystem, o *ffs.Options) (*gofuse.Server, error) {
	fsys.settler = newReleaseSettler(ffs.NewNodeFS(fsys.root, o))
	var raw gofuse.RawFileSystem = fsys.settler
	if wrap != nil {
		raw = wrap(raw)
	}
	srv, err := gofuse.NewServer(raw, dir, &o.MountOptions)
	if err != nil {
		return nil, err
	}
	go srv.Serve()
	if err := srv.WaitMount(); err != nil {
		return nil, err // as ffs.Mount: the serve loop ends with the failed mount
	}
	return srv, nil
}

// connectionID is the FUSE connection of the mount (its device minor),
// the name of its directory under /sys/fs/fuse/connections.
func connectionID(dir string) string {
	_, minor, err := device(dir)
	if err != nil {
		return ""
	}
	return fmt.Sprint(minor)
}

// guard turns a panic in an operation into EIO and one log line.
func (f *filesys) guard(op string, e *syscall.Errno) {
	if r := recover(); r != nil {
		f.log.Error("panic in FUSE operation", "op", op, "panic", r, "stack", string(debug.Stack()))
		*e = syscall.EIO
	}
}

// opCtx bounds one call into the store by the operation timeout and the
// mount's life. Interruptible calls (reads, which may wait on a slow
// provider) also end when the kernel interrupts the request; others
// complete, so a signal never leaves a push or a rename half-reported.
func (f *filesys) opCtx(ctx context.Context, interruptible bool) (context.Context, context.CancelFunc) {
	if !interruptible {
		ctx = context.WithoutCancel(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, f.opTimeout)
	stop := context.AfterFunc(f.life, cancel)
	return ctx, func() { stop(); cancel() }
}

// errno maps err, with calls cut short by Unmount as EIO.
func (f *filesys) errno(err error) syscall.Errno {
	if err != nil && f.life.Err() != nil {
		return syscall.EIO
	}
	e := errno(err)
	if e == syscall.EIO { // the errno says nothing more: the log says why
		f.log.Warn("FUSE operation failed", "err", err)
	}
	return e
}

// slogWriter sends go-fuse's log lines to slog.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug("go-fuse: " + string(p))
	return len(p), nil
}

// fusermount detaches dir lazily through the setuid helper, for mounts
// made without root.
func fusermount(dir string) ([]byte, error) {
	bin := "fusermount3"
	if _, err := exec.LookPath(bin); err != nil {
		bin = "fusermount"
	}
	return exec.Command(bin, "-u", "-z", dir).CombinedOutput()
}
