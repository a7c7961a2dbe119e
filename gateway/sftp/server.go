package sftp

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gliderlabs/ssh"
	"golang.org/x/crypto/bcrypt"
	gossh "golang.org/x/crypto/ssh"

	"github.com/datagate/datagate/gateway/httpserve"
	"github.com/datagate/datagate/views"
)

// Account is what the server needs to authenticate one user.
type Account struct {
	PasswordHash   []byte            // bcrypt; nil: no password login
	AuthorizedKeys []gossh.PublicKey // nil: no public-key login
}

// Options configure New. Zero limits take the defaults given.
type Options struct {
	// Dir is the data directory: host keys are kept in it, uploads are
	// spooled under Dir/spool/sftp. Required.
	Dir string
	// Account returns a user's credentials; false for an unknown user.
	// Required.
	Account func(user string) (Account, bool)
	// Tree returns the file system of an authenticated user. Required.
	Tree   func(user string) *views.Tree
	Logger *slog.Logger
	// Audit gets failed logins (views.AuditAuthFailure); nil: none.
	Audit *slog.Logger
	// Metrics, if set, is told of sessions, requests and bytes
	// (metrics.go); nil: none.
	Metrics Metrics

	MaxAuthTries       int           // per connection; default 6
	LoginGraceTime     time.Duration // from connect to the first session (authenticated); default 30s
	IdleTimeout        time.Duration // no traffic at all; default 15m
	MaxSessionsPerUser int           // sftp/exec sessions at once; default 128
	MaxHandles         int           // open files and directories per SFTP session; default 256
	// PenaltyFailures failed logins from one address make it wait
	// PenaltyTime before it may connect again. Defaults 10 and 30s.
	PenaltyFailures int
	PenaltyTime     time.Duration
	// Ciphers offered; nil: DefaultCiphers.
	Ciphers []string
}

// DefaultCiphers are AES in GCM and CTR modes, which Go runs with the
// CPU's AES instructions. chacha20-poly1305, OpenSSH's first choice, is
// left out: x/crypto has no amd64 assembly for it, and it costs about
// twice the server CPU per byte (1 GiB sftp get: 6.5 s with it, 5.1 s
// with aes128-ctr, 3.5 s with aes128-gcm@openssh.com on the test
// machine). The client's order decides among these: OpenSSH then picks
// aes128-ctr unless told "-c aes128-gcm@openssh.com".
var DefaultCiphers = []string{"aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr"}

// Server is the SSH server. Safe for concurrent use.
type Server struct {
	// immutable after New
	opts      Options
	log       *slog.Logger
	srv       *ssh.Server
	hostKeys  []gossh.Signer
	dummyHash []byte // compared against when there is nothing to compare
	spoolDir  string
	penalty   *penaltyBox
	// Password checks (bcrypt) in flight per address: the penalty counts
	// a failure when its connection closes, so connections made at once
	// were all checked (100 at once: 100 guesses, 6 s of CPU).
	logins  *httpserve.Logins
	started time.Time // the time of what has none (info.ModTime)

	mu sync.Mutex
	// guarded by mu
	sessions map[string]int // per user
	active   int            // all users'
	drained  chan struct{}  // closed when active drops to 0, if waited for
}

