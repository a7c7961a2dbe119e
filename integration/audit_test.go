package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/bcrypt"
	gossh "golang.org/x/crypto/ssh"

	"github.com/datagate/datagate/views/audittest"
)

// The secrets of the audit tests: none may appear in any log.
const (
	auditPassword  = "aud1t-Pa55word"
	auditWrongPW   = "not-the-Pa55word"
	auditKey       = "AKIAAUDITALICE"
	auditSecret    = "aud1t-s3-Secret-Key"
	auditWrongKey  = "wr0ng-s3-Secret-Key"
	auditRequestID = "it-put-0001"
)

// auditServer is `datagate serve` run with its own arguments, environment
// and configuration, its standard error kept.
type auditServer struct {
	cmd    *exec.Cmd
	stderr *audittest.Log
	done   chan error
}

// startAuditServer runs serve with cfg and waits for its "datagate
// serving" line, whatever the log format. env replaces DATAGATE_LOG_FORMAT
// ("" removes it).
func startAuditServer(t *testing.T, cfg, logFormatEnv string, args ...string) *auditServer {
	t.Helper()
	p := filepath.Join(t.TempDir(), "audit.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(datagateBin, append([]string{"--config", p}, append(args, "serve")...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATAGATE_LOG_FORMAT=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if logFormatEnv != "" {
		cmd.Env = append(cmd.Env, "DATAGATE_LOG_FORMAT="+logFormatEnv)
	}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	s := &auditServer{cmd: cmd, stderr: &audittest.Log{}, done: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.stderr.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "datagate serving") {
				ready <- struct{}{}
			}
		}
	}()
	go func() { s.done <- cmd.Wait(); pw.Close() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	select {
	case <-ready:
	case err := <-s.done:
		t.Fatalf("serve exited: %v\n%s", err, s.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not start\n%s", s.stderr)
	}
	return s
}

func (s *auditServer) stop(t *testing.T) {
	t.Helper()
	terminate(t, "serve", s.cmd, s.done, s.stderr)
}

// auditRecords reads an audit log of JSON lines.
func auditRecords(t *testing.T, p string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// findRecord returns the first record with every field of want.
func findRecord(recs []map[string]any, want map[string]string) map[string]any {
next:
	for _, r := range recs {
		for k, v := range want {
			if fmt.Sprint(r[k]) != v {
				continue next
			}
		}
		return r
	}
	return nil
}

func davPut(t *testing.T, url, user, pw, id, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("PUT", url, strings.NewReader(body))
	req.SetBasicAuth(user, pw)
	req.Header.Set("X-Request-Id", id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestAuditLog writes and fails to log in through every front-end with
// its real client (net/http for WebDAV, minio-go, pkg/sftp, the kernel
// for a FUSE mount when this machine can mount), then reads the audit log:
// each write and each failure is there with who, what, from where and
// through which front-end; the request id a client sent is echoed and on
// the records and log lines; no password or secret is in any log.
func TestAuditLog(t *testing.T) {
	data, tmp := t.TempDir(), t.TempDir()
	hash, _ := bcrypt.GenerateFromPassword([]byte(auditPassword), bcrypt.MinCost)
	davPort, sftpPort, s3Addr := freePort(t), freePort(t), s3FreePort(t)
	mnt := ""
	if _, err := os.Stat("/dev/fuse"); err == nil && os.Geteuid() == 0 {
		mnt = filepath.Join(tmp, "mnt")
		os.Mkdir(mnt, 0o755)
		t.Cleanup(func() {
			if mounted(t, mnt) {
				syscall.Unmount(mnt, syscall.MNT_DETACH)
			}
		})
	} else {
		t.Log("no FUSE here: the mount's records are not checked")
	}
	cfg := fmt.Sprintf(`data: %s
listen: {admin: '127.0.0.1:0', webdav: '127.0.0.1:%s', sftp: '127.0.0.1:%s', s3: '%s'}
log: {level: debug}
views:
  files: {path: "{path...}"}
users:
  alice:
    password_hash: '%s'
    s3_keys: [{id: %s, secret: %s}]
    views: {files: rwd}
`, data, davPort, sftpPort, s3Addr, hash, auditKey, auditSecret)
	if mnt != "" {
		cfg += fmt.Sprintf("mounts:\n  - {user: alice, path: %s}\n", mnt)
	}
	s := startAuditServer(t, cfg, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// WebDAV: a PUT with the client's request id, and a wrong password.
	dav := "http://127.0.0.1:" + davPort
	resp := davPut(t, dav+"/a.txt", "alice", auditPassword, auditRequestID, "hello")
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("X-Request-Id") != auditRequestID {
		t.Fatalf("PUT: %d, X-Request-Id %q", resp.StatusCode, resp.Header.Get("X-Request-Id"))
	}
	resp = davPut(t, dav+"/b.txt", "alice", auditWrongPW, "it-bad-login", "x")
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("X-Request-Id") != "it-bad-login" {
		t.Fatalf("bad login: %d, X-Request-Id %q", resp.StatusCode, resp.Header.Get("X-Request-Id"))
	}
	// An id that is not sane is replaced by one of the server's.
	resp = davPut(t, dav+"/c.txt", "alice", auditPassword, "bad id\"x", "x")
	if id := resp.Header.Get("X-Request-Id"); id == "" || strings.ContainsAny(id, " \"") {
		t.Fatalf("made-up request id %q", id)
	}

	// S3: minio-go's PUT, and a wrong secret.
	s3c := func(secret string) *minio.Client {
		c, err := minio.New(s3Addr, &minio.Options{Creds: credentials.NewStaticV4(auditKey, secret, ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if _, err := s3c(auditSecret).PutObject(ctx, "files", "s3/a.txt", strings.NewReader("hello"), 5, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c(auditWrongKey).PutObject(ctx, "files", "s3/b.txt", strings.NewReader("x"), 1, minio.PutObjectOptions{}); err == nil {
		t.Fatal("S3 PUT with a wrong secret succeeded")
	}

	// SFTP: an upload and a rename with pkg/sftp, and a wrong password.
	sshCfg := func(pw string) *gossh.ClientConfig {
		return &gossh.ClientConfig{User: "alice", Auth: []gossh.AuthMethod{gossh.Password(pw)}, HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second}
	}
	conn, err := gossh.Dial("tcp", "127.0.0.1:"+sftpPort, sshCfg(auditPassword))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := pkgsftp.NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	f, err := sc.Create("/s.txt")
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("hello"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sc.Rename("/s.txt", "/s2.txt"); err != nil {
		t.Fatal(err)
	}
	sc.Close()
	conn.Close()
	if c, err := gossh.Dial("tcp", "127.0.0.1:"+sftpPort, sshCfg(auditWrongPW)); err == nil {
		c.Close()
		t.Fatal("SFTP login with a wrong password")
	}

	// FUSE: a file written and removed through the mount.
	if mnt != "" {
		waitMounted(t, mnt, true, s.stderr)
		if err := os.WriteFile(filepath.Join(mnt, "f.txt"), []byte("hello"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(mnt, "f.txt")); err != nil {
			t.Fatal(err)
		}
	}
	s.stop(t)

	p := filepath.Join(data, "audit.log")
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode %v, want 0600", st.Mode().Perm())
	}
	recs := auditRecords(t, p)
	for _, want := range []map[string]string{
		{"op": "create", "frontend": "webdav", "user": "alice", "view": "files", "path": "/a.txt", "result": "ok", "remote": "127.0.0.1", "request_id": auditRequestID},
		{"op": "login", "frontend": "webdav", "user": "alice", "result": "denied", "method": "password", "remote": "127.0.0.1", "request_id": "it-bad-login"},
		{"op": "create", "frontend": "s3", "user": "alice", "view": "files", "path": "/files/s3/a.txt", "result": "ok", "remote": "127.0.0.1"},
		{"op": "login", "frontend": "s3", "user": "alice", "result": "denied", "method": "sigv4", "reason": "SignatureDoesNotMatch (access key " + auditKey + ")"},
		{"op": "create", "frontend": "sftp", "user": "alice", "path": "/s.txt", "result": "ok", "remote": "127.0.0.1"},
		{"op": "rename", "frontend": "sftp", "user": "alice", "path": "/s.txt", "to": "/s2.txt", "result": "ok"},
		{"op": "login", "frontend": "sftp", "user": "alice", "result": "denied", "method": "password", "remote": "127.0.0.1"},
	} {
		r := findRecord(recs, want)
		if r == nil {
			t.Errorf("no audit record %v", want)
			continue
		}
		if r["time"] == nil {
			t.Errorf("record without time: %v", r)
		}
		if want["op"] == "create" {
			if id, _ := r["id"].(string); !idRE.MatchString(id) {
				t.Errorf("create without the object's id: %v", r)
			}
		}
	}
	if mnt != "" {
		for _, op := range []string{"create", "remove"} {
			r := findRecord(recs, map[string]string{"op": op, "frontend": "fuse", "user": "alice", "path": "/f.txt", "result": "ok"})
			if r == nil {
				t.Errorf("no FUSE %s record", op)
			} else if rem, _ := r["remote"].(string); !strings.HasPrefix(rem, "pid ") || r["request_id"] == "" {
				t.Errorf("FUSE record without the caller's pid or the mount id: %v", r)
			}
		}
	}

	// The request id is on the request's log lines too.
	logs := s.stderr.String()
	if !strings.Contains(logs, `"msg":"failed login","frontend":"webdav","addr":"127.0.0.1","request_id":"it-bad-login"`) {
		t.Errorf("the failed login's log line lacks its request id:\n%s", logs)
	}
	audit, _ := os.ReadFile(p)
	for _, secret := range []string{auditPassword, auditWrongPW, auditSecret, auditWrongKey, string(hash)} {
		if strings.Contains(logs, secret) || strings.Contains(string(audit), secret) {
			t.Errorf("secret %q is logged", secret)
		}
	}
}

// TestLogFormat: auto gives JSON lines when standard error is not a
// terminal, --log-format and DATAGATE_LOG_FORMAT text, and log.audit "-"
// puts the audit records in the main log, marked audit=true.
func TestLogFormat(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte(auditPassword), bcrypt.MinCost)
	cfgFor := func(data, davPort, extra string) string {
		return fmt.Sprintf(`data: %s
listen: {admin: '127.0.0.1:0', webdav: '127.0.0.1:%s'}
views:
  files: {path: "{path...}"}
users:
  alice: {password_hash: '%s', views: {files: rwd}}
%s`, data, davPort, hash, extra)
	}
	firstLine := func(s *auditServer) string {
		line, _, _ := strings.Cut(s.stderr.String(), "\n")
		return line
	}

	// auto, not a terminal: JSON, with the audit in the main log.
	data, port := t.TempDir(), freePort(t)
	s := startAuditServer(t, cfgFor(data, port, "log: {audit: '-'}"), "")
	resp := davPut(t, "http://127.0.0.1:"+port+"/x.txt", "alice", auditWrongPW, "it-json-1", "x")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad login: %d", resp.StatusCode)
	}
	s.stop(t)
	var rec map[string]any
	found := false
	for _, line := range strings.Split(strings.TrimSpace(s.stderr.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("auto on a pipe: not a JSON line: %q", line)
		}
		if m["audit"] == true && m["op"] == "login" {
			rec, found = m, true
		}
	}
	if !found || rec["request_id"] != "it-json-1" || rec["user"] != "alice" {
		t.Fatalf("no audit record in the main log (%v):\n%s", rec, s.stderr)
	}
	if _, err := os.Stat(filepath.Join(data, "audit.log")); err == nil {
		t.Error("audit: '-' still wrote audit.log")
	}

	// The flag, then the environment, choose text; the config's json
	// yields to both.
	for _, tc := range []struct {
		name, env string
		args      []string
	}{
		{"flag", "", []string{"--log-format", "text"}},
		{"environment", "text", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startAuditServer(t, cfgFor(t.TempDir(), freePort(t), "log: {format: json}"), tc.env, tc.args...)
			s.stop(t)
			if l := firstLine(s); !strings.HasPrefix(l, "time=") || !strings.Contains(l, " level=INFO msg=") {
				t.Fatalf("not a text line: %q", l)
			}
		})
	}
	// A bad format is refused.
	out, err := exec.Command(datagateBin, "--log-format", "xml", "--data", t.TempDir(), "views").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "want text, json or auto") {
		t.Fatalf("--log-format xml: %v %s", err, out)
	}
}
