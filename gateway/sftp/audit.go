package sftp

import (
	"context"

	"github.com/gliderlabs/ssh"

	"github.com/datagate/datagate/views"
)

// sessionID is the id of sess's SSH connection, made when it connected:
// the sessions of one connection and its failed logins share it in the
// logs and the audit.
func sessionID(sess ssh.Session) string { return connID(sess.Context()) }

// connID is the id of ctx's connection.
func connID(ctx ssh.Context) string {
	if c := connOf(ctx); c != nil {
		return c.id
	}
	return ""
}

// sessionTree is the user's Tree whose writes are recorded as made over
// sess through frontend (sftp or scp): pkg/sftp gives its handlers
// contexts of its own, so the actor rides on the Tree, not the context.
func (s *Server) sessionTree(sess ssh.Session, frontend string) *views.Tree {
	a := views.Actor{User: sess.User(), Remote: hostOf(sess.RemoteAddr()), Frontend: frontend, RequestID: sessionID(sess)}
	return s.opts.Tree(sess.User()).WithActor(func(context.Context) views.Actor { return a })
}

// auditFailedLogin records a refused password (never the password).
func (s *Server) auditFailedLogin(c *conn, user, method string) {
	a := views.Actor{User: user, Frontend: "sftp"}
	if c != nil {
		a.Remote, a.RequestID = c.addr, c.id
	}
	views.AuditAuthFailure(s.opts.Audit, a, method, "wrong user name or "+method)
}

// auditRefusedKey records, when a connection that tried to log in closes
// without getting in, the public key refused last, if any: a key refused
// before another is accepted is no failure, so keys are judged at the
// end. Passwords were recorded as they failed.
func (c *conn) auditRefusedKey() {
	if u := c.refused.Load(); u != nil {
		c.s.auditFailedLogin(c, *u, "publickey")
	}
}
