package sftp

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// errClosed is returned by every call after Close.
var errClosed = errors.New("provider closed")

// conn is one SSH connection with one SFTP session on it. Calls share it:
// SFTP multiplexes requests, and pkg/sftp's Client is safe for concurrent
// use.
type conn struct {
	// immutable after dial
	id          uint64
	nc          *activityConn
	ssh         *ssh.Client
	sftp        *pkgsftp.Client
	posixRename bool          // the server offers posix-rename@openssh.com
	dead        chan struct{} // closed when the SSH connection has ended

	killed atomic.Bool // the watchdog or Close closed it

	// guarded by pool.mu
	refs int // calls and open readers using it
}

func (c *conn) usable() bool {
	if c.killed.Load() {
		return false
	}
	select {
	case <-c.dead:
		return false
	default:
		return true
	}
}

// kill closes the connection, failing every call on it at once.
func (c *conn) kill() {
	c.killed.Store(true)
	c.ssh.Close()
}

// activityConn records when bytes last arrived: the watchdog's measure of
// progress.
type activityConn struct {
	net.Conn
	last atomic.Int64 // UnixNano of the last read that returned data
}

func (a *activityConn) Read(p []byte) (int, error) {
	n, err := a.Conn.Read(p)
	if n > 0 {
		a.last.Store(time.Now().UnixNano())
	}
	return n, err
}

// pool keeps up to max connections. A call takes the least used live one,
// or dials a new one when all are in use and there is room.
type pool struct {
	max int // immutable

	mu      sync.Mutex
	conns   []*conn
	dialing int
	changed chan struct{} // closed and replaced when conns or dialing change
	closed  bool
	nextID  uint64
}

// get returns a connection with a reference taken, and whether this call
// dialled it.
func (p *Provider) get(ctx context.Context) (*conn, bool, error) {
	pl := &p.pool
	for {
		pl.mu.Lock()
		if pl.closed {
			pl.mu.Unlock()
			return nil, false, errClosed
		}
		var best *conn
		for _, c := range pl.conns {
			if c.usable() && (best == nil || c.refs < best.refs) {
				best = c
			}
		}
		room := len(pl.conns)+pl.dialing < pl.max
		if best != nil && (best.refs == 0 || !room) {
			best.refs++
			pl.mu.Unlock()
			return best, false, nil
		}
		if room {
			pl.dialing++
			pl.nextID++
			id := pl.nextID
			pl.mu.Unlock()
			c, err := p.dial(ctx, id)
			pl.mu.Lock()
			pl.dialing--
			pl.signal()
			if err == nil && pl.closed {
				err = errClosed
				c.kill()
			}
			if err != nil {
				pl.mu.Unlock()
				return nil, false, err
			}
			c.refs = 1
			pl.conns = append(pl.conns, c)
			p.wg.Add(1)
			pl.mu.Unlock()
			go p.monitor(c)
			return c, true, nil
		}
		// Every slot is being dialled: wait for one to finish.
		changed := pl.changed
		pl.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-changed:
		}
	}
}

// signal wakes the callers waiting in get. Called with mu held.
func (pl *pool) signal() {
	close(pl.changed)
	pl.changed = make(chan struct{})
}

// hold takes one more reference on c (for a reader that outlives a call).
func (p *Provider) hold(c *conn) {
	p.pool.mu.Lock()
	c.refs++
	p.pool.mu.Unlock()
}

func (p *Provider) release(c *conn) {
	p.pool.mu.Lock()
	c.refs--
	p.pool.mu.Unlock()
}

// monitor removes c from the pool when its connection ends, whatever ended
// it: the server, the network, the watchdog or Close.
func (p *Provider) monitor(c *conn) {
	defer p.wg.Done()
	err := c.ssh.Wait()
	close(c.dead)
	c.sftp.Close()
	pl := &p.pool
	pl.mu.Lock()
	for i, x := range pl.conns {
		if x == c {
			pl.conns = append(pl.conns[:i], pl.conns[i+1:]...)
			break
		}
	}
	closing := pl.closed
	pl.signal()
	pl.mu.Unlock()
	if !closing {
		p.logger.Debug("sftp connection ended", "provider", p.name, "addr", p.addr, "conn", c.id, "err", err)
	}
}

// closeAll marks the pool closed and kills every connection.
func (p *Provider) closeAll() {
	pl := &p.pool
	pl.mu.Lock()
	if pl.closed {
		pl.mu.Unlock()
		return
	}
	pl.closed = true
	conns := append([]*conn(nil), pl.conns...)
	pl.signal()
	pl.mu.Unlock()
	for _, c := range conns {
		c.kill()
	}
}

// spawn runs f in a goroutine that Close waits for, unless the provider is
// closed.
func (p *Provider) spawn(f func()) bool {
	p.pool.mu.Lock()
	defer p.pool.mu.Unlock()
	if p.pool.closed {
		return false
	}
	p.calls.Add(1)
	go func() {
		defer p.calls.Done()
		f()
	}()
	return true
}

