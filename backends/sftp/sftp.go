// Package sftp is the provider driver for SFTP servers: it reads ranges of
// files, lists and stats them, and, as a store, writes files atomically
// and deletes them.
//
// # Writes
//
// Put writes to a temporary file in the ".datagate-tmp" directory under the
// root and renames it into place, so the root must be one file system on
// the server (as a local store's). A failed Put removes its temporary file;
// one a crash interrupted stays there, in one directory that SweepTemp
// reads instead of the whole tree. ".datagate-tmp" is therefore reserved:
// paths under it are invalid and List skips it.
//
// # Connections
//
// New checks the configuration and reads the key and known_hosts files but
// does not connect. The first call dials; up to MaxConns SSH connections,
// each with one SFTP session, are kept and shared by concurrent calls (SFTP
// multiplexes requests). A connection that ends — server restart, network,
// watchdog — leaves the pool and the next call dials again; a call that
// finds its idle connection gone is repeated once on a new one.
//
// # Timeouts
//
// pkg/sftp takes no context. Every request therefore runs under a watchdog
// that closes the connection when Timeout passes with no byte received
// while the request waits; the request, and any other on that connection,
// fails with backends.ErrUnavailable. Cancelling ctx returns at once and
// leaves the request to the watchdog. Dial, handshake and the SFTP version
// exchange are bounded by Timeout too.
//
// # Host keys
//
// The server's key is checked against known_hosts (default
// ~/.ssh/known_hosts); insecure_ignore_host_key turns that off explicitly,
// with a warning in the log.
//
// # Errors
//
// One function, classify, maps pkg/sftp statuses, SSH and network errors
// to iofs.ErrNotExist, iofs.ErrPermission (also refused credentials and
// host keys), iofs.ErrInvalid, backends.ErrNoSpace and
// backends.ErrUnavailable. Messages name the provider, user@address and
// path, never the password.
//
// Locks: pool.mu guards the pool and connections' reference counts;
// watchdog.mu guards one call's timer. Neither is taken while the other is
// held, and pool.mu is never held during I/O.
package sftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/datagate/datagate/backends"
)

// Config configures one SFTP provider.
type Config struct {
	Address       string `yaml:"address"` // host or host:port (port 22 if absent)
	User          string `yaml:"user"`
	Password      string `yaml:"password"`
	KeyFile       string `yaml:"key_file"`       // private key, OpenSSH or PEM format
	KeyPassphrase string `yaml:"key_passphrase"` // when KeyFile is encrypted
	// Root is the directory on the server that provider paths are relative
	// to; relative to the login directory unless absolute. Empty: the
	// login directory.
	Root string `yaml:"root"`
	// KnownHosts is the known_hosts file the server's key must be in.
	// Default ~/.ssh/known_hosts.
	KnownHosts            string        `yaml:"known_hosts"`
	InsecureIgnoreHostKey bool          `yaml:"insecure_ignore_host_key"`
	Timeout               time.Duration `yaml:"timeout"`   // dial, handshake and each request; default 30s
	MaxConns              int           `yaml:"max_conns"` // default 4
}

// Provider reads from and writes to one SFTP server.
type Provider struct {
	// immutable after New
	name        string
	cfg         Config // defaults applied
	hostport    string
	addr        string // user@host:port, for messages
	root        string // cleaned Root; "." for the login directory
	logger      *slog.Logger
	sshConfig   *ssh.ClientConfig
	authMethods string // for messages: "public key, password"

	noPosixRename atomic.Bool // learnt from a server that refused it
	live          liveTemps   // temporary files of Puts in progress (temp.go)
	pool          pool
	calls         sync.WaitGroup // spawn: calls' runners, background closes
	wg            sync.WaitGroup // connection monitors
}

const (
	defaultTimeout  = 30 * time.Second
	defaultMaxConns = 4
	// blockSize is how much a reader asks for at once: pkg/sftp splits it
	// into concurrent 32 KiB requests, which keeps the link busy.
	blockSize = 1 << 20
)

