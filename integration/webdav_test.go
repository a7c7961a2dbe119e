package integration

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/datagate/datagate/views/audittest"
)

// davServer is a `datagate serve` with the WebDAV listener on.
type davServer struct {
	cmd  *exec.Cmd
	url  string // http://127.0.0.1:port
	log  *audittest.Log
	done chan error
}

func davFreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

const davPassword = "s3cret-pw"

// davConfig: alice has "files" (rwd, any path) and "ro" (read only);
// bob has "secret" only.
func davConfig(t testing.TB, dataDir string, port int) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(davPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`data: %s
listen: {admin: '127.0.0.1:0', webdav: '127.0.0.1:%d'}
views:
  files: {path: "{path...}"}
  ro: {path: "{name}"}
  secret: {path: "{name}"}
users:
  alice: {password_hash: '%s', views: {files: rwd, ro: r}}
  bob: {password_hash: '%s', views: {secret: rwd}}
`, dataDir, port, h, h)
	p := filepath.Join(t.TempDir(), "dav.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// startDAV runs `datagate serve` with cfg and waits until WebDAV answers.
func startDAV(t testing.TB, cfg string, port int) *davServer {
	t.Helper()
	s := &davServer{url: fmt.Sprintf("http://127.0.0.1:%d", port), log: &audittest.Log{}, done: make(chan error, 1)}
	s.cmd = exec.Command(datagateBin, "--config", cfg, "serve")
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() { s.cmd.Process.Kill() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.url + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 401 {
				return s
			}
		}
		select {
		case err := <-s.done:
			t.Fatalf("serve exited: %v\n%s", err, s.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("WebDAV did not come up\n%s", s.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *davServer) stop(t testing.TB) {
	t.Helper()
	terminate(t, "serve", s.cmd, s.done, s.log)
}

func davNeed(t testing.TB, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed (CI installs it: see .ci/run)", tool)
		}
		t.Skipf("%s is not installed", tool)
	}
}

// run runs a tool with a time bound and returns its combined output.
func davRun(t testing.TB, env []string, stdin string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// curl returns the HTTP status and the body of one request.
func davCurl(t testing.TB, args ...string) (int, string) {
	t.Helper()
	out, err := davRun(t, nil, "", "curl", append([]string{"-sS", "--path-as-is", "-w", "\n%{http_code}"}, args...)...)
	if err != nil {
		t.Fatalf("curl %v: %v\n%s", args, err, out)
	}
	i := strings.LastIndexByte(out, '\n')
	var code int
	fmt.Sscan(out[i+1:], &code)
	return code, out[:i]
}

func TestWebDAVClients(t *testing.T) {
	davNeed(t, "curl")
	dataDir := t.TempDir()
	port := davFreePort(t)
	s := startDAV(t, davConfig(t, dataDir, port), port)
	u := s.url
	alice := "alice:" + davPassword

	// curl: the HTTP side
	src := filepath.Join(t.TempDir(), "payload.bin")
	payload := make([]byte, 5<<20+123)
	rand.Read(payload)
	os.WriteFile(src, payload, 0o644)
	if code, _ := davCurl(t, "-u", alice, "-X", "MKCOL", u+"/files/curl"); code != 201 {
		t.Fatalf("MKCOL: %d", code)
	}
	if code, _ := davCurl(t, "-u", alice, "-T", src, u+"/files/curl/payload.bin"); code != 201 {
		t.Fatalf("PUT: %d", code)
	}
	out := filepath.Join(t.TempDir(), "out.bin")
	if code, _ := davCurl(t, "-u", alice, "-o", out, u+"/files/curl/payload.bin"); code != 200 {
		t.Fatalf("GET: %d", code)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, payload) {
		t.Fatal("GET returned other bytes")
	}
	if code, body := davCurl(t, "-u", alice, "-r", "100-109", u+"/files/curl/payload.bin"); code != 206 || body != string(payload[100:110]) {
		t.Fatalf("range: %d %q", code, body)
	}
	if code, _ := davCurl(t, "-u", alice, "-r", "999999999-", u+"/files/curl/payload.bin"); code != 416 {
		t.Fatalf("unsatisfiable range: %d", code)
	}
	if code, body := davCurl(t, "-u", alice, "-X", "PROPFIND", "-H", "Depth: 1", u+"/files/curl/"); code != 207 || !strings.Contains(body, "payload.bin") {
		t.Fatalf("PROPFIND: %d %s", code, body)
	}
	if code, body := davCurl(t, "-u", alice, u+"/files/curl/"); code != 200 || !strings.Contains(body, `href="/files/curl/payload.bin"`) {
		t.Fatalf("HTML listing: %d %s", code, body)
	}
	if code, _ := davCurl(t, u+"/files/curl/payload.bin"); code != 401 {
		t.Fatalf("no credentials: %d", code)
	}
	// bad input through the real binary
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"-u", alice, u + "/files/../secret/x"}, 400},
		{[]string{"-u", alice, u + "/files/%2e%2e%2fsecret"}, 400},
		{[]string{"-u", alice, u + "/secret/"}, 404},
		{[]string{"-u", alice, "-T", src, u + "/ro/new"}, 403},
		{[]string{"-u", alice, "-X", "MOVE", "-H", "Destination: http://elsewhere.example/files/x", u + "/files/curl/payload.bin"}, 502},
		{[]string{"-u", alice, "-X", "PROPFIND", "-H", "Depth: 0", "--data", "<propfind", u + "/files/"}, 400},
	} {
		if code, body := davCurl(t, c.args...); code != c.code {
			t.Errorf("curl %v: %d, want %d (%s)", c.args, code, c.code, body)
		}
	}

	t.Run("rclone", func(t *testing.T) {
		davNeed(t, "rclone")
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "sub dir"), 0o755)
		for i := range 5 {
			b := make([]byte, 1000*(i+1)*(i+1))
			rand.Read(b)
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d.bin", i)), b, 0o644)
		}
		os.WriteFile(filepath.Join(dir, "sub dir", "ünï cödé.txt"), []byte("text\n"), 0o644)
		obscured, err := davRun(t, nil, "", "rclone", "obscure", davPassword)
		if err != nil {
			t.Fatal(err)
		}
		for _, vendor := range []string{"owncloud", "other"} {
			env := []string{"RCLONE_CONFIG_DAV_TYPE=webdav", "RCLONE_CONFIG_DAV_URL=" + u + "/files", "RCLONE_CONFIG_DAV_VENDOR=" + vendor,
				"RCLONE_CONFIG_DAV_USER=alice", "RCLONE_CONFIG_DAV_PASS=" + strings.TrimSpace(obscured), "RCLONE_CONFIG=/dev/null"}
			dst := "dav:rclone-" + vendor
			if out, err := davRun(t, env, "", "rclone", "copy", dir, dst); err != nil {
				t.Fatalf("rclone copy (%s): %v\n%s", vendor, err, out)
			}
			// owncloud: checksums from oc:checksums; other: sizes, and
			// the content downloaded and compared
			args := []string{"check", dir, dst}
			if vendor == "other" {
				args = append(args, "--download")
			}
			if out, err := davRun(t, env, "", "rclone", args...); err != nil {
				t.Fatalf("rclone check (%s): %v\n%s", vendor, err, out)
			}
			if vendor == "owncloud" {
				out, err := davRun(t, env, "", "rclone", "md5sum", dst)
				if err != nil || strings.Count(out, "\n") < 6 || strings.Contains(out, "UNSUPPORTED") {
					t.Fatalf("rclone md5sum: %v\n%s", err, out)
				}
			}
		}
	})

	t.Run("cadaver", func(t *testing.T) {
		davNeed(t, "cadaver")
		home := t.TempDir()
		os.WriteFile(filepath.Join(home, ".netrc"), []byte("machine 127.0.0.1\nlogin alice\npassword "+davPassword+"\n"), 0o600)
		local := filepath.Join(t.TempDir(), "cad.txt")
		os.WriteFile(local, []byte("from cadaver\n"), 0o644)
		got := filepath.Join(t.TempDir(), "back.txt")
		script := fmt.Sprintf("mkcol cad\nput %s cad/a.txt\nmove cad/a.txt cad/b.txt\nget cad/b.txt %s\nls cad\npropget cad/b.txt\nquit\n", local, got)
		out, err := davRun(t, []string{"HOME=" + home}, script, "cadaver", u+"/files/")
		if err != nil {
			t.Fatalf("cadaver: %v\n%s", err, out)
		}
		if b, _ := os.ReadFile(got); string(b) != "from cadaver\n" || strings.Contains(out, "failed") || !strings.Contains(out, "b.txt") {
			t.Fatalf("cadaver session:\n%s\ngot %q", out, b)
		}
	})

	// A PUT abandoned halfway leaves nothing.
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	req := "PUT /files/curl/half HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + davBasic("alice", davPassword) + "\r\nContent-Length: 4000000\r\n\r\n"
	io.WriteString(conn, req)
	conn.Write(payload[:2000000])
	time.Sleep(200 * time.Millisecond)
	conn.Close()
	time.Sleep(300 * time.Millisecond)
	if code, _ := davCurl(t, "-u", alice, u+"/files/curl/half"); code != 404 {
		t.Fatalf("abandoned PUT visible: %d", code)
	}
	s.stop(t)
}

