// Package sftptest runs an in-process SSH server with the sftp subsystem,
// confined to a directory, for tests of SFTP clients. It accepts password
// and public-key authentication, and can be told to stop answering (Stall)
// or to drop every connection (Drop) so clients' timeouts and reconnects can
// be tested.
//
// Lock order: Server.mu only; it is never held while doing I/O.
package sftptest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Server is a running SSH/SFTP server on 127.0.0.1. Its exported fields are
// set by NewServer and must not be changed.
type Server struct {
	Addr           string        // host:port it listens on
	User           string        // the one accepted user name, "feed"
	Password       string        // the accepted password
	ClientKeyPEM   []byte        // OpenSSH PEM of an unencrypted ed25519 key it accepts
	HostKey        ssh.PublicKey // the server's host key
	KnownHostsLine string        // a known_hosts line for Addr and HostKey

	// immutable after NewServer
	t         testing.TB
	root      *os.Root
	ln        net.Listener
	config    *ssh.ServerConfig
	clientPub ssh.PublicKey
	done      chan struct{} // closed by Close
	wg        sync.WaitGroup

	// guarded by mu
	mu            sync.Mutex
	conns         map[*serverConn]struct{}
	closed        bool
	stalled       bool
	resume        chan struct{} // closed when a stall ends
	noPosixRename bool
	writeErr      error
}

// serverConn is one accepted TCP connection.
type serverConn struct {
	net.Conn
	once sync.Once
	gone chan struct{} // closed when the connection is closed
}

func (c *serverConn) close() {
	c.once.Do(func() {
		close(c.gone)
		c.Conn.Close()
	})
}

// NewServer starts a server whose sftp subsystem serves the directory root.
// Client paths are resolved against root ("/" is root) and cannot leave it,
// not even through symbolic links. The server stops when the test ends.
func NewServer(t testing.TB, root string) *Server {
	t.Helper()
	r, err := os.OpenRoot(root)
	if err != nil {
		t.Fatalf("sftptest: %v", err)
	}
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("sftptest: host key: %v", err)
	}
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatalf("sftptest: host key: %v", err)
	}
	clientPub, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("sftptest: client key: %v", err)
	}
	block, err := ssh.MarshalPrivateKey(clientPriv, "sftptest client")
	if err != nil {
		t.Fatalf("sftptest: client key: %v", err)
	}
	sshClientPub, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		t.Fatalf("sftptest: client key: %v", err)
	}
	pw := make([]byte, 12)
	if _, err := rand.Read(pw); err != nil {
		t.Fatalf("sftptest: password: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sftptest: listen: %v", err)
	}

	s := &Server{
		Addr:         ln.Addr().String(),
		User:         "feed",
		Password:     hex.EncodeToString(pw),
		ClientKeyPEM: pem.EncodeToMemory(block),
		HostKey:      hostSigner.PublicKey(),
		t:            t,
		root:         r,
		ln:           ln,
		clientPub:    sshClientPub,
		done:         make(chan struct{}),
		conns:        make(map[*serverConn]struct{}),
	}
	s.KnownHostsLine = knownhosts.Line([]string{s.Addr}, s.HostKey)
	s.config = &ssh.ServerConfig{
		PasswordCallback:  s.checkPassword,
		PublicKeyCallback: s.checkKey,
	}
	s.config.AddHostKey(hostSigner)

	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.Close)
	return s
}

func (s *Server) checkPassword(md ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
	if md.User() == s.User && string(pw) == s.Password {
		return nil, nil
	}
	return nil, errors.New("sftptest: wrong user or password")
}

func (s *Server) checkKey(md ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	if md.User() == s.User && string(key.Marshal()) == string(s.clientPub.Marshal()) {
		return nil, nil
	}
	return nil, errors.New("sftptest: unknown key")
}

// Close stops the server and closes every connection. It is idempotent and
// registered with t.Cleanup by NewServer.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	conns := s.takeConns()
	s.mu.Unlock()

	s.ln.Close()
	for _, c := range conns {
		c.close()
	}
	s.wg.Wait()
	s.root.Close()
}

// Drop closes every current connection; the server keeps accepting new ones.
func (s *Server) Drop() {
	s.mu.Lock()
	conns := s.takeConns()
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
}

// takeConns empties the connection set. Called with mu held.
func (s *Server) takeConns() []*serverConn {
	conns := make([]*serverConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	clear(s.conns)
	return conns
}

// Stall makes the server stop (true) or resume (false) answering SFTP
// requests on every connection, current and new. The SSH transport stays up,
// so a stalled client sees silence, not an error. Requests received while
// stalled are answered after the stall ends.
func (s *Server) Stall(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on == s.stalled {
		return
	}
	s.stalled = on
	if on {
		s.resume = make(chan struct{})
	} else {
		close(s.resume)
	}
}

// DisablePosixRename makes the server answer the posix-rename@openssh.com
// extension with SSH_FX_OP_UNSUPPORTED, as some servers do, so clients'
// fallback to a plain rename can be tested.
func (s *Server) DisablePosixRename(off bool) {
	s.mu.Lock()
	s.noPosixRename = off
	s.mu.Unlock()
}

func (s *Server) posixRenameDisabled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.noPosixRename
}

// waitUnstalled blocks while the server is stalled, until the connection
// goes or the server closes.
func (s *Server) waitUnstalled(gone <-chan struct{}) error {
	s.mu.Lock()
	stalled, resume := s.stalled, s.resume
	s.mu.Unlock()
	if !stalled {
		return nil
	}
	select {
	case <-resume:
		return nil
	case <-gone:
		return net.ErrClosed
	case <-s.done:
		return net.ErrClosed
	}
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return // the listener was closed
		}
		c := &serverConn{Conn: nc, gone: make(chan struct{})}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

func (s *Server) serve(c *serverConn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.close()
	}()
	// A client that never finishes its handshake must not hold Close up.
	c.SetDeadline(time.Now().Add(30 * time.Second))
	sc, chans, reqs, err := ssh.NewServerConn(c.Conn, s.config)
	if err != nil {
		return
	}
	defer sc.Close()
	c.SetDeadline(time.Time{})

	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { ssh.DiscardRequests(reqs) })
	for nch := range chans {
		if nch.ChannelType() != "session" {
			nch.Reject(ssh.UnknownChannelType, "only session channels")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			continue
		}
		wg.Go(func() { s.session(c, ch, creqs) })
	}
}

// session serves one session channel: only the sftp subsystem is offered.
func (s *Server) session(c *serverConn, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	started := false
	for req := range reqs {
		ok := !started && req.Type == "subsystem" && len(req.Payload) >= 4 && string(req.Payload[4:]) == "sftp"
		if req.WantReply {
			req.Reply(ok, nil)
		}
		if !ok {
			continue
		}
		started = true
		wg.Go(func() {
			gated := &gatedChannel{Channel: ch, s: s, gone: c.gone}
			rs := pkgsftp.NewRequestServer(gated, s.handlers())
			rs.Serve()
			rs.Close()
			ch.Close()
		})
	}
}

// gatedChannel holds back the requests it reads while the server is
// stalled. It gates after reading so that a read already waiting when the
// stall begins cannot slip a request through.
type gatedChannel struct {
	ssh.Channel
	s    *Server
	gone <-chan struct{}
}

func (g *gatedChannel) Read(p []byte) (int, error) {
	n, err := g.Channel.Read(p)
	if werr := g.s.waitUnstalled(g.gone); werr != nil {
		return 0, werr
	}
	return n, err
}

var _ io.ReadWriteCloser = (*gatedChannel)(nil)