// New checks cfg and returns a provider that connects on first use.
func New(name string, cfg Config, logger *slog.Logger) (*Provider, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Provider{name: name, logger: logger}
	p.pool.changed = make(chan struct{})
	invalid := func(format string, args ...any) error {
		return &opError{provider: name, addr: p.addr, op: "config", err: fmt.Errorf(format, args...), kind: iofs.ErrInvalid}
	}
	if cfg.Address == "" {
		return nil, invalid("address is required")
	}
	p.hostport = cfg.Address
	if _, _, err := net.SplitHostPort(cfg.Address); err != nil {
		p.hostport = net.JoinHostPort(cfg.Address, "22")
	}
	p.addr = cfg.User + "@" + p.hostport
	if cfg.User == "" {
		return nil, invalid("user is required")
	}
	if cfg.Timeout < 0 || cfg.MaxConns < 0 {
		return nil, invalid("timeout and max_conns must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = defaultMaxConns
	}
	p.pool.max = cfg.MaxConns
	p.root = path.Clean(cfg.Root)
	if cfg.Root == "" {
		p.root = "."
	}

	var auth []ssh.AuthMethod
	var methods []string
	if cfg.KeyFile != "" {
		signer, err := loadKey(cfg.KeyFile, cfg.KeyPassphrase)
		if err != nil {
			return nil, invalid("%v", err)
		}
		auth = append(auth, ssh.PublicKeys(signer))
		methods = append(methods, "public key "+cfg.KeyFile)
	}
	if cfg.Password != "" {
		pw := cfg.Password
		auth = append(auth, ssh.Password(pw),
			// Many servers take passwords only through keyboard-interactive.
			ssh.KeyboardInteractive(func(_, _ string, questions []string, echos []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range questions {
					if !echos[i] {
						answers[i] = pw
					}
				}
				return answers, nil
			}))
		methods = append(methods, "password")
	}
	if len(auth) == 0 {
		return nil, invalid("no credentials: set password or key_file")
	}
	p.authMethods = strings.Join(methods, ", ")

	var hostKeyCallback ssh.HostKeyCallback
	var algos []string
	if cfg.InsecureIgnoreHostKey {
		logger.Warn("sftp provider does not check the server's host key (insecure_ignore_host_key)", "provider", name, "addr", p.hostport)
		hostKeyCallback = ssh.InsecureIgnoreHostKey()
	} else {
		if cfg.KnownHosts == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, invalid("known_hosts not set and no home directory: %v", err)
			}
			cfg.KnownHosts = filepath.Join(home, ".ssh", "known_hosts")
		} else if rest, ok := strings.CutPrefix(cfg.KnownHosts, "~/"); ok {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, invalid("known_hosts %s: %v", cfg.KnownHosts, err)
			}
			cfg.KnownHosts = filepath.Join(home, rest)
		}
		check, err := knownhosts.New(cfg.KnownHosts)
		if err != nil {
			return nil, invalid("known_hosts: %v (set known_hosts, or insecure_ignore_host_key to skip the check)", err)
		}
		algos = hostKeyAlgorithms(check, p.hostport)
		knownHosts, addr := cfg.KnownHosts, p.hostport
		hostKeyCallback = func(host string, remote net.Addr, key ssh.PublicKey) error {
			if err := check(host, remote, key); err != nil {
				return &hostKeyError{addr: addr, knownHosts: knownHosts, err: err}
			}
			return nil
		}
	}
	p.cfg = cfg
	p.sshConfig = &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              auth,
		HostKeyCallback:   hostKeyCallback,
		HostKeyAlgorithms: algos,
		Timeout:           cfg.Timeout,
		ClientVersion:     "SSH-2.0-datagate",
	}
	return p, nil
}

func loadKey(file, passphrase string) (ssh.Signer, error) {
	pemBytes, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("key_file: %w", err)
	}
	if passphrase == "" {
		signer, err := ssh.ParsePrivateKey(pemBytes)
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, fmt.Errorf("key_file %s is encrypted: set key_passphrase", file)
		}
		if err != nil {
			return nil, fmt.Errorf("key_file %s: %w", file, err)
		}
		return signer, nil
	}
	signer, err := ssh.ParsePrivateKeyWithPassphrase(pemBytes, []byte(passphrase))
	if err != nil {
		return nil, fmt.Errorf("key_file %s with key_passphrase: %w", file, err)
	}
	return signer, nil
}

// Name returns the configured name.
func (p *Provider) Name() string { return p.name }

