package webdav

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/datagate/datagate/views"
	"github.com/datagate/datagate/views/audittest"
)

// TestAuditAndRequestIDs: a PUT is recorded with the user, the address and
// the request id the client sent, which is echoed and on the request's log
// lines; a failed login is recorded without its password.
func TestAuditAndRequestIDs(t *testing.T) {
	audit, logs := &audittest.Log{}, &audittest.Log{}
	e := newEnv(t, func(o *Options) {
		// Writes are recorded by the Trees, failed logins by the server:
		// both through the set's logger, as cmd/datagate wires them.
		o.Views.SetAudit(audit.JSON())
		o.Logger = slog.New(views.LogHandler(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	})
	_, h := e.want(t, http.StatusCreated, req{method: "PUT", path: "/files/a.txt", body: "hello", hdr: map[string]string{"X-Request-Id": "put-1"}})
	if h.Get("X-Request-Id") != "put-1" {
		t.Fatalf("request id not echoed: %q", h.Get("X-Request-Id"))
	}
	// A refused request logs its id (the DELETE of a read-only view's file
	// is logged at debug by x/net/webdav's Logger).
	_, _, h = e.do(t, req{method: "DELETE", path: "/ro/nothing", hdr: map[string]string{"X-Request-Id": "bad id with spaces"}})
	rid := h.Get("X-Request-Id")
	if rid == "" || strings.Contains(rid, " ") {
		t.Fatalf("made-up request id %q", rid)
	}

	const wrong = "Tr0ub4dor&3-wrong"
	hr, _ := http.NewRequestWithContext(ctxT(t), "PUT", e.ts.URL+"/files/b.txt", strings.NewReader("x"))
	hr.SetBasicAuth("alice", wrong)
	hr.Header.Set("X-Request-Id", "login-1")
	resp, err := e.ts.Client().Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("X-Request-Id") != "login-1" {
		t.Fatalf("bad login: %d, id %q", resp.StatusCode, resp.Header.Get("X-Request-Id"))
	}

	a := audit.String()
	for _, want := range []string{
		`"op":"create","user":"alice","view":"files","path":"/files/a.txt"`,
		`"remote":"127.0.0.1","frontend":"webdav","request_id":"put-1"`,
		`"op":"login","result":"denied","user":"alice","method":"password"`,
		`"request_id":"login-1"`,
	} {
		if !strings.Contains(a, want) {
			t.Errorf("audit lacks %s:\n%s", want, a)
		}
	}
	l := logs.String()
	if !strings.Contains(l, "request_id="+rid) || !strings.Contains(l, "failed login") || !strings.Contains(l, "request_id=login-1") {
		t.Errorf("log lines lack request ids:\n%s", l)
	}
	for _, secret := range []string{wrong, password} {
		if strings.Contains(a, secret) || strings.Contains(l, secret) {
			t.Errorf("a password is logged:\n%s\n%s", a, l)
		}
	}
}
