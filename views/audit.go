package views

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sort"
	"time"

	"github.com/datagate/datagate/fs"
)

// Actor is who makes a request and through what: it rides on the
// request's context from the front-end down to the Tree, which records it
// in the audit log with every write. It holds identities, never a secret.
type Actor struct {
	User      string // the authenticated user ("" before authentication)
	Remote    string // the client's address; for FUSE, "pid N" of the caller
	Frontend  string // webdav, s3, sftp, scp, fuse, admin
	RequestID string // the HTTP request's id, the SSH session's, the FUSE mount's
}

type actorKey struct{}

// WithActor returns ctx carrying a.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor ctx carries, if any.
func ActorFrom(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	return a, ok
}

// WithUser returns ctx whose actor (possibly empty) has user as its User:
// what a front-end does once a request is authenticated.
func WithUser(ctx context.Context, user string) context.Context {
	a, _ := ActorFrom(ctx)
	a.User = user
	return WithActor(ctx, a)
}

// MaxRequestID bounds a request id taken from a client.
const MaxRequestID = 64

// SaneRequestID tells whether id, sent by a client (X-Request-Id), may be
// used as the request's id: 1 to MaxRequestID bytes of [A-Za-z0-9-_.],
// so it cannot forge log lines or bloat them.
func SaneRequestID(id string) bool {
	if id == "" || len(id) > MaxRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// NewRequestID returns a short random id (16 hex digits): unique enough
// to find one request's lines among a day's.
func NewRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// LogHandler wraps h so that every record logged with a context carrying
// an Actor with a request id gets a request_id attribute: log with the
// *Context methods (InfoContext...) and the request's context, and its
// lines can be told from other requests'.
func LogHandler(h slog.Handler) slog.Handler { return ctxHandler{h} }

type ctxHandler struct{ slog.Handler }

func (h ctxHandler) Handle(ctx context.Context, r slog.Record) error {
	if a, ok := ActorFrom(ctx); ok && a.RequestID != "" && !hasAttr(r, "request_id") {
		r = r.Clone()
		r.AddAttrs(slog.String("request_id", a.RequestID))
	}
	return h.Handler.Handle(ctx, r)
}

// hasAttr tells whether r has a top-level attribute key (an audit record
// logged with its request's context names its request id itself).
func hasAttr(r slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == key
		return !found
	})
	return found
}

func (h ctxHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return ctxHandler{h.Handler.WithAttrs(as)}
}

func (h ctxHandler) WithGroup(name string) slog.Handler {
	return ctxHandler{h.Handler.WithGroup(name)}
}

// SetAudit sets the logger that gets one record per write made through
// the set's Trees, and the front-ends' authentication failures (see
// Audit). nil records nothing.
func (s *Set) SetAudit(l *slog.Logger) { s.audit.Store(l) }

// Audit returns the audit logger, for the front-ends' authentication
// failures (AuditAuthFailure); a discarding one when none is set.
func (s *Set) Audit() *slog.Logger {
	if l := s.audit.Load(); l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}

// AuditAuthFailure records a failed authentication in audit (nil: none):
// a.User is the user name claimed (may be empty), method how (password,
// publickey, sigv4, bearer), reason a short why. Never pass a secret.
func AuditAuthFailure(audit *slog.Logger, a Actor, method, reason string) {
	if audit == nil {
		return
	}
	audit.LogAttrs(context.Background(), slog.LevelWarn, "audit",
		slog.String("op", "login"), slog.String("result", "denied"),
		slog.String("user", a.User), slog.String("method", method), slog.String("reason", reason),
		slog.String("remote", a.Remote), slog.String("frontend", a.Frontend), slog.String("request_id", a.RequestID))
}

// WithActor returns a copy of t whose writes are recorded as done by
// actor(ctx) when ctx carries no Actor: for front-ends whose protocol
// library gives contexts of its own (an SFTP session, a FUSE mount).
// A nil t gives nil.
func (t *Tree) WithActor(actor func(ctx context.Context) Actor) *Tree {
	if t == nil {
		return nil
	}
	c := *t
	c.actor = actor
	return &c
}

// auditRec is one write being recorded: begun on entry to a Tree method
// and logged by its deferred end with the method's error.
type auditRec struct {
	t     *Tree
	log   *slog.Logger
	ctx   context.Context
	start time.Time
	op    string
	path  string
	view  string // "": the view of path
	attrs []slog.Attr
}

// audited begins the record of write op on p; nil (whose methods do
// nothing) when no audit logger is set.
func (t *Tree) audited(ctx context.Context, op, p string) *auditRec {
	if t.set == nil {
		return nil
	}
	l := t.set.audit.Load()
	if l == nil {
		return nil
	}
	return &auditRec{t: t, log: l, ctx: ctx, start: time.Now(), op: op, path: p}
}

// auditedView begins the record of op on view name (S3 buckets).
func (t *Tree) auditedView(ctx context.Context, op, name string) *auditRec {
	r := t.audited(ctx, op, name)
	if r != nil {
		r.view = name
	}
	return r
}

// add adds attributes (the object id, the target...) once known.
func (r *auditRec) add(as ...slog.Attr) {
	if r != nil {
		r.attrs = append(r.attrs, as...)
	}
}

// id adds the ids of the objects written.
func (r *auditRec) id(ids ...fs.ID) {
	if r == nil || len(ids) == 0 {
		return
	}
	if len(ids) == 1 {
		r.add(slog.String("id", ids[0].String()))
		return
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.String()
	}
	r.add(slog.Any("ids", s))
}

// end logs the record with the outcome *errp (deferred, so it sees the
// method's final error).
func (r *auditRec) end(errp *error) {
	if r == nil {
		return
	}
	a, ok := ActorFrom(r.ctx)
	if !ok && r.t.actor != nil {
		a = r.t.actor(r.ctx)
	}
	lvl := slog.LevelInfo
	as := make([]slog.Attr, 0, 12+len(r.attrs))
	as = append(as, slog.String("op", r.op), slog.String("user", r.t.user))
	if r.view != "" {
		as = append(as, slog.String("view", r.view))
	} else if l, err := r.t.resolve(r.op, r.path); err == nil && l.view != nil {
		as = append(as, slog.String("view", l.view.name))
	}
	as = append(as, slog.String("path", r.path))
	as = append(as, r.attrs...)
	if err := *errp; err != nil {
		lvl = slog.LevelWarn
		as = append(as, slog.String("result", "error"), slog.String("kind", fs.KindOf(err).String()), slog.String("error", err.Error()))
	} else {
		as = append(as, slog.String("result", "ok"))
	}
	as = append(as, slog.String("remote", a.Remote), slog.String("frontend", a.Frontend), slog.String("request_id", a.RequestID),
		slog.Duration("took", time.Since(r.start)))
	// Not r.ctx: the audit record carries its request id itself, and a
	// cancelled request is still recorded.
	r.log.LogAttrs(context.Background(), lvl, "audit", as...)
}

// metaKeys adds the names of the metadata keys set and removed (not their
// values: a record stays small whatever the metadata).
func (r *auditRec) metaKeys(set map[string]string, del []string) {
	if r == nil {
		return
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > 0 {
		r.add(slog.Any("set", keys))
	}
	if len(del) > 0 {
		r.add(slog.Any("del", del))
	}
}