// Close closes every connection and waits for the provider's goroutines.
// Calls made after Close fail; open readers fail on their next read.
func (p *Provider) Close() error {
	p.closeAll()
	p.calls.Wait()
	p.wg.Wait()
	return nil
}

// wrap builds the error an operation returns.
func (p *Provider) wrap(op, name string, err error) error {
	if err == nil {
		return nil
	}
	return &opError{provider: p.name, addr: p.addr, op: op, path: name, err: err, kind: classify(err)}
}

// remote turns a provider path into the server's path, refusing paths
// that could leave the root.
func (p *Provider) remote(name string) (string, error) {
	if !iofs.ValidPath(name) || name == "." || name == tempDir || strings.HasPrefix(name, tempDir+"/") {
		return "", fmt.Errorf("invalid path %q: %w", name, iofs.ErrInvalid)
	}
	return path.Join(p.root, name), nil
}

// rel turns a server path under the root back into a provider path.
func (p *Provider) rel(full string) string {
	switch p.root {
	case ".":
		return full
	case "/":
		return strings.TrimPrefix(full, "/")
	}
	return strings.TrimPrefix(full, p.root+"/")
}

// do gets a connection and calls fn with it. If fn fails because a reused
// connection turned out to be gone (the server dropped it while idle), that
// connection is discarded and fn is called again, provided retry allows
// it, until it runs on a freshly dialled one: at most max_conns+1 calls.
func (p *Provider) do(ctx context.Context, retry func() bool, fn func(c *conn) error) error {
	for attempt := 0; ; attempt++ {
		c, fresh, err := p.get(ctx)
		if err != nil {
			return err
		}
		err = fn(c)
		p.release(c)
		if err == nil || fresh || attempt >= p.pool.max || !connLost(err) || (retry != nil && !retry()) {
			return err
		}
		c.kill()
		p.logger.Debug("sftp connection lost; retrying on another", "provider", p.name, "addr", p.addr, "conn", c.id, "err", err)
	}
}

// Open returns the bytes [off, off+length) of the file, or [off, EOF) when
// length < 0. ctx governs the reader's reads too.
func (p *Provider) Open(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	return p.open(ctx, name, off, length, -1)
}

// OpenSized is Open for a file that must be size bytes long when opened:
// another size is backends.ErrChanged.
func (p *Provider) OpenSized(ctx context.Context, name string, off, length, size int64) (io.ReadCloser, error) {
	return p.open(ctx, name, off, length, size)
}

// open is Open; size is the file's expected size, < 0 if unknown.
func (p *Provider) open(ctx context.Context, name string, off, length, size int64) (io.ReadCloser, error) {
	full, err := p.remote(name)
	if err != nil {
		return nil, p.wrap("open", name, err)
	}
	if off < 0 {
		return nil, p.wrap("open", name, fmt.Errorf("negative offset %d: %w", off, iofs.ErrInvalid))
	}
	var rd *reader
	err = p.do(ctx, nil, func(c *conn) error {
		var f *pkgsftp.File
		var fi os.FileInfo
		err := p.runUndo(ctx, c, "open", func() error {
			var err error
			if f, err = c.sftp.Open(full); err != nil {
				return err
			}
			if fi, err = f.Stat(); err != nil {
				f.Close()
			}
			return err
		}, func() { p.closeFile(c, f) })
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			p.closeFile(c, f)
			return fmt.Errorf("not a regular file: %w", iofs.ErrInvalid)
		}
		if size >= 0 && fi.Size() != size {
			p.closeFile(c, f)
			return fmt.Errorf("%w: %d bytes, registered with %d", backends.ErrChanged, fi.Size(), size)
		}
		if off > fi.Size() {
			p.closeFile(c, f)
			return fmt.Errorf("offset %d beyond the end (%d bytes): %w", off, fi.Size(), iofs.ErrInvalid)
		}
		p.hold(c)
		rd = newReader(ctx, p, c, f, name, off, length, fi.Size())
		return nil
	})
	if err != nil {
		return nil, p.wrap("open", name, err)
	}
	return rd, nil
}