func davBasic(user, pw string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pw))
}

// Locks taken with LOCK survive a restart of the server.
func TestWebDAVLocksSurviveRestart(t *testing.T) {
	davNeed(t, "curl")
	dataDir := t.TempDir()
	port := davFreePort(t)
	cfg := davConfig(t, dataDir, port)
	s := startDAV(t, cfg, port)
	alice := "alice:" + davPassword
	u := s.url + "/files/doc.txt"
	if code, _ := davCurl(t, "-u", alice, "-X", "PUT", "--data-binary", "v1", u); code != 201 {
		t.Fatalf("PUT: %d", code)
	}
	out, err := davRun(t, nil, "", "curl", "-sS", "-D", "-", "-o", "/dev/null", "-u", alice, "-X", "LOCK", "-H", "Timeout: Second-3600",
		"--data", `<?xml version="1.0"?><lockinfo xmlns="DAV:"><lockscope><exclusive/></lockscope><locktype><write/></locktype><owner>it</owner></lockinfo>`, u)
	if err != nil {
		t.Fatal(err)
	}
	var token string
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.ToLower(l), "lock-token: "); ok {
			token = strings.TrimSpace(l[len(l)-len(v):])
		}
	}
	if !strings.HasPrefix(token, "<urn:uuid:") {
		t.Fatalf("no lock token:\n%s", out)
	}
	s.stop(t)
	s = startDAV(t, cfg, port)
	if code, _ := davCurl(t, "-u", alice, "-X", "PUT", "--data-binary", "v2", u); code != 423 {
		t.Fatalf("PUT without the token after a restart: %d, want 423", code)
	}
	if code, _ := davCurl(t, "-u", alice, "-X", "PUT", "-H", "If: ("+token+")", "--data-binary", "v3", u); code != 201 {
		t.Fatalf("PUT with the token: %d", code)
	}
	if code, _ := davCurl(t, "-u", alice, "-X", "UNLOCK", "-H", "Lock-Token: "+token, u); code != 204 {
		t.Fatalf("UNLOCK: %d", code)
	}
	if code, body := davCurl(t, "-u", alice, u); code != 200 || body != "v3" {
		t.Fatalf("GET: %d %q", code, body)
	}
	s.stop(t)
}

