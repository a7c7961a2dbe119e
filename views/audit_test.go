package views

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/views/audittest"
)

// auditLog collects JSON audit records.
type auditLog struct{ audittest.Log }

func (a *auditLog) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(a.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func newAudited(t *testing.T) (*env, *auditLog) {
	e := newEnv(t, twoViews)
	al := &auditLog{}
	e.set.SetAudit(al.JSON())
	return e, al
}

func TestAuditRecordsEveryWrite(t *testing.T) {
	e, al := newAudited(t)
	ctx := WithActor(ctxT(t), Actor{User: "alice", Remote: "192.0.2.7", Frontend: "webdav", RequestID: "req-1"})
	alice := e.tree("alice", map[string]Rights{"by-date": Read | Write | Delete, "by-type": Read})
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	info, err := alice.Create(ctx, "by-date/2026-01-02/obs/a.txt", strings.NewReader("hello"), CreateOptions{Size: 5})
	must("create", err)
	_, err = alice.SetMeta(ctx, "by-date/2026-01-02/obs/a.txt", map[string]string{"param": "t2m"}, nil)
	must("setmeta", err)
	must("chtimes", alice.Chtimes(ctx, "by-date/2026-01-02/obs/a.txt", time.Unix(1700000000, 0)))
	// Refused writes are recorded too, with why.
	if err := alice.Remove(ctx, "by-type/obs/2026-01-02/a.txt"); err == nil {
		t.Fatal("remove without the right succeeded")
	}
	must("rename", alice.Rename(ctx, "by-date/2026-01-02/obs/a.txt", "by-date/2026-01-03/obs/b.txt"))
	must("mkdir", alice.Mkdir(ctx, "by-date/2026-01-04"))
	must("rmdir", alice.Rmdir(ctx, "by-date/2026-01-04"))
	must("remove", alice.Remove(ctx, "by-date/2026-01-03/obs/b.txt"))
	// Reads are not recorded.
	if _, err := alice.Stat(ctx, "by-date"); err != nil {
		t.Fatal(err)
	}

	recs := al.records(t)
	var ops []string
	for _, r := range recs {
		ops = append(ops, r["op"].(string))
		if r["msg"] != "audit" || r["user"] != "alice" || r["remote"] != "192.0.2.7" || r["frontend"] != "webdav" || r["request_id"] != "req-1" {
			t.Errorf("record lacks who/where: %v", r)
		}
		if r["view"] != "by-date" && r["view"] != "by-type" {
			t.Errorf("record lacks the view: %v", r)
		}
	}
	want := "create setmeta chtimes remove rename mkdir rmdir remove"
	if got := strings.Join(ops, " "); got != want {
		t.Fatalf("ops %q, want %q", got, want)
	}
	create := recs[0]
	if create["path"] != "by-date/2026-01-02/obs/a.txt" || create["result"] != "ok" || create["size"] != 5.0 {
		t.Errorf("create record: %v", create)
	}
	if id, _ := create["id"].(string); id == "" || id != info.ID().String() {
		t.Errorf("create record id %v, want %v", create["id"], info.ID())
	}
	if recs[1]["set"].([]any)[0] != "param" {
		t.Errorf("setmeta record: %v", recs[1])
	}
	if recs[4]["to"] != "by-date/2026-01-03/obs/b.txt" || recs[4]["id"] != create["id"] {
		t.Errorf("rename record: %v", recs[4])
	}
	denied := recs[3]
	if denied["result"] != "error" || denied["kind"] != "permission denied" || denied["level"] != "WARN" {
		t.Errorf("refused remove record: %v", denied)
	}
}

func TestAuditActorOfTheTree(t *testing.T) {
	e, al := newAudited(t)
	calls := 0
	bob := e.tree("bob", map[string]Rights{"by-date": All}).WithActor(func(context.Context) Actor {
		calls++
		return Actor{Remote: "pid 42", Frontend: "fuse", RequestID: "m-1"}
	})
	if err := bob.Mkdir(ctxT(t), "by-date/2026-01-05"); err != nil {
		t.Fatal(err)
	}
	recs := al.records(t)
	if len(recs) != 1 || recs[0]["remote"] != "pid 42" || recs[0]["frontend"] != "fuse" || recs[0]["user"] != "bob" || recs[0]["request_id"] != "m-1" {
		t.Fatalf("records %v", recs)
	}
	// The context's actor wins over the tree's.
	ctx := WithActor(ctxT(t), Actor{Frontend: "sftp", RequestID: "s-9"})
	if err := bob.Rmdir(ctx, "by-date/2026-01-05"); err != nil {
		t.Fatal(err)
	}
	if recs = al.records(t); len(recs) != 2 || recs[1]["frontend"] != "sftp" || calls != 1 {
		t.Fatalf("records %v (actor func called %d times)", recs, calls)
	}
}

func TestAuditOff(t *testing.T) {
	e := newEnv(t, twoViews)
	tr := e.tree("alice", map[string]Rights{"by-date": All})
	// No audit logger: writes work and Audit() discards.
	if err := tr.Mkdir(ctxT(t), "by-date/x"); err != nil {
		t.Fatal(err)
	}
	AuditAuthFailure(e.set.Audit(), Actor{}, "password", "test")
	AuditAuthFailure(nil, Actor{}, "password", "test")
}

func TestAuditAuthFailure(t *testing.T) {
	al := &auditLog{}
	AuditAuthFailure(al.JSON(), Actor{User: "eve", Remote: "198.51.100.1", Frontend: "s3", RequestID: "r"}, "sigv4", "SignatureDoesNotMatch")
	recs := al.records(t)
	if len(recs) != 1 {
		t.Fatal(recs)
	}
	r := recs[0]
	if r["op"] != "login" || r["result"] != "denied" || r["user"] != "eve" || r["remote"] != "198.51.100.1" || r["method"] != "sigv4" || r["frontend"] != "s3" {
		t.Fatalf("record %v", r)
	}
}

func TestSaneRequestID(t *testing.T) {
	for id, ok := range map[string]bool{
		"abc-123_X.y":            true,
		"":                       false,
		strings.Repeat("a", 64):  true,
		strings.Repeat("a", 65):  false,
		"a b":                    false,
		"a\nlevel=ERROR msg=x":   false,
		`a"b`:                    false,
		"é":                      false,
		"0123456789abcdef-0a1b2": true,
	} {
		if SaneRequestID(id) != ok {
			t.Errorf("SaneRequestID(%q) = %v", id, !ok)
		}
	}
	a, b := NewRequestID(), NewRequestID()
	if a == b || !SaneRequestID(a) || len(a) != 16 {
		t.Fatalf("NewRequestID: %q %q", a, b)
	}
}

func TestLogHandlerAddsRequestID(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewTextHandler(&buf, nil))).With("frontend", "webdav")
	ctx := WithUser(WithActor(context.Background(), Actor{RequestID: "rid-7"}), "alice")
	if a, _ := ActorFrom(ctx); a.User != "alice" || a.RequestID != "rid-7" {
		t.Fatalf("actor %+v", a)
	}
	log.InfoContext(ctx, "one")
	log.Info("two")
	log.InfoContext(ctx, "three", "request_id", "own")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 || strings.Count(lines[2], "request_id") != 1 || !strings.Contains(lines[0], "request_id=rid-7") || !strings.Contains(lines[0], "frontend=webdav") || strings.Contains(lines[1], "request_id") {
		t.Fatalf("lines:\n%s", buf.String())
	}
}