// closeFile closes a remote handle in the background, bounded by the
// watchdog, holding a reference on c until done.
func (p *Provider) closeFile(c *conn, f *pkgsftp.File) {
	p.hold(c)
	if !p.spawn(func() {
		defer p.release(c)
		if err := p.run(context.Background(), c, "close", f.Close); err != nil && !c.killed.Load() {
			p.logger.Debug("sftp close failed", "provider", p.name, "addr", p.addr, "file", f.Name(), "err", err)
		}
	}) {
		p.release(c)
	}
}

// Stat describes the file at name.
func (p *Provider) Stat(ctx context.Context, name string) (backends.Entry, error) {
	full, err := p.remote(name)
	if err != nil {
		return backends.Entry{}, p.wrap("stat", name, err)
	}
	var fi os.FileInfo
	err = p.do(ctx, nil, func(c *conn) error {
		return p.run(ctx, c, "stat", func() error {
			var err error
			fi, err = c.sftp.Stat(full)
			return err
		})
	})
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("not a regular file: %w", iofs.ErrInvalid)
	}
	if err != nil {
		return backends.Entry{}, p.wrap("stat", name, err)
	}
	return backends.Entry{Path: name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List calls fn for every regular file under prefix, and for symbolic
// links to regular files; it does not follow links to directories.
func (p *Provider) List(ctx context.Context, prefix string, fn func(backends.Entry) error) error {
	start := p.root
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix != "" {
		var err error
		if start, err = p.remote(prefix); err != nil {
			return p.wrap("list", prefix, err)
		}
	}
	stack := []string{start}
	for len(stack) > 0 {
		dir := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		var fis []os.FileInfo
		err := p.do(ctx, nil, func(c *conn) error {
			return p.run(ctx, c, "readdir", func() error {
				var err error
				fis, err = c.sftp.ReadDirContext(ctx, dir)
				return err
			})
		})
		if err != nil {
			if dir != start {
				if errors.Is(classify(err), iofs.ErrNotExist) {
					continue // removed while we walked
				}
				return p.wrap("list", p.rel(dir), err)
			}
			if prefix == "" && errors.Is(p.wrap("list", "", err), iofs.ErrNotExist) {
				// Not an empty listing (which a crawl of a prefix not
				// there yet is): the configured root is missing.
				err = fmt.Errorf("root %s: %v: %w", p.root, err, iofs.ErrInvalid)
			}
			return p.wrap("list", prefix, err)
		}
		for _, fi := range fis {
			full := path.Join(dir, fi.Name())
			switch {
			case isTemp(fi.Name()):
				continue // a Put in progress, of a version that wrote beside the file
			case dir == p.root && fi.Name() == tempDir:
				continue // Puts in progress, and a crash's leftovers (temp.go)
			case fi.IsDir():
				stack = append(stack, full)
				continue
			case fi.Mode()&os.ModeSymlink != 0:
				var target os.FileInfo
				err := p.do(ctx, nil, func(c *conn) error {
					return p.run(ctx, c, "stat", func() error {
						var err error
						target, err = c.sftp.Stat(full)
						return err
					})
				})
				if errors.Is(classify(err), iofs.ErrNotExist) {
					continue // dangling
				}
				if err != nil {
					return p.wrap("list", p.rel(full), err)
				}
				fi = target
			}
			if !fi.Mode().IsRegular() {
				continue
			}
			if err := fn(backends.Entry{Path: p.rel(full), Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Put writes r to a temporary file in the temporary directory and renames
// it into place.
func (p *Provider) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	full, err := p.remote(name)
	if err != nil {
		return p.wrap("put", name, err)
	}
	base := newTempName()
	p.live.add(base)
	defer p.live.remove(base)
	tmp := path.Join(p.root, tempDir, base)
	consumed := false
	err = p.do(ctx, func() bool { return !consumed }, func(c *conn) error {
		return p.put(ctx, c, full, tmp, r, size, &consumed)
	})
	return p.wrap("put", name, err)
}

func (p *Provider) put(ctx context.Context, c *conn, full, tmp string, r io.Reader, size int64, consumed *bool) (err error) {
	var f *pkgsftp.File
	create := func() error {
		var err error
		f, err = c.sftp.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_TRUNC)
		return err
	}
	// A create abandoned on ctx leaves a temporary file to remove.
	undo := func() { p.removeTemp(ctx, c, f, tmp) }
	err = p.runUndo(ctx, c, "create", create, undo)
	if errors.Is(classify(err), iofs.ErrNotExist) {
		err = p.runUndo(ctx, c, "mkdir", func() error {
			if err := c.sftp.MkdirAll(path.Dir(tmp)); err != nil {
				return err
			}
			return create()
		}, undo)
	}
	if err != nil {
		return err
	}
	open := f
	defer func() {
		if err != nil {
			p.removeTemp(ctx, c, open, tmp)
		}
	}()

	n := int64(blockSize)
	if size >= 0 && size < n {
		n = max(size, 1)
	}
	buf := make([]byte, n)
	src := r
	if size >= 0 {
		src = io.LimitReader(r, size+1) // one more, to notice a longer body
	}
	var off int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		*consumed = true
		n, rerr := io.ReadFull(src, buf)
		if n > 0 {
			// A write abandoned on ctx may still read buf: it is not reused then,
			// since the error ends the loop.
			if err := p.run(ctx, c, "write", func() error {
				_, err := f.WriteAt(buf[:n], off)
				return err
			}); err != nil {
				return err
			}
			off += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return &sourceError{rerr}
		}
	}
	if size >= 0 && off != size {
		return fmt.Errorf("content is %d bytes, not the %d announced: %w", off, size, iofs.ErrInvalid)
	}
	err = p.run(ctx, c, "close", f.Close)
	open = nil
	if err != nil {
		return err
	}
	err = p.run(ctx, c, "rename", func() error { return p.rename(c, tmp, full) })
	if errors.Is(classify(err), iofs.ErrNotExist) {
		// The target's directory is new (or the temporary file is gone:
		// then the rename fails again, and the error is returned).
		err = p.run(ctx, c, "mkdir", func() error {
			if err := c.sftp.MkdirAll(path.Dir(full)); err != nil {
				return err
			}
			return p.rename(c, tmp, full)
		})
	}
	return err
}

// rename moves tmp over full, atomically where the server offers
// posix-rename; otherwise (SFTP v3 rename refuses an existing target) it
// removes full first, leaving a moment with no file.
func (p *Provider) rename(c *conn, tmp, full string) error {
	if c.posixRename && !p.noPosixRename.Load() {
		err := c.sftp.PosixRename(tmp, full)
		if !errors.Is(classify(err), errors.ErrUnsupported) {
			return err
		}
		p.noPosixRename.Store(true)
		p.logger.Warn("sftp server refuses posix-rename; replacing files is not atomic", "provider", p.name, "addr", p.addr)
	}
	if err := c.sftp.Remove(full); err != nil && !errors.Is(classify(err), iofs.ErrNotExist) {
		return err
	}
	return c.sftp.Rename(tmp, full)
}

// removeTemp closes (unless f is nil) and removes a failed Put's temporary file, even when
// ctx is cancelled, trying a fresh connection if c is gone.
func (p *Provider) removeTemp(ctx context.Context, c *conn, f *pkgsftp.File, tmp string) {
	ctx = context.WithoutCancel(ctx)
	if f != nil {
		p.closeFile(c, f)
	}
	err := p.run(ctx, c, "remove", func() error { return c.sftp.Remove(tmp) })
	if err != nil && connLost(err) {
		err = p.do(ctx, nil, func(c *conn) error {
			return p.run(ctx, c, "remove", func() error { return c.sftp.Remove(tmp) })
		})
	}
	if err != nil && !errors.Is(classify(err), iofs.ErrNotExist) {
		p.logger.Warn("sftp: could not remove the temporary file of a failed put",
			"provider", p.name, "addr", p.addr, "file", tmp, "err", err)
	}
}

// Delete removes the file at name; an absent file is not an error.
func (p *Provider) Delete(ctx context.Context, name string) error {
	full, err := p.remote(name)
	if err != nil {
		return p.wrap("delete", name, err)
	}
	err = p.do(ctx, nil, func(c *conn) error {
		return p.run(ctx, c, "remove", func() error { return c.sftp.Remove(full) })
	})
	if errors.Is(classify(err), iofs.ErrNotExist) {
		return nil
	}
	return p.wrap("delete", name, err)
}

var (
	_ backends.Provider    = (*Provider)(nil)
	_ backends.Writer      = (*Provider)(nil)
	_ backends.SizedOpener = (*Provider)(nil)
)
