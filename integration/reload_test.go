package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/bcrypt"
	gossh "golang.org/x/crypto/ssh"

	"github.com/datagate/datagate/views/audittest"
)

// reloadServer is a `datagate serve` with WebDAV, S3 and SFTP listeners
// whose configuration file the test rewrites.
type reloadServer struct {
	cmd                    *exec.Cmd
	file                   string
	dav, s3, sftp, admin   string
	log                    *audittest.Log
	done                   chan error
	dataDir, hash, davPort string
	mount                  string // a FUSE mount of alice's tree, if set
}

// reloadConfig renders the configuration; extra users and views are
// YAML lines under users: and views:.
func (s *reloadServer) config(users, views string) string {
	mounts := ""
	if s.mount != "" {
		mounts = fmt.Sprintf("mounts: [{user: alice, path: '%s'}]\n", s.mount)
	}
	return mounts + fmt.Sprintf(`data: %s
log: {format: text}
listen: {admin: '%s', webdav: '127.0.0.1:%s', s3: '%s', sftp: '%s'}
views:
  files: {path: "{path...}"}
%susers:
  alice:
    password_hash: '%s'
    s3_keys: [{id: AKALICE, secret: alice-secret}]
    views: {files: rwd}
%s`, s.dataDir, s.admin, s.davPort, s.s3, s.sftp, views, s.hash, users)
}

