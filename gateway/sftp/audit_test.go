package sftp

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"
	gossh "golang.org/x/crypto/ssh"

	"github.com/datagate/datagate/views/audittest"
)

// TestAuditSessionsAndFailedLogins: an upload and a rename over pkg/sftp
// are recorded with the user, address and the connection's id (also on
// the session's log lines); a wrong password is recorded at once, a
// refused key when its connection gives up, and a key refused before
// another is accepted not at all.
func TestAuditSessionsAndFailedLogins(t *testing.T) {
	audit, logs := &audittest.Log{}, &audittest.Log{}
	e := newTestEnv(t, func(o *Options) {
		o.PenaltyFailures = 100
		o.Audit = audit.JSON()
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	e.set.SetAudit(audit.JSON())
	c, err := e.dial("alice", gossh.PublicKeys(e.other, e.key))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := pkgsftp.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	f, err := sc.Create("/by-date/2026-01-02/obs/a.txt")
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("hello"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sc.Rename("/by-date/2026-01-02/obs/a.txt", "/by-date/2026-01-02/obs/b.txt"); err != nil {
		t.Fatal(err)
	}
	sc.Close()
	c.Close()

	const wrong = "hunter2-not-it"
	if c, err := e.dial("bob", gossh.Password(wrong)); err == nil {
		c.Close()
		t.Fatal("wrong password logged in")
	}
	if c, err := e.dial("alice", gossh.PublicKeys(e.other)); err == nil {
		c.Close()
		t.Fatal("wrong key logged in")
	}

	var a string
	deadline := time.Now().Add(10 * time.Second)
	for {
		a = audit.String()
		if strings.Contains(a, `"method":"publickey"`) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{
		`"op":"create","user":"alice","view":"by-date","path":"/by-date/2026-01-02/obs/a.txt"`,
		`"op":"rename","user":"alice","view":"by-date","path":"/by-date/2026-01-02/obs/a.txt","to":"/by-date/2026-01-02/obs/b.txt"`,
		`"remote":"127.0.0.1","frontend":"sftp"`,
		`"op":"login","result":"denied","user":"bob","method":"password"`,
		`"op":"login","result":"denied","user":"alice","method":"publickey"`,
	} {
		if !strings.Contains(a, want) {
			t.Errorf("audit lacks %s:\n%s", want, a)
		}
	}
	if n := strings.Count(a, `"op":"login"`); n != 2 {
		t.Errorf("%d failed logins recorded, want 2:\n%s", n, a)
	}
	// The session's writes and its log lines share the connection's id.
	i := strings.Index(a, `"request_id":"`)
	if i < 0 {
		t.Fatalf("no request id:\n%s", a)
	}
	id := a[i+len(`"request_id":"`):]
	id = id[:strings.IndexByte(id, '"')]
	if id == "" || !strings.Contains(logs.String(), "session="+id) {
		t.Errorf("session id %q not on the log lines:\n%s", id, logs)
	}
	if strings.Contains(a, wrong) || strings.Contains(logs.String(), wrong) || strings.Contains(a, testPassword) {
		t.Errorf("a password is logged")
	}
}