// New loads (or on first start generates) the host keys and logs their
// fingerprints, and prepares the server; Serve runs it.
func New(opts Options) (*Server, error) {
	if opts.Dir == "" || opts.Account == nil || opts.Tree == nil {
		return nil, errors.New("sftp: Options.Dir, Account and Tree are required")
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&opts.MaxAuthTries, 6)
	def(&opts.MaxSessionsPerUser, 128)
	def(&opts.MaxHandles, 256)
	def(&opts.PenaltyFailures, 10)
	defd(&opts.LoginGraceTime, 30*time.Second)
	defd(&opts.IdleTimeout, 15*time.Minute)
	defd(&opts.PenaltyTime, 30*time.Second)
	if len(opts.Ciphers) == 0 {
		opts.Ciphers = DefaultCiphers
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("frontend", "sftp")
	keys, created, err := loadHostKeys(opts.Dir)
	if err != nil {
		return nil, err
	}
	for _, p := range created {
		log.Info("generated SSH host key", "file", p)
	}
	for _, k := range keys {
		log.Info("SSH host key", "type", k.PublicKey().Type(), "fingerprint", gossh.FingerprintSHA256(k.PublicKey()))
	}
	spool := filepath.Join(opts.Dir, "spool", "sftp")
	if err := os.MkdirAll(spool, 0o700); err != nil {
		return nil, fmt.Errorf("sftp spool: %w", err)
	}
	cleanSpool(spool, log)
	// The cost of the hashes users have ("datagate passwd" uses the
	// default), so an unknown user costs what a known one does.
	dummy, err := bcrypt.GenerateFromPassword([]byte("no such user"), bcrypt.DefaultCost)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts: opts, log: log, hostKeys: keys, dummyHash: dummy, spoolDir: spool,
		penalty:  newPenaltyBox(opts.PenaltyFailures, opts.PenaltyTime),
		logins:   httpserve.NewLogins(opts.PenaltyFailures),
		started:  time.Now(),
		sessions: map[string]int{},
	}
	s.srv = &ssh.Server{
		Version:          "datagate",
		Handler:          s.exec,
		PasswordHandler:  s.checkPassword,
		PublicKeyHandler: s.checkKey,
		SubsystemHandlers: map[string]ssh.SubsystemHandler{
			"sftp": s.sftpSubsystem,
		},
		ChannelHandlers: map[string]ssh.ChannelHandler{
			"session": s.sessionChannel,
		},
		// No handlers for tcpip-forward, direct-tcpip, x11: refused.
		RequestHandlers:        map[string]ssh.RequestHandler{},
		PtyCallback:            func(ssh.Context, ssh.Pty) bool { return false },
		SessionRequestCallback: s.allowSession,
		ConnCallback:           s.onConnect,
		IdleTimeout:            opts.IdleTimeout,
		ServerConfigCallback: func(ssh.Context) *gossh.ServerConfig {
			return &gossh.ServerConfig{MaxAuthTries: opts.MaxAuthTries, Config: gossh.Config{Ciphers: opts.Ciphers}}
		},
	}
	for _, k := range keys {
		s.srv.AddHostKey(k)
	}
	return s, nil
}

// HostKeys returns the server's public host keys.
func (s *Server) HostKeys() []gossh.PublicKey {
	out := make([]gossh.PublicKey, len(s.hostKeys))
	for i, k := range s.hostKeys {
		out[i] = k.PublicKey()
	}
	return out
}

// Serve accepts connections on l until Shutdown or Close; it then returns
// ssh.ErrServerClosed.
func (s *Server) Serve(l net.Listener) error { return s.srv.Serve(l) }

// Shutdown stops accepting and waits for the connections to end, until
// ctx is done; it then closes the rest. Either way it returns once every
// session handler has finished (so the store may close after it), or
// after 5 more seconds.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	if werr := s.waitSessions(); err == nil {
		err = werr
	}
	return err
}

// Close stops the server and closes every connection at once, then waits
// for the session handlers as Shutdown does.
func (s *Server) Close() error {
	err := s.srv.Close()
	if werr := s.waitSessions(); err == nil {
		err = werr
	}
	return err
}

// waitSessions waits for the session handlers still running, which end
// soon once their connections are closed: an upload in flight is then
// discarded.
func (s *Server) waitSessions() error {
	s.mu.Lock()
	if s.active == 0 {
		s.mu.Unlock()
		return nil
	}
	if s.drained == nil {
		s.drained = make(chan struct{})
	}
	ch := s.drained
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-time.After(5 * time.Second):
		return errors.New("sftp: sessions still running 5s after their connections closed")
	}
}