func (s *reloadServer) write(t *testing.T, cfg string) {
	t.Helper()
	if err := os.WriteFile(s.file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// sighup sends SIGHUP and waits for the outcome's log line (the n-th
// "configuration reload" line), which it returns.
func (s *reloadServer) sighup(t *testing.T) string {
	t.Helper()
	before := strings.Count(s.log.String(), "msg=\"configuration reload")
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		log := s.log.String()
		if strings.Count(log, "msg=\"configuration reload") > before {
			lines := strings.Split(log, "\n")
			for i := len(lines) - 1; i >= 0; i-- {
				if strings.Contains(lines[i], "msg=\"configuration reload") {
					return lines[i]
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no reload outcome logged after SIGHUP\n%s", s.log)
	return ""
}

func startReloadServer(t *testing.T, mount string) *reloadServer {
	t.Helper()
	s := launchReloadServer(t, mount)
	s.waitServing(t, nil)
	return s
}

// launchReloadServer starts the server (bob a user besides alice)
// without waiting for it.
func launchReloadServer(t *testing.T, mount string) *reloadServer {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(davPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	s := &reloadServer{
		file: filepath.Join(t.TempDir(), "datagate.yaml"), dataDir: t.TempDir(), hash: string(h),
		davPort: fmt.Sprint(davFreePort(t)), s3: s3FreePort(t), sftp: s3FreePort(t), admin: s3FreePort(t),
		log: &audittest.Log{}, done: make(chan error, 1), mount: mount,
	}
	s.dav = "http://127.0.0.1:" + s.davPort
	s.write(t, s.config(bobUser(s.hash), ""))
	s.cmd = exec.Command(datagateBin, "--config", s.file, "serve")
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() { s.cmd.Process.Kill() })
	return s
}

// waitServing waits for the server to log that it serves, calling tick
// (if set) every few milliseconds meanwhile.
func (s *reloadServer) waitServing(t *testing.T, tick func()) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(s.log.String(), "datagate serving") {
		if tick != nil {
			tick()
		}
		select {
		case err := <-s.done:
			t.Fatalf("serve exited: %v\n%s", err, s.log)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not come up\n%s", s.log)
		}
	}
}

func bobUser(hash string) string {
	return fmt.Sprintf("  bob:\n    password_hash: '%s'\n    s3_keys: [{id: AKBOB, secret: bob-secret}]\n    views: {files: r}\n", hash)
}

// davDo runs one WebDAV request as user with the test password.
func davDo(ctx context.Context, base, user, method, p string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, base+p, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.SetBasicAuth(user, davPassword)
	if method == "PROPFIND" {
		req.Header.Set("Depth", "1")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// TestReloadUnderLoad: WebDAV and S3 clients PUT and GET without pause
// while the configuration is reloaded by SIGHUP again and again; no
// request fails. An SFTP session opened before keeps working. After the
// reloads, a new user logs in, a removed one cannot, a changed S3 key
// applies and a new view shows the objects already there; bad
// configurations are refused with the reason (SIGHUP: logged; the API: in
// the answer) and the running one stays.
func TestReloadUnderLoad(t *testing.T) {
	s := startReloadServer(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// An SFTP session of alice's, opened before any reload.
	sshc, err := gossh.Dial("tcp", s.sftp, &gossh.ClientConfig{
		User: "alice", Auth: []gossh.AuthMethod{gossh.Password(davPassword)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second,
	})
	if err != nil {
		t.Fatalf("sftp login: %v\n%s", err, s.log)
	}
	defer sshc.Close()
	sc, err := pkgsftp.NewClient(sshc)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()

	// An object written before any reload, for the view added later.
	if code, _, err := davDo(ctx, s.dav, "alice", "PUT", "/before.txt", []byte("from before")); err != nil || code/100 != 2 {
		t.Fatalf("PUT before: %d %v", code, err)
	}

	// The load: two WebDAV and two S3 clients, each writing its own
	// objects and reading them back.
	var (
		wg       sync.WaitGroup
		requests atomic.Int64
		mu       sync.Mutex
		failures []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	load, stopLoad := context.WithCancel(ctx)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; load.Err() == nil; i++ {
				p := fmt.Sprintf("/dav%d-f%d.txt", w, i%50)
				body := []byte(fmt.Sprintf("dav %d %d", w, i))
				code, _, err := davDo(load, s.dav, "alice", "PUT", p, body)
				if load.Err() != nil {
					return
				}
				if err != nil || code/100 != 2 {
					fail("webdav PUT %s: %d %v", p, code, err)
					continue
				}
				code, got, err := davDo(load, s.dav, "alice", "GET", p, nil)
				if load.Err() != nil {
					return
				}
				if err != nil || code != 200 || !bytes.Equal(got, body) {
					fail("webdav GET %s: %d %q %v", p, code, got, err)
				}
				requests.Add(2)
			}
		}()
	}
	mc := s3Client(t, s.s3, "AKALICE", "alice-secret")
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; load.Err() == nil; i++ {
				key := fmt.Sprintf("s3%d/o%d", w, i%50)
				body := []byte(fmt.Sprintf("s3 %d %d", w, i))
				_, err := mc.PutObject(load, "files", key, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{})
				if load.Err() != nil {
					return
				}
				if err != nil {
					fail("s3 PUT %s: %v", key, err)
					continue
				}
				o, err := mc.GetObject(load, "files", key, minio.GetObjectOptions{})
				var got []byte
				if err == nil {
					got, err = io.ReadAll(o)
					o.Close()
				}
				if load.Err() != nil {
					return
				}
				if err != nil || !bytes.Equal(got, body) {
					fail("s3 GET %s: %q %v", key, got, err)
				}
				requests.Add(2)
			}
		}()
	}

	// Six good reloads under load: carol comes, bob goes, a view comes,
	// its template changes and back, dave's key changes, and back and
	// forth.
	carol := fmt.Sprintf("  carol:\n    password_hash: '%s'\n    s3_keys: [{id: AKCAROL, secret: carol-secret}]\n    views: {all: r, files: r}\n", s.hash)
	dave := func(secret string) string {
		return fmt.Sprintf("  dave:\n    s3_keys: [{id: AKDAVE, secret: %s}]\n    views: {files: r}\n", secret)
	}
	allView := "  all: {path: \"{name}\"}\n"
	allElsewhere := "  all: {path: \"x/{name}\"}\n" // a changed template: every path re-derived
	steps := []struct{ users, views string }{
		{bobUser(s.hash) + dave("dave-secret-1"), ""},
		{dave("dave-secret-1"), allView},
		{bobUser(s.hash) + dave("dave-secret-1"), allView},
		{carol + dave("dave-secret-2"), allView},
		{carol + bobUser(s.hash) + dave("dave-secret-1"), allElsewhere},
		{carol + dave("dave-secret-2"), allView},
	}
	time.Sleep(300 * time.Millisecond) // the load is running
	const rederived = `msg="view paths re-derived" view=all`
	rounds := 0
	for i, st := range steps {
		if st.views == allElsewhere {
			rounds = strings.Count(s.log.String(), rederived)
		}
		s.write(t, s.config(st.users, st.views))
		if line := s.sighup(t); !strings.Contains(line, "configuration reloaded") {
			t.Fatalf("reload %d refused: %s", i, line)
		}
		// The open SFTP session keeps working across every reload.
		if _, err := sc.ReadDir("/"); err != nil {
			t.Fatalf("sftp session after reload %d: %v", i, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The load goes on while the changed view's paths are re-derived in
	// the background, until the log says it is done.
	deadline := time.Now().Add(time.Minute)
	for strings.Count(s.log.String(), rederived) <= rounds {
		if time.Now().After(deadline) {
			t.Fatalf("no re-derivation of the changed view\n%s", s.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	stopLoad()
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d requests done; failures during reloads:\n%s\n%s", requests.Load(), strings.Join(failures, "\n"), s.log)
	}
	t.Logf("%d WebDAV and S3 requests during %d reloads, none failed", requests.Load(), len(steps))
	if requests.Load() < 40 {
		t.Fatalf("too little load to mean anything: %d requests", requests.Load())
	}
	f, err := sc.Create("/after-reloads.txt")
	if err == nil {
		_, err = f.Write([]byte("still here"))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatalf("sftp write after the reloads: %v", err)
	}

	// Users: carol logs in, bob cannot, over WebDAV, S3 and SFTP.
	if code, _, err := davDo(ctx, s.dav, "carol", "PROPFIND", "/", nil); err != nil || code != 207 {
		t.Fatalf("new user over WebDAV: %d %v", code, err)
	}
	if code, _, err := davDo(ctx, s.dav, "bob", "PROPFIND", "/", nil); err != nil || code != 401 {
		t.Fatalf("removed user over WebDAV: %d %v", code, err)
	}
	if _, err := s3Client(t, s.s3, "AKCAROL", "carol-secret").ListBuckets(ctx); err != nil {
		t.Fatalf("new user over S3: %v", err)
	}
	if _, err := s3Client(t, s.s3, "AKBOB", "bob-secret").ListBuckets(ctx); minio.ToErrorResponse(err).Code != "InvalidAccessKeyId" {
		t.Fatalf("removed user over S3: %v", err)
	}
	_, err = gossh.Dial("tcp", s.sftp, &gossh.ClientConfig{
		User: "bob", Auth: []gossh.AuthMethod{gossh.Password(davPassword)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second,
	})
	if err == nil {
		t.Fatal("removed user logged in over SFTP")
	}
	// dave's key: the new secret works, the old one no longer does.
	if _, err := s3Client(t, s.s3, "AKDAVE", "dave-secret-2").ListBuckets(ctx); err != nil {
		t.Fatalf("changed key: %v", err)
	}
	if _, err := s3Client(t, s.s3, "AKDAVE", "dave-secret-1").ListBuckets(ctx); minio.ToErrorResponse(err).Code != "SignatureDoesNotMatch" {
		t.Fatalf("old secret after the change: %v", err)
	}
	// The new view "all" shows the object written before it existed
	// (re-derived in the background) and those written since.
	for p, want := range map[string]string{"/all/before.txt": "from before", "/all/after-reloads.txt": "still here"} {
		deadline := time.Now().Add(time.Minute)
		for {
			code, body, err := davDo(ctx, s.dav, "carol", "GET", p, nil)
			if err == nil && code == 200 && string(body) == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("new view, %s: %d %q %v\n%s", p, code, body, err, s.log)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Bad configurations: refused with the reason, the running one stays.
	good := s.config(carol+dave("dave-secret-2"), allView)
	bad := []struct{ cfg, why string }{
		{good + "\tbroken: [\n", "line"},
		{strings.Replace(good, "views: {all: r, files: r}", "views: {nope: r, files: r}", 1), "users.carol.views.nope: no such view"},
		{strings.Replace(good, "webdav: '127.0.0.1:", "webdav: '127.0.0.2:", 1), "listen cannot change while the server runs"},
	}
	for _, b := range bad {
		s.write(t, b.cfg)
		line := s.sighup(t)
		if !strings.Contains(line, "configuration reload refused") || !strings.Contains(line, b.why) {
			t.Fatalf("SIGHUP with a bad configuration: %s\nwant a refusal naming %q", line, b.why)
		}
		if code, _, err := davDo(ctx, s.dav, "carol", "PROPFIND", "/", nil); err != nil || code != 207 {
			t.Fatalf("the running configuration did not stay: %d %v", code, err)
		}
		// The same through the admin API, when its route is wired.
		code, msg := adminReload(t, ctx, s)
		switch {
		case code == http.StatusNotFound || code == http.StatusNotImplemented:
			t.Logf("POST /api/v1/reload not wired yet (%d)", code)
		case code != http.StatusBadRequest || !strings.Contains(msg, b.why):
			t.Fatalf("API reload of a bad configuration: %d %s\nwant 400 naming %q", code, msg, b.why)
		}
	}
	s.write(t, good)
	if code, msg := adminReload(t, ctx, s); code != http.StatusOK && code != http.StatusNotFound && code != http.StatusNotImplemented {
		t.Fatalf("API reload of a good configuration: %d %s", code, msg)
	}
	terminate(t, "serve", s.cmd, s.done, s.log)
	for _, secret := range []string{"alice-secret", "bob-secret", "carol-secret", "dave-secret-1", "dave-secret-2", davPassword, s.hash} {
		if strings.Contains(s.log.String(), secret) {
			t.Fatalf("a secret was logged: %s", secret)
		}
	}
}

// adminReload posts to the reload route with the data directory's token.
func adminReload(t *testing.T, ctx context.Context, s *reloadServer) (int, string) {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(s.dataDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+s.admin+"/api/v1/reload", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReloadKeepsMounts: a FUSE mount and a file open in it keep working
// across reloads; a reload removing the mount's user is refused.
func TestReloadKeepsMounts(t *testing.T) {
	needMount(t)
	mnt := t.TempDir()
	s := startReloadServer(t, mnt)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitMounted(t, mnt, true, s.log)
	want := bytes.Repeat([]byte("0123456789"), 100000)
	if err := os.WriteFile(filepath.Join(mnt, "big.bin"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(mnt, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	half := make([]byte, len(want)/2)
	if _, err := io.ReadFull(f, half); err != nil {
		t.Fatal(err)
	}
	for i, users := range []string{"", bobUser(s.hash), ""} {
		s.write(t, s.config(users, "  all: {path: \"{name}\"}\n"))
		if line := s.sighup(t); !strings.Contains(line, "configuration reloaded") {
			t.Fatalf("reload %d: %s", i, line)
		}
		if _, err := os.ReadDir(mnt); err != nil {
			t.Fatalf("mount after reload %d: %v", i, err)
		}
	}
	rest, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(append(half, rest...), want) {
		t.Fatalf("file open across reloads: %d bytes, %v", len(half)+len(rest), err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "after.txt"), []byte("after"), 0o644); err != nil {
		t.Fatalf("write through the mount after reloads: %v", err)
	}
	// Removing the mount's user is refused.
	noAlice := strings.Replace(s.config("", ""), "  alice:\n", "  zed:\n", 1)
	s.write(t, noAlice)
	if line := s.sighup(t); !strings.Contains(line, "reload refused") || !strings.Contains(line, "mounts[0].user") {
		t.Fatalf("removing the mount's user: %s", line)
	}
	if code, _, err := davDo(ctx, s.dav, "alice", "GET", "/after.txt", nil); err != nil || code != 200 {
		t.Fatalf("alice after a refused reload: %d %v", code, err)
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// TestReloadSIGHUPWhileStarting: a SIGHUP before the server watches for
// it (opening the store) does not kill it.
func TestReloadSIGHUPWhileStarting(t *testing.T) {
	s := launchReloadServer(t, "")
	s.waitServing(t, func() {
		// Signals before main reads its command line would kill it
		// (cobra takes microseconds): send from its first log line on.
		if strings.Contains(s.log.String(), "level=") {
			s.cmd.Process.Signal(syscall.SIGHUP)
		}
	})
	if line := s.sighup(t); !strings.Contains(line, "configuration reloaded") {
		t.Fatalf("SIGHUP once serving: %s", line)
	}
}