// litmusKnown are the litmus tests that cannot pass, with the reason (also
// in the README): none at present.
var litmusKnown = map[string]string{}

// TestWebDAVLitmus runs the litmus suites (basic, copymove, props, locks,
// http) against a freshly started server (`make litmus` shows the report).
func TestWebDAVLitmus(t *testing.T) {
	davNeed(t, "litmus")
	dataDir := t.TempDir()
	port := davFreePort(t)
	s := startDAV(t, davConfig(t, dataDir, port), port)
	if code, _ := davCurl(t, "-u", "alice:"+davPassword, "-X", "MKCOL", s.url+"/files/litmus"); code != 201 {
		t.Fatalf("MKCOL: %d", code)
	}
	for _, suite := range []string{"basic", "copymove", "props", "locks", "http"} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		cmd := exec.CommandContext(ctx, "litmus", s.url+"/files/litmus/", "alice", davPassword)
		cmd.Dir = t.TempDir() // its debug.log
		cmd.Env = append(os.Environ(), "TESTS="+suite)
		out, _ := cmd.CombinedOutput()
		cancel()
		t.Logf("litmus %s:\n%s", suite, out)
		if !strings.Contains(string(out), "<- summary for `"+suite+"'") {
			t.Errorf("litmus %s did not finish", suite)
		}
		for _, line := range strings.Split(string(out), "\n") {
			i := strings.Index(line, "FAIL")
			if i < 0 {
				continue
			}
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name := strings.TrimRight(f[1], ".")
			if _, ok := litmusKnown[name]; !ok {
				t.Errorf("litmus %s: %s", suite, strings.TrimSpace(line))
			}
		}
	}
	s.stop(t)
}