// BenchmarkAudit is the cost of the audit record on a cheap write: the
// Chtimes of one file (an index transaction) without and with a record,
// written as a JSON line to io.Discard; and of the record alone.
func BenchmarkAudit(b *testing.B) {
	b.Run("record", func(b *testing.B) {
		e := newEnv(b, twoViews)
		e.set.SetAudit(slog.New(slog.NewJSONHandler(io.Discard, nil)))
		tr := e.tree("alice", map[string]Rights{"by-date": All, "by-type": Read})
		ctx := WithActor(context.Background(), Actor{User: "alice", Remote: "192.0.2.7", Frontend: "webdav", RequestID: "0123456789abcdef"})
		var id fs.ID
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			var err error
			rec := tr.audited(ctx, "create", "by-date/2026-01-02/obs/a.txt")
			rec.id(id)
			rec.end(&err)
		}
	})
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run("chtimes/"+name, func(b *testing.B) {
			e := newEnv(b, twoViews)
			if on {
				e.set.SetAudit(slog.New(slog.NewJSONHandler(io.Discard, nil)))
			}
			tr := e.tree("alice", map[string]Rights{"by-date": All, "by-type": Read})
			ctx := WithActor(context.Background(), Actor{User: "alice", Remote: "192.0.2.7", Frontend: "webdav", RequestID: "0123456789abcdef"})
			const p = "by-date/2026-01-02/obs/a.txt"
			if _, err := tr.Create(ctx, p, strings.NewReader("x"), CreateOptions{Size: 1}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := tr.Chtimes(ctx, p, time.Unix(int64(1700000000+i), 0)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
