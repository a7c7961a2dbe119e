package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/datagate/datagate/views/audittest"
)

var datagateBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "datagate-it-")
	if err != nil {
		panic(err)
	}
	datagateBin = filepath.Join(dir, "datagate")
	// The servers' logs are read as text here; their stderr is a pipe, on
	// which the default (auto) would give JSON (audit_test.go checks it).
	os.Setenv("DATAGATE_LOG_FORMAT", "text")
	build := exec.Command("go", "build", "-o", datagateBin, "../cmd/datagate")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build datagate:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type cli struct {
	t    *testing.T
	args []string // global flags
}

// run runs datagate with stdin, returning stdout, stderr and exit code.
func (c cli) run(stdin string, args ...string) (string, string, int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, datagateBin, append(append([]string{}, c.args...), args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("datagate %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func (c cli) ok(stdin string, args ...string) string {
	c.t.Helper()
	out, errs, code := c.run(stdin, args...)
	if code != 0 {
		c.t.Fatalf("datagate %v: exit %d\n%s", args, code, errs)
	}
	return out
}

var idRE = regexp.MustCompile(`\b[0-9A-HJKMNP-TV-Z]{26}\b`)

// exercise runs the same commands against a data directory, with or
// without a server owning it.
func exercise(t *testing.T, c cli, dataDir string) {
	// put / stat / get / find / rm
	payload := bytes.Repeat([]byte("datagate\n"), 50000)
	src := filepath.Join(t.TempDir(), "synop.bufr")
	os.WriteFile(src, payload, 0o644)
	out := c.ok("", "put", src, "--meta", "type=obs", "--meta", "date=2026-11-22")
	id := idRE.FindString(out)
	if id == "" {
		t.Fatalf("put printed no id: %q", out)
	}
	var st struct {
		Name   string            `json:"name"`
		Size   int64             `json:"size"`
		SHA256 string            `json:"sha256"`
		Meta   map[string]string `json:"meta"`
		State  string            `json:"state"`
	}
	if err := json.Unmarshal([]byte(c.ok("", "stat", id)), &st); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(payload)
	if st.Name != "synop.bufr" || st.Size != int64(len(payload)) || st.SHA256 != hex.EncodeToString(sum[:]) || st.Meta["type"] != "obs" || st.State != "stored" {
		t.Fatalf("stat: %+v", st)
	}
	if got := c.ok("", "get", id); got != string(payload) {
		t.Fatalf("get to stdout: %d bytes", len(got))
	}
	dst := filepath.Join(t.TempDir(), "out.bufr")
	c.ok("", "get", id, "-o", dst)
	if b, _ := os.ReadFile(dst); !bytes.Equal(b, payload) {
		t.Fatal("get -o wrote the wrong bytes")
	}
	if out := c.ok("", "find", "type=obs", "date=2026-11-22"); !strings.Contains(out, id) {
		t.Fatalf("find: %q", out)
	}
	if out := c.ok("", "find", "type=obs", "--json"); !strings.Contains(out, `"sha256"`) {
		t.Fatalf("find --json: %q", out)
	}

	// register from stdin against the default local provider, lazily read
	imp := filepath.Join(dataDir, "import")
	os.MkdirAll(filepath.Join(imp, "fc"), 0o755)
	grib := bytes.Repeat([]byte("GRIB"), 10000)
	os.WriteFile(filepath.Join(imp, "fc", "all.grib"), grib, 0o644)
	nd := `{"name":"t2m","meta":{"param":"t2m"},"location":{"provider":"local","path":"fc/all.grib","offset":0,"length":4000}}
{"name":"msl","meta":{"param":"msl"},"location":{"provider":"local","path":"fc/all.grib","offset":4000,"length":4000}}
`
	if out := c.ok(nd, "register"); !strings.Contains(out, "2 added") {
		t.Fatalf("register: %q", out)
	}
	if out := c.ok(nd, "register"); !strings.Contains(out, "2 unchanged") {
		t.Fatalf("register again: %q", out)
	}
	mslID := idRE.FindString(c.ok("", "find", "param=msl"))
	if got := c.ok("", "get", mslID); got != string(grib[4000:8000]) {
		t.Fatalf("lazy get of a registered range: %d bytes", len(got))
	}

	// malformed NDJSON: line number, exit 2, batch not applied
	bad := `{"name":"ok","meta":{"param":"z"},"location":{"provider":"local","path":"fc/all.grib","offset":8000,"length":10}}
{"name": broken`
	_, errs, code := c.run(bad, "register")
	if code != 2 || !strings.Contains(errs, "line 2") {
		t.Fatalf("malformed register: exit %d, %q", code, errs)
	}
	if out := c.ok("", "find", "param=z"); out != "" {
		t.Fatalf("half a batch applied: %q", out)
	}
	_, errs, code = c.run(`{"location":{"provider":"nowhere","path":"x"}}`, "register")
	if code != 2 || !strings.Contains(errs, `"nowhere"`) {
		t.Fatalf("unknown provider: exit %d, %q", code, errs)
	}

	// crawl with a template, twice
	os.MkdirAll(filepath.Join(imp, "2026-11-22", "obs"), 0o755)
	for i := 0; i < 3; i++ {
		os.WriteFile(filepath.Join(imp, "2026-11-22", "obs", fmt.Sprintf("s%d.bufr", i)), []byte("obs"), 0o644)
	}
	out = c.ok("", "crawl", "local", "--prefix", "2026-11-22", "--path-template", "{type}/{name}", "--meta", "date=2026-11-22")
	if !regexp.MustCompile(`added\s+3`).MatchString(out) {
		t.Fatalf("crawl: %q", out)
	}
	out = c.ok("", "crawl", "local", "--prefix", "2026-11-22", "--path-template", "{type}/{name}", "--meta", "date=2026-11-22")
	if !regexp.MustCompile(`unchanged\s+3`).MatchString(out) {
		t.Fatalf("crawl again: %q", out)
	}
	if n := strings.Count(c.ok("", "find", "date=2026-11-22", "type=obs"), "\n"); n != 4 {
		t.Fatalf("find after crawl: %d objects, want 4", n)
	}

	// rm
	c.ok("", "rm", id)
	if _, _, code := c.run("", "stat", id); code != 3 {
		t.Fatalf("stat after rm: exit %d, want 3 (not found)", code)
	}
}

func TestCLIWithoutServer(t *testing.T) {
	dataDir := t.TempDir()
	exercise(t, cli{t, []string{"--data", dataDir}}, dataDir)
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	for body, want := range map[string]string{
		"data: " + dir + "\ncahce: {}\n":                                       `"cahce"`,
		"data: " + dir + "\ncache: {max_sise: 1GiB}\n":                         `"max_sise"`,
		"data: " + dir + "\nproviders:\n  p: {type: http, url: x, bogus: 1}\n": `"bogus"`,
		"data: " + dir + "\nproviders:\n  p: {type: ftp}\n":                    `"ftp"`,
	} {
		os.WriteFile(cfg, []byte(body), 0o644)
		_, errs, code := cli{t, []string{"--config", cfg}}.run("", "find", "a=b")
		if code == 0 || !strings.Contains(errs, want) {
			t.Errorf("config %q: exit %d, stderr %q; want an error naming %s", body, code, errs, want)
		}
	}
}

// server is a running `datagate serve`.
type server struct {
	cmd    *exec.Cmd
	admin  string // http://host:port
	token  string
	stderr *audittest.Log
	done   chan error
}

func startServer(t *testing.T, dataDir string) *server {
	return startServerWith(t, dataDir, "")
}

// startServerWith starts `datagate serve` with extra YAML appended to a
// config that sets the data directory and a loopback admin listener.
func startServerWith(t *testing.T, dataDir, extra string) *server {
	t.Helper()
	return startServerConfig(t, dataDir, "listen: {admin: '127.0.0.1:0'}\n"+extra)
}

// startServerConfig starts `datagate serve` with a config of its data
// directory and the YAML given, which must have a loopback admin
// listener (other listeners on port 0: listenAddr).
func startServerConfig(t *testing.T, dataDir, yaml string) *server {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "serve.yaml")
	os.WriteFile(cfg, []byte("data: "+dataDir+"\n"+yaml), 0o644)
	cmd := exec.Command(datagateBin, "--config", cfg, "serve")
	pr, pw := io.Pipe()
	s := &server{cmd: cmd, stderr: &audittest.Log{}, done: make(chan error, 1)}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			s.stderr.WriteString(line + "\n")
			if m := regexp.MustCompile(`admin API.*addr=(http://\S+)`).FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
		}
	}()
	go func() { s.done <- cmd.Wait(); pw.Close() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	select {
	case s.admin = <-addr:
	case err := <-s.done:
		t.Fatalf("serve exited: %v\n%s", err, s.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not start\n%s", s.stderr)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dataDir, "datagate.sock")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no socket")
		}
		time.Sleep(20 * time.Millisecond)
	}
	tok, _ := os.ReadFile(filepath.Join(dataDir, "admin.token"))
	s.token = strings.TrimSpace(string(tok))
	return s
}