// davTarget is one WebDAV/HTTP server measured by BenchmarkWebDAVServers.
type davTarget struct {
	name string
	url  string // serving the bench files at url + "/"
	pid  int    // the serving process, for its CPU time
	dav  bool   // answers PROPFIND and PUT
}

// davCPUSeconds is the user+system CPU time of process pid so far.
func davCPUSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	var ut, st float64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return (ut + st) / 100 // USER_HZ
}

// BenchmarkWebDAVServers measures datagate's WebDAV front-end beside
// `rclone serve webdav` and nginx serving the same files in the same run
// (make bench-webdav; README "WebDAV"). WEBDAV_BENCH_MIB sets the big GET
// (default 1024); WEBDAV_BENCH_PARTS picks what is measured (default
// "get,small,propfind,put"). PUTs go to each server in turn, three
// rounds, and the best counts, so a busy moment does not favour one.
func BenchmarkWebDAVServers(b *testing.B) {
	for _, tool := range []string{"curl", "wrk"} {
		davNeed(b, tool)
	}
	bigMiB := 1024
	if v := os.Getenv("WEBDAV_BENCH_MIB"); v != "" {
		fmt.Sscan(v, &bigMiB)
	}
	parts := map[string]bool{"get": true, "small": true, "propfind": true, "put": true}
	if v := os.Getenv("WEBDAV_BENCH_PARTS"); v != "" {
		parts = map[string]bool{}
		for _, p := range strings.Split(v, ",") {
			parts[strings.TrimSpace(p)] = true
		}
	}
	work := b.TempDir()
	dataDir := filepath.Join(work, "data")
	src := filepath.Join(dataDir, "import", "bench")
	for _, d := range []string{"d10k", "d100k"} {
		os.MkdirAll(filepath.Join(src, d), 0o755)
	}
	writeRandom := func(p string, size int64) {
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyN(f, rand.Reader, size); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	if !parts["get"] {
		bigMiB = 1
	}
	writeRandom(filepath.Join(src, "big.bin"), int64(bigMiB)<<20)
	writeRandom(filepath.Join(src, "small.bin"), 4096)
	put := filepath.Join(work, "put.bin")
	writeRandom(put, 256<<20)
	for i := range 100000 {
		if !parts["propfind"] {
			break
		}
		if i < 10000 {
			os.WriteFile(filepath.Join(src, "d10k", fmt.Sprintf("f%05d.txt", i)), []byte("x"), 0o644)
		}
		os.WriteFile(filepath.Join(src, "d100k", fmt.Sprintf("f%06d.txt", i)), []byte("x"), 0o644)
	}

	port := davFreePort(b)
	cfg := davConfig(b, dataDir, port)
	dg := startDAV(b, cfg, port)
	defer dg.stop(b)
	if out, err := davRun(b, nil, "", datagateBin, "--config", cfg, "crawl", "local", "--prefix", "bench", "--path-template", "{path...}"); err != nil {
		b.Fatalf("crawl: %v\n%s", err, out)
	}
	alice := "alice:" + davPassword
	for range 2 { // the first read fetches, verifies and caches
		if code, _ := davCurl(b, "-u", alice, "-o", "/dev/null", dg.url+"/files/big.bin"); code != 200 {
			b.Fatalf("warm GET: %d", code)
		}
	}
	// The first full read also digests the content (MD5, SHA-256) in the
	// background: what is measured is a cached object, so wait for that.
	davWaitIdle(b, dg.cmd.Process.Pid, time.Minute)
	targets := []davTarget{{name: "datagate", url: dg.url + "/files", pid: dg.cmd.Process.Pid, dav: true}}

	if _, err := exec.LookPath("rclone"); err == nil {
		rport := davFreePort(b)
		rc := exec.Command("rclone", "serve", "webdav", src, "--addr", fmt.Sprintf("127.0.0.1:%d", rport), "--user", "alice", "--pass", davPassword, "--config", "/dev/null")
		rc.Stderr = &audittest.Log{}
		if err := rc.Start(); err != nil {
			b.Fatal(err)
		}
		defer rc.Process.Kill()
		waitHTTP(b, fmt.Sprintf("http://127.0.0.1:%d/", rport))
		targets = append(targets, davTarget{name: "rclone serve webdav", url: fmt.Sprintf("http://127.0.0.1:%d", rport), pid: rc.Process.Pid, dav: true})
	}
	if nginx, err := exec.LookPath("nginx"); err == nil {
		nport := davFreePort(b)
		os.WriteFile(filepath.Join(work, "htpasswd"), []byte("alice:{PLAIN}"+davPassword+"\n"), 0o644)
		conf := fmt.Sprintf(`daemon off; master_process off; pid %[1]s/nginx.pid; error_log %[1]s/nginx.err;
events { worker_connections 1024; }
http { access_log off; sendfile on; client_body_temp_path %[1]s/ncb; proxy_temp_path %[1]s/np; fastcgi_temp_path %[1]s/nf; uwsgi_temp_path %[1]s/nu; scgi_temp_path %[1]s/ns;
  server { listen 127.0.0.1:%[2]d; root %[3]s; auth_basic "bench"; auth_basic_user_file %[1]s/htpasswd; } }
`, work, nport, src)
		os.WriteFile(filepath.Join(work, "nginx.conf"), []byte(conf), 0o644)
		ng := exec.Command(nginx, "-c", filepath.Join(work, "nginx.conf"), "-p", work)
		ng.Stderr = &audittest.Log{}
		if err := ng.Start(); err != nil {
			b.Fatal(err)
		}
		defer ng.Process.Kill()
		waitHTTP(b, fmt.Sprintf("http://127.0.0.1:%d/", nport))
		targets = append(targets, davTarget{name: "nginx", url: fmt.Sprintf("http://127.0.0.1:%d", nport), pid: ng.Process.Pid})
	}

	curlStat := func(args ...string) (code int, first, total, speed float64) {
		out, err := davRun(b, nil, "", "curl", append([]string{"-sS", "-o", "/dev/null", "-u", alice, "-w", "%{http_code} %{time_starttransfer} %{time_total} %{speed_download}"}, args...)...)
		if err != nil {
			b.Fatalf("curl %v: %v\n%s", args, err, out)
		}
		fmt.Sscan(out, &code, &first, &total, &speed)
		return
	}
	best := func(n int, fn func() float64) float64 {
		m := 0.0
		for i := range n {
			if v := fn(); i == 0 || v < m {
				m = v
			}
		}
		return m
	}
	b.ResetTimer()
	// PUT rounds first, each server in turn: the best MiB/s and the
	// server's CPU seconds per GiB in that round.
	putRate, putCPU := map[string]float64{}, map[string]float64{}
	for round := 0; parts["put"] && round < 3; round++ {
		for _, tg := range targets {
			if !tg.dav {
				continue
			}
			cpu0 := davCPUSeconds(tg.pid)
			code, _, total, _ := curlStat("-T", put, tg.url+"/put.bin")
			cpu := davCPUSeconds(tg.pid) - cpu0
			if code != 201 && code != 204 {
				b.Fatalf("%s: PUT: %d", tg.name, code)
			}
			if r := 256 / total; r > putRate[tg.name] {
				putRate[tg.name], putCPU[tg.name] = r, cpu*4
			}
		}
	}
	// Metrics per server ("datagate-get-MiB/s", "rclone-put-MiB/s", …)
	// for the table of make bench (cmd/benchsuite).
	metric := func(tg davTarget, v float64, unit string) {
		b.ReportMetric(v, strings.Fields(tg.name)[0]+"-"+unit)
	}
	for _, tg := range targets {
		if r, ok := putRate[tg.name]; ok {
			metric(tg, r, "put-MiB/s")
			metric(tg, putCPU[tg.name], "put-cpu-s/GiB")
		}
	}
	var report strings.Builder
	fmt.Fprintf(&report, "%-20s %14s %12s %12s %14s %16s %12s %14s\n", "server", "GET big GiB/s", "CPU-s/GiB", "4KiB req/s", "PROPFIND 10k s", "PROPFIND 100k s", "PUT MiB/s", "PUT CPU-s/GiB")
	for _, tg := range targets {
		getRate, getCPU, rps := "-", "-", "-"
		if parts["get"] {
			cpu0 := davCPUSeconds(tg.pid)
			code, _, _, speed := curlStat(tg.url + "/big.bin")
			cpu := davCPUSeconds(tg.pid) - cpu0
			if code != 200 {
				b.Fatalf("%s: GET big: %d", tg.name, code)
			}
			gib := float64(bigMiB) / 1024
			getRate, getCPU = fmt.Sprintf("%.2f", speed/(1<<30)), fmt.Sprintf("%.2f", cpu/gib)
			metric(tg, speed/(1<<20), "get-MiB/s")
			metric(tg, cpu/gib, "get-cpu-s/GiB")
		}
		if parts["small"] {
			out, err := davRun(b, nil, "", "wrk", "-t2", "-c32", "-d5s", "-H", "Authorization: Basic "+davBasic("alice", davPassword), tg.url+"/small.bin")
			if err != nil {
				b.Fatalf("wrk: %v\n%s", err, out)
			}
			var r float64
			if i := strings.Index(out, "Requests/sec:"); i >= 0 {
				fmt.Sscan(out[i+len("Requests/sec:"):], &r)
			}
			if strings.Contains(out, "Non-2xx") {
				b.Fatalf("%s: wrk saw errors:\n%s", tg.name, out)
			}
			rps = fmt.Sprintf("%.0f", r)
			metric(tg, r, "4KiB-req/s")
		}
		p10k, p100k, p100kFirst, putR, putC := "-", "-", "", "-", "-"
		if tg.dav && parts["propfind"] {
			pf := []string{"-X", "PROPFIND", "-H", "Depth: 1"}
			t10k := best(3, func() float64 {
				code, _, total, _ := curlStat(append(pf, tg.url+"/d10k/")...)
				if code != 207 {
					b.Fatalf("%s: PROPFIND: %d", tg.name, code)
				}
				return total
			})
			p10k = fmt.Sprintf("%.3f", t10k)
			_, first, total, _ := curlStat(append(pf, tg.url+"/d100k/")...)
			p100k = fmt.Sprintf("%.2f", total)
			p100kFirst = fmt.Sprintf(" (1st %.0fms)", first*1000)
			metric(tg, t10k, "propfind10k-s")
			metric(tg, total, "propfind100k-s")
			metric(tg, first*1000, "propfind100k-first-ms")
		}
		if r, ok := putRate[tg.name]; ok {
			putR, putC = fmt.Sprintf("%.0f", r), fmt.Sprintf("%.2f", putCPU[tg.name])
		}
		fmt.Fprintf(&report, "%-20s %14s %12s %12s %14s %16s %12s %14s\n", tg.name, getRate, getCPU, rps, p10k, p100k+p100kFirst, putR, putC)
	}
	b.StopTimer()
	fmt.Print(report.String())
}

// davWaitIdle waits until process pid used less than 5% of a CPU over
// half a second, or until max has passed.
func davWaitIdle(b testing.TB, pid int, max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		c0 := davCPUSeconds(pid)
		time.Sleep(500 * time.Millisecond)
		if davCPUSeconds(pid)-c0 < 0.025 {
			return
		}
	}
	b.Logf("pid %d still busy after %v", pid, max)
}