// ctxKey keys the per-connection state in the ssh.Context.
type ctxKey struct{}

// conn is the state of one connection: authenticated yet, and did it try.
type conn struct {
	net.Conn
	s         *Server
	addr      string
	id        string                 // on log lines and audit records (audit.go)
	refused   atomic.Pointer[string] // user of the last public key refused (audit.go)
	tried     atomic.Bool            // an authentication attempt was made
	authed    atomic.Bool
	closeOnce sync.Once
	grace     *time.Timer
}

func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		c.grace.Stop()
		// A connection that tried and never got in is one failed login,
		// however many keys and passwords it tried (those are bounded by
		// MaxAuthTries).
		if c.tried.Load() && !c.authed.Load() {
			c.s.penalty.fail(c.addr)
			c.auditRefusedKey()
		}
	})
	return c.Conn.Close()
}

// onConnect refuses addresses serving a penalty and arms the login grace
// timer.
func (s *Server) onConnect(ctx ssh.Context, nc net.Conn) net.Conn {
	addr := hostOf(nc.RemoteAddr())
	if until, ok, first := s.penalty.blocked(addr); ok {
		if first {
			s.log.Warn("connections refused: too many failed logins from this address (logged once per penalty)", "addr", addr, "until", until.Format(time.RFC3339))
		}
		return nil
	}
	c := &conn{Conn: nc, s: s, addr: addr, id: views.NewRequestID()}
	c.grace = time.AfterFunc(s.opts.LoginGraceTime, func() {
		if !c.authed.Load() {
			s.log.Info("login grace time over", "addr", addr)
			nc.Close() // the handshake fails; gliderlabs then calls c.Close

		}
	})
	ctx.SetValue(ctxKey{}, c)
	return c
}