// dial connects, authenticates and starts an SFTP session, all within
// Timeout. ctx cancels it.
func (p *Provider) dial(ctx context.Context, id uint64) (*conn, error) {
	d := net.Dialer{Timeout: p.cfg.Timeout, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", p.hostport)
	if err != nil {
		return nil, err
	}
	ac := &activityConn{Conn: nc}
	ac.last.Store(time.Now().UnixNano())
	// ssh and pkg/sftp take no ctx: a deadline bounds the handshake and
	// the SFTP version exchange, and ctx pulls it in.
	deadline := time.Now().Add(p.cfg.Timeout)
	nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*conn, error) {
		stop()
		nc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !time.Now().Before(deadline) {
			return nil, &stallError{op: "connect", timeout: p.cfg.Timeout}
		}
		return nil, err
	}
	sc, chans, reqs, err := ssh.NewClientConn(ac, p.hostport, p.sshConfig)
	if err != nil {
		var hk *hostKeyError
		if !errors.As(err, &hk) && strings.Contains(err.Error(), "unable to authenticate") {
			err = &authError{user: p.cfg.User, methods: p.authMethods, err: err}
		}
		return fail(err)
	}
	client := ssh.NewClient(sc, chans, reqs)
	sc2, err := pkgsftp.NewClient(client,
		pkgsftp.UseConcurrentReads(true),
		pkgsftp.UseConcurrentWrites(true),
		pkgsftp.MaxConcurrentRequestsPerFile(64),
	)
	if err != nil {
		client.Close()
		return fail(err)
	}
	if !stop() {
		sc2.Close()
		client.Close()
		return nil, ctx.Err()
	}
	nc.SetDeadline(time.Time{})
	_, posix := sc2.HasExtension("posix-rename@openssh.com")
	p.logger.Debug("sftp connected", "provider", p.name, "addr", p.addr, "conn", id)
	return &conn{id: id, nc: ac, ssh: client, sftp: sc2, posixRename: posix, dead: make(chan struct{})}, nil
}

// run calls fn, which makes requests on c, under a watchdog: if no byte
// arrives on c for Timeout while fn runs, the connection is closed, which
// fails fn and every other call on c, and run returns a *stallError. If
// ctx ends first, run returns ctx.Err() at once and leaves fn to the
// watchdog; fn must then not touch memory the caller goes on to use.
func (p *Provider) run(ctx context.Context, c *conn, op string, fn func() error) error {
	return p.runUndo(ctx, c, op, fn, nil)
}

// runUndo is run, with undo called if fn succeeds after run gave up on it
// because ctx ended: it releases what fn acquired (an open handle).
func (p *Provider) runUndo(ctx context.Context, c *conn, op string, fn func() error, undo func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w := &watchdog{p: p, c: c, start: time.Now()}
	var mu sync.Mutex
	finished, abandoned := false, false
	done := make(chan error, 1)
	if !p.spawn(func() {
		w.arm()
		err := fn()
		if w.stop() {
			err = &stallError{op: op, timeout: p.cfg.Timeout}
		}
		mu.Lock()
		finished = true
		gone := abandoned
		mu.Unlock()
		if gone && err == nil && undo != nil {
			undo()
		}
		done <- err
	}) {
		return errClosed
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		if finished {
			return <-done
		}
		abandoned = true
		return ctx.Err()
	}
}

type watchdog struct {
	p     *Provider
	c     *conn
	start time.Time

	mu      sync.Mutex
	t       *time.Timer
	stopped bool
	fired   bool
}

func (w *watchdog) arm() {
	w.mu.Lock()
	w.t = time.AfterFunc(w.p.cfg.Timeout, w.check)
	w.mu.Unlock()
}

// check kills the connection if it has been silent for Timeout since the
// call began, and otherwise looks again when that could next be true.
func (w *watchdog) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	last := time.Unix(0, w.c.nc.last.Load())
	if last.Before(w.start) {
		last = w.start
	}
	if idle := time.Since(last); idle < w.p.cfg.Timeout {
		w.t.Reset(w.p.cfg.Timeout - idle)
		return
	}
	w.fired = true
	w.p.logger.Warn("sftp server stopped answering; closing the connection",
		"provider", w.p.name, "addr", w.p.addr, "conn", w.c.id, "timeout", w.p.cfg.Timeout)
	w.c.kill()
}

// stop disarms the watchdog and reports whether it had fired.
func (w *watchdog) stop() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.t.Stop()
	return w.fired
}

// hostKeyAlgorithms lists the key algorithms known_hosts holds for addr, so
// the handshake asks for a key it can check rather than the server's first
// choice.
func hostKeyAlgorithms(cb ssh.HostKeyCallback, addr string) []string {
	probe, err := ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))
	if err != nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if err := cb(addr, &net.TCPAddr{IP: net.IPv4zero}, probe); !errors.As(err, &ke) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, k := range ke.Want {
		typ := k.Key.Type()
		names := []string{typ}
		if typ == ssh.KeyAlgoRSA {
			names = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		}
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				algos = append(algos, n)
			}
		}
	}
	return algos
}