// listenAddr waits for the server's log line announcing the listener msg
// ("WebDAV", "SFTP/SCP", "s3 API") and returns its addr. A listener
// configured on port 0 is given a free port by the kernel and logged:
// a port picked by the test beforehand could be taken by another
// process in between.
func (s *server) listenAddr(t *testing.T, msg string) string {
	t.Helper()
	re := regexp.MustCompile(`msg="?` + regexp.QuoteMeta(msg) + `"? addr=(\S+)`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := re.FindStringSubmatch(s.stderr.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q listener in the log\n%s", msg, s.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) stop(t *testing.T) {
	t.Helper()
	terminate(t, "serve", s.cmd, s.done, s.stderr)
}

// terminate sends SIGTERM to a datagate process and waits for its clean
// exit, failing the test with its log otherwise.
func terminate(t testing.TB, what string, cmd *exec.Cmd, done <-chan error, log fmt.Stringer) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s exit after SIGTERM: %v\n%s", what, err, log)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop on SIGTERM\n%s", what, log)
	}
}

func TestCLIThroughServer(t *testing.T) {
	dataDir := t.TempDir()
	s := startServer(t, dataDir)
	c := cli{t, []string{"--data", dataDir}}
	// Every command works while the server owns the directory: they go
	// through its socket (opening the store directly would be refused).
	exercise(t, c, dataDir)

	// A second server is refused with a clear message.
	_, errs, code := c.run("", "serve")
	if code == 0 || !strings.Contains(errs, "in use") || !strings.Contains(errs, "pid") {
		t.Fatalf("second serve: exit %d, %q", code, errs)
	}

	// The TCP admin API: health without a token, registration with one.
	resp, err := http.Get(s.admin + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	body := `{"name":"via-api","meta":{"api":"yes"},"location":{"provider":"local","path":"fc/all.grib"}}` + "\n"
	resp, _ = http.Post(s.admin+"/api/v1/objects", "application/x-ndjson", strings.NewReader(body))
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("register without token: %s", resp.Status)
	}
	resp.Body.Close()
	req, _ := http.NewRequest("POST", s.admin+"/api/v1/objects", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("register with token: %v %v", resp, err)
	}
	resp.Body.Close()
	if out := c.ok("", "find", "api=yes"); !strings.Contains(out, "via-api") {
		t.Fatalf("object registered over HTTP not found: %q", out)
	}
	if strings.Contains(s.stderr.String(), s.token) {
		t.Fatal("the admin token appears in the server's log")
	}

	s.stop(t)
	if _, err := os.Stat(filepath.Join(dataDir, "datagate.sock")); err == nil {
		t.Fatal("socket left behind after shutdown")
	}
	// With the server gone, the same data is there through the store.
	if out := c.ok("", "find", "api=yes"); !strings.Contains(out, "via-api") {
		t.Fatalf("after shutdown: %q", out)
	}
}
