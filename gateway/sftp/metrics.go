package sftp

import (
	"errors"
	"io"
	"time"

	"github.com/gliderlabs/ssh"
	pkgsftp "github.com/pkg/sftp"

	"github.com/datagate/datagate/fs"
)

// Metrics receives what the server does, for monitoring
// (gateway/metrics implements it). Its methods are called from many
// goroutines at once and must not block.
type Metrics interface {
	// Session counts a session as active until end is called (once):
	// kind is "sftp" or the exec command ("scp", "md5sum", ...).
	Session(kind string) (end func())
	// Request records one SFTP request the handlers served (op is the
	// handler's: open, read, write, Setstat, ...) or one exec command,
	// how long it took and, when it failed, the kind of its error.
	Request(op string, d time.Duration, failed bool, kind fs.Kind)
	// Received and Sent count a session's payload bytes (SFTP packets,
	// scp's stream), from and to the client.
	Received(n int)
	Sent(n int)
}

// observe reports one handler call; guard calls it with the error as the
// handler returned it, before it becomes a status. io.EOF ends a read or
// a listing: not a failure.
func (h *handlers) observe(op string, start time.Time, err error) {
	m := h.s.opts.Metrics
	if m == nil {
		return
	}
	if err == nil || errors.Is(err, io.EOF) {
		m.Request(op, time.Since(start), false, fs.Other)
		return
	}
	m.Request(op, time.Since(start), true, errKind(err))
}

// errKind is the kind of a handler's error: a status the front-end chose
// itself is read back from its code.
func errKind(err error) fs.Kind {
	var se *statusError
	if !errors.As(err, &se) {
		return fs.KindOf(err)
	}
	switch {
	case errors.Is(se.code, pkgsftp.ErrSSHFxNoSuchFile):
		return fs.NotExist
	case errors.Is(se.code, pkgsftp.ErrSSHFxPermissionDenied):
		return fs.Permission
	case errors.Is(se.code, pkgsftp.ErrSSHFxOpUnsupported):
		return fs.Unsupported
	case errors.Is(se.code, pkgsftp.ErrSSHFxBadMessage):
		return fs.Invalid
	}
	return fs.Other
}

// execKinds are the exec commands counted by name; others are "other".
var execKinds = map[string]bool{"scp": true, "md5sum": true, "sha256sum": true}

// metered returns sess counting its payload, as an active session of
// kind (for exec: its command) until end is called. An exec session's
// exit status is also recorded as one request. Without Metrics it is
// sess itself.
func (s *Server) metered(sess ssh.Session, kind string) (_ ssh.Session, end func()) {
	m := s.opts.Metrics
	if m == nil {
		return sess, func() {}
	}
	exec := kind == ""
	if exec {
		kind = "other"
		if args := sess.Command(); len(args) > 0 && execKinds[args[0]] {
			kind = args[0]
		}
	}
	ms := &meteredSession{Session: sess, m: m, start: time.Now()}
	if exec {
		ms.op = kind
	}
	return ms, m.Session(kind)
}

// meteredSession counts what passes through a session.
type meteredSession struct {
	ssh.Session
	m     Metrics
	op    string // the exec command recorded at Exit; "" for SFTP
	start time.Time
}

func (s *meteredSession) Read(p []byte) (int, error) {
	n, err := s.Session.Read(p)
	s.m.Received(n)
	return n, err
}

func (s *meteredSession) Write(p []byte) (int, error) {
	n, err := s.Session.Write(p)
	s.m.Sent(n)
	return n, err
}

func (s *meteredSession) Exit(code int) error {
	if s.op != "" {
		s.m.Request(s.op, time.Since(s.start), code != 0, fs.Other)
	}
	return s.Session.Exit(code)
}