// loginKey digests the parts of a login for s.logins: the password
// itself is not kept.
func loginKey(parts ...string) [32]byte {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s", len(p), p)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

func connOf(ctx ssh.Context) *conn {
	c, _ := ctx.Value(ctxKey{}).(*conn)
	return c
}

// checkPassword compares against the user's hash, or a dummy one for an
// unknown user or one without a password, so all failures take the time
// of one bcrypt comparison and give the same answer.
func (s *Server) checkPassword(ctx ssh.Context, pw string) bool {
	c := connOf(ctx)
	if c != nil {
		c.tried.Store(true)
	}
	acc, ok := s.opts.Account(ctx.User())
	hash := acc.PasswordHash
	if !ok || len(hash) == 0 {
		hash = s.dummyHash
	}
	right, admitted := s.logins.Check(hostOf(ctx.RemoteAddr()), loginKey(ctx.User(), string(hash), pw), func() bool {
		return bcrypt.CompareHashAndPassword(hash, []byte(pw)) == nil
	})
	if !admitted {
		s.log.Info("login refused: too many logins at once from this address", "user", ctx.User(), "addr", ctx.RemoteAddr().String(), "method", "password", "session", connID(ctx))
	}
	if !right || !ok || len(acc.PasswordHash) == 0 {
		s.log.Info("login failed", "user", ctx.User(), "addr", ctx.RemoteAddr().String(), "method", "password", "session", connID(ctx))
		s.auditFailedLogin(c, ctx.User(), "password")
		return false
	}
	if c != nil {
		c.authed.Store(true)
	}
	s.log.Info("login", "user", ctx.User(), "addr", ctx.RemoteAddr().String(), "method", "password", "session", connID(ctx))
	return true
}

// checkKey looks the key up among the user's; a refusal (wrong key or
// unknown user alike) costs a bcrypt comparison, as a password does.
// SSH asks once per key offered, before the client proves it holds the
// key; x/crypto/ssh then checks that signature itself.
func (s *Server) checkKey(ctx ssh.Context, key ssh.PublicKey) bool {
	c := connOf(ctx)
	if c != nil {
		c.tried.Store(true)
	}
	acc, ok := s.opts.Account(ctx.User())
	want := key.Marshal()
	found := false
	if ok {
		for _, k := range acc.AuthorizedKeys {
			if subtle.ConstantTimeCompare(k.Marshal(), want) == 1 {
				found = true
			}
		}
	}
	if !found {
		s.logins.Check(hostOf(ctx.RemoteAddr()), loginKey(ctx.User(), "key", string(want)), func() bool {
			bcrypt.CompareHashAndPassword(s.dummyHash, want)
			return false
		})
		s.log.Debug("public key refused", "user", ctx.User(), "addr", ctx.RemoteAddr().String(), "key", gossh.FingerprintSHA256(key))
		if c != nil {
			u := ctx.User()
			c.refused.Store(&u)
		}
		return false
	}
	// Not authenticated yet: the client has still to sign with the key.
	// The first channel (sessionChannel) marks the connection as in.
	return true
}

// sessionChannel runs gliderlabs' session handling on a channel whose
// agent-forwarding requests are refused (gliderlabs would accept them).
func (s *Server) sessionChannel(srv *ssh.Server, sc *gossh.ServerConn, nc gossh.NewChannel, ctx ssh.Context) {
	if c := connOf(ctx); c != nil && !c.authed.Swap(true) {
		// Not a password login (that marks itself): a key's. gliderlabs
		// keeps the last key offered, the one that was accepted.
		fp := ""
		if k, ok := ctx.Value(ssh.ContextKeyPublicKey).(ssh.PublicKey); ok {
			fp = gossh.FingerprintSHA256(k)
		}
		s.log.Info("login", "user", ctx.User(), "addr", ctx.RemoteAddr().String(), "method", "publickey", "key", fp, "session", connID(ctx))
	}
	ssh.DefaultSessionHandler(srv, sc, noAgent{nc}, ctx)
}

type noAgent struct{ gossh.NewChannel }

func (n noAgent) Accept() (gossh.Channel, <-chan *gossh.Request, error) {
	ch, reqs, err := n.NewChannel.Accept()
	if err != nil {
		return ch, reqs, err
	}
	out := make(chan *gossh.Request)
	go func() {
		defer close(out)
		for r := range reqs {
			if r.Type == "auth-agent-req@openssh.com" || r.Type == "x11-req" {
				if r.WantReply {
					r.Reply(false, nil)
				}
				continue
			}
			out <- r
		}
	}()
	return ch, out, nil
}

// allowSession admits sftp and exec sessions within the per-user cap and
// refuses shells (and any other subsystem). An admitted session holds a
// slot until its handler ends (release).
func (s *Server) allowSession(sess ssh.Session, kind string) bool {
	switch kind {
	case "subsystem":
		if sess.Subsystem() != "sftp" {
			return false
		}
	case "exec":
	default:
		s.log.Info("refused session request", "user", sess.User(), "request", kind)
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[sess.User()] >= s.opts.MaxSessionsPerUser {
		s.log.Warn("refused session: too many sessions", "user", sess.User(), "max", s.opts.MaxSessionsPerUser)
		return false
	}
	s.sessions[sess.User()]++
	s.active++
	return true
}

func (s *Server) release(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[user]--; s.sessions[user] <= 0 {
		delete(s.sessions, user)
	}
	if s.active--; s.active == 0 && s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
}

// recoverSession turns a panic in a session into an error exit and one
// log line with the stack.
func (s *Server) recoverSession(sess ssh.Session) {
	if v := recover(); v != nil {
		s.log.Error("panic in SSH session", "user", sess.User(), "panic", v, "stack", string(debug.Stack()))
		fmt.Fprintln(sess.Stderr(), "datagate: internal error")
		sess.Exit(1)
	}
}

// sessionCount is the number of sessions user has open.
func (s *Server) sessionCount(user string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[user]
}