func waitHTTP(b testing.TB, url string) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not come up: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// With tls_cert and tls_key the listener speaks HTTPS only; a bad pair
// stops the server from starting.
func TestWebDAVTLS(t *testing.T) {
	davNeed(t, "curl")
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)

	port := davFreePort(t)
	cfg := davConfig(t, filepath.Join(dir, "data"), port)
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, append(b, fmt.Sprintf("webdav: {tls_cert: %s, tls_key: %s}\n", certFile, keyFile)...), 0o644)
	s := &davServer{url: fmt.Sprintf("https://127.0.0.1:%d", port), log: &audittest.Log{}, done: make(chan error, 1)}
	s.cmd = exec.Command(datagateBin, "--config", cfg, "serve")
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() { s.cmd.Process.Kill() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := davRun(t, nil, "", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", certFile, "-u", "alice:"+davPassword, "-X", "MKCOL", s.url+"/files/tls")
		if err == nil && out == "201" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("HTTPS WebDAV did not come up (last %q, %v)\n%s", out, err, s.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _ := davCurl(t, "--cacert", certFile, "-u", "alice:"+davPassword, "-T", certFile, s.url+"/files/tls/c.pem"); code != 201 {
		t.Fatalf("PUT over TLS: %d", code)
	}
	if out, _ := davRun(t, nil, "", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", fmt.Sprintf("http://127.0.0.1:%d/", port)); out == "200" || out == "401" {
		t.Fatalf("plain HTTP answered on the TLS listener: %s", out)
	}
	s.stop(t)

	// a key that does not exist: serve refuses to start, naming it
	os.WriteFile(cfg, append(b, fmt.Sprintf("webdav: {tls_cert: %s, tls_key: %s}\n", certFile, filepath.Join(dir, "nokey.pem"))...), 0o644)
	out, err := davRun(t, nil, "", datagateBin, "--config", cfg, "serve")
	if err == nil || !strings.Contains(out, "nokey.pem") {
		t.Fatalf("serve with a missing key: %v\n%s", err, out)
	}
}
