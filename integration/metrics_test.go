package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
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

// fuseAvailable tells whether this machine can mount FUSE, as needMount
// decides: in CI (/dev/fuse, root) it must, and a missing /dev/fuse fails
// the test; elsewhere the FUSE part is left out with a log line.
func fuseAvailable(t *testing.T) bool {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no /dev/fuse in CI")
		}
		t.Log("no /dev/fuse: the FUSE front-end is left out")
		return false
	}
	if _, err := exec.LookPath("fusermount3"); err != nil && os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("fusermount3 is not installed (CI installs fuse3)")
		}
		t.Log("no fusermount3 and not root: the FUSE front-end is left out")
		return false
	}
	return true
}

// scrape is one /metrics answer in the text format: the value of each
// series, keyed by its line up to the value (`name{l="v",...}`).
type scrape map[string]float64

func parseScrape(t *testing.T, body string) scrape {
	t.Helper()
	s := scrape{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("bad line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad value in %q", line)
		}
		s[line[:i]] = v
	}
	return s
}

// sum adds the series of metric name carrying every label pair given
// (name, value, ...); ok is false when there is none.
func (s scrape) sum(name string, labels ...string) (float64, bool) {
	total, found := 0.0, false
	for k, v := range s {
		base, rest, _ := strings.Cut(k, "{")
		if base != name {
			continue
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(rest, labels[i]+`="`+labels[i+1]+`"`) {
				match = false
			}
		}
		if match {
			total += v
			found = true
		}
	}
	return total, found
}

// atLeast fails unless the series' sum is at least min.
func (s scrape) atLeast(t *testing.T, min float64, name string, labels ...string) {
	t.Helper()
	v, ok := s.sum(name, labels...)
	if !ok {
		t.Errorf("%s%v: not in /metrics", name, labels)
	} else if v < min {
		t.Errorf("%s%v = %v, want at least %v", name, labels, v, min)
	}
}

type metricsServer struct {
	cmd                  *exec.Cmd
	data, admin, token   string
	webdav, s3, sftp     string // host:port
	stderr               *audittest.Log
	done                 chan error
	hostKey              gossh.PublicKey
	mnt                  string // "" without FUSE
	provider             *fuseHTTP
	providerContent      []byte
	davUser, davPassword string
	s3Key, s3Secret      string
	sftpUser, sftpSecret string
}

// startMetricsServer runs every front-end of one server (FUSE when the
// machine can mount), with a loopback HTTP provider holding one object.
func startMetricsServer(t *testing.T, withFUSE bool) *metricsServer {
	t.Helper()
	s := &metricsServer{
		data: t.TempDir(), stderr: &audittest.Log{}, done: make(chan error, 1),
		webdav: "127.0.0.1:" + freePort(t), s3: "127.0.0.1:" + freePort(t), sftp: "127.0.0.1:" + freePort(t),
		davUser: "alice", davPassword: "metrics-pw", s3Key: "AKIAMETRICS", s3Secret: "metrics-secret",
		providerContent: pattern(3<<20, 9),
	}
	s.sftpUser, s.sftpSecret = s.davUser, s.davPassword
	s.provider = newFuseHTTP(t, map[string][]byte{"/data/cold.bin": s.providerContent})
	hash, err := bcrypt.GenerateFromPassword([]byte(s.davPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	mounts := ""
	if withFUSE {
		s.mnt = filepath.Join(t.TempDir(), "mnt")
		os.Mkdir(s.mnt, 0o755)
		mounts = fmt.Sprintf("mounts:\n  - {user: alice, path: %s, timeout: 10s}\n", s.mnt)
		t.Cleanup(func() {
			if mounted(t, s.mnt) {
				syscall.Unmount(s.mnt, syscall.MNT_DETACH)
			}
		})
	}
	cfg := fmt.Sprintf(`data: %s
listen: {admin: '127.0.0.1:0', webdav: '%s', s3: '%s', sftp: '%s'}
providers:
  web: {type: http, url: "%s/", timeout: 30s, retries: 0}
views:
  files: {path: "{type}/{name}"}
  names: {path: "{name}"}
users:
  alice:
    password_hash: '%s'
    s3_keys: [{id: %s, secret: %s}]
    views: {files: rwd, names: r}
%s`, s.data, s.webdav, s.s3, s.sftp, s.provider.URL, hash, s.s3Key, s.s3Secret, mounts)
	cfgFile := filepath.Join(t.TempDir(), "metrics.yaml")
	os.WriteFile(cfgFile, []byte(cfg), 0o644)
	s.cmd = exec.Command(datagateBin, "--config", cfgFile, "serve")
	pr, pw := io.Pipe()
	s.cmd.Stderr = pw
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	admin, serving := make(chan string, 1), make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		re := regexp.MustCompile(`admin API.*addr=(http://\S+)`)
		for sc.Scan() {
			line := sc.Text()
			s.stderr.WriteString(line + "\n")
			if m := re.FindStringSubmatch(line); m != nil {
				admin <- m[1]
			}
			if strings.Contains(line, "datagate serving") {
				serving <- struct{}{}
			}
		}
	}()
	go func() { s.done <- s.cmd.Wait(); pw.Close() }()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("server log:\n%s", s.stderr)
		}
	})
	for admin != nil || serving != nil {
		select {
		case s.admin = <-admin:
			admin = nil
		case <-serving:
			serving = nil
		case err := <-s.done:
			t.Fatalf("serve exited: %v\n%s", err, s.stderr)
		case <-time.After(60 * time.Second):
			t.Fatalf("serve did not start\n%s", s.stderr)
		}
	}
	tok, _ := os.ReadFile(filepath.Join(s.data, "admin.token"))
	s.token = strings.TrimSpace(string(tok))
	b, err := os.ReadFile(filepath.Join(s.data, "ssh_host_ed25519_key"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	s.hostKey = signer.PublicKey()
	if withFUSE {
		waitMounted(t, s.mnt, true, s.stderr)
	}
	return s
}

// scrapeAdmin reads /metrics from the admin listener with the token.
func (s *metricsServer) scrapeAdmin(t *testing.T) scrape {
	t.Helper()
	req, _ := http.NewRequest("GET", s.admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	return s.get(t, http.DefaultClient, req)
}

// scrapeSocket reads /metrics from the data directory's socket.
func (s *metricsServer) scrapeSocket(t *testing.T) scrape {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", filepath.Join(s.data, "datagate.sock"))
	}}}
	req, _ := http.NewRequest("GET", "http://datagate/metrics", nil)
	return s.get(t, c, req)
}

func (s *metricsServer) get(t *testing.T, c *http.Client, req *http.Request) scrape {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := c.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("scrape %s: %v", req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("scrape %s: %s\n%s", req.URL, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("scrape %s: Content-Type %q", req.URL, ct)
	}
	return parseScrape(t, string(body))
}

// TestMetricsAfterTraffic drives every front-end (FUSE where it can
// mount; CI can) of one server, then scrapes /metrics and checks that
// each front-end's counters moved, and the core's.
func TestMetricsAfterTraffic(t *testing.T) {
	withFUSE := fuseAvailable(t)
	s := startMetricsServer(t, withFUSE)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := cli{t, []string{"--data", s.data}}

	// Before any traffic: the scrape works and front-end series are few.
	before := s.scrapeAdmin(t)
	before.atLeast(t, 1, "go_goroutines")
	before.atLeast(t, 0, "datagate_catalogue_objects")

	// The core: an object registered at the provider, read cold below.
	nd := fmt.Sprintf(`{"name":"cold.bin","size":%d,"meta":{"type":"grib"},"location":{"provider":"web","path":"data/cold.bin"}}`+"\n", len(s.providerContent))
	c.ok(nd, "register")

	// WebDAV: a PUT, a GET of the cold object, a GET of nothing.
	small := bytes.Repeat([]byte("w"), 5000)
	dav := func(method, p string, body []byte) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, "http://"+s.webdav+p, bytes.NewReader(body))
		req.SetBasicAuth(s.davUser, s.davPassword)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, p, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, _ := dav("MKCOL", "/files/obs", nil); code != 201 {
		t.Fatalf("webdav MKCOL: %d", code)
	}
	if code, _ := dav("PUT", "/files/obs/dav.txt", small); code != 201 && code != 204 {
		t.Fatalf("webdav PUT: %d", code)
	}
	if code, b := dav("GET", "/files/grib/cold.bin", nil); code != 200 || !bytes.Equal(b, s.providerContent) {
		t.Fatalf("webdav GET of the cold object: %d, %d bytes", code, len(b))
	}
	if code, _ := dav("GET", "/files/obs/none.txt", nil); code != 404 {
		t.Fatalf("webdav GET of nothing: %d", code)
	}

	// S3 (minio-go): a PUT, a GET, a HEAD of nothing.
	mc, err := minio.New(s.s3, &minio.Options{Creds: credentials.NewStaticV4(s.s3Key, s.s3Secret, ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mc.PutObject(ctx, "files", "obs/s3.txt", bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("s3 put: %v", err)
	}
	obj, err := mc.GetObject(ctx, "files", "obs/s3.txt", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(obj); err != nil || !bytes.Equal(b, small) {
		t.Fatalf("s3 get: %v, %d bytes", err, len(b))
	}
	obj.Close()
	if _, err := mc.StatObject(ctx, "files", "obs/none.txt", minio.StatObjectOptions{}); err == nil {
		t.Fatal("s3 stat of nothing succeeded")
	}

	// SFTP (pkg/sftp over an SSH connection): a write, a read, a stat of
	// nothing; the session ends before the scrape.
	sc, err := gossh.Dial("tcp", s.sftp, &gossh.ClientConfig{
		User: s.sftpUser, Auth: []gossh.AuthMethod{gossh.Password(s.sftpSecret)},
		HostKeyCallback: gossh.FixedHostKey(s.hostKey), Timeout: 20 * time.Second,
		HostKeyAlgorithms: []string{gossh.KeyAlgoED25519},
	})
	if err != nil {
		t.Fatalf("ssh: %v", err)
	}
	sf, err := pkgsftp.NewClient(sc)
	if err != nil {
		t.Fatal(err)
	}
	f, err := sf.Create("/files/obs/sftp.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(small); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	f, err = sf.Open("/files/obs/sftp.txt")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(f); err != nil || !bytes.Equal(b, small) {
		t.Fatalf("sftp read: %v, %d bytes", err, len(b))
	}
	f.Close()
	if _, err := sf.Stat("/files/obs/none.txt"); err == nil {
		t.Fatal("sftp stat of nothing succeeded")
	}
	sf.Close()
	sc.Close()

	// FUSE: a write, a read, a lookup of nothing.
	if withFUSE {
		p := filepath.Join(s.mnt, "files", "obs", "fuse.txt")
		if err := os.WriteFile(p, small, 0o644); err != nil {
			t.Fatalf("fuse write: %v", err)
		}
		if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, small) {
			t.Fatalf("fuse read: %v, %d bytes", err, len(b))
		}
		if _, err := os.Stat(filepath.Join(s.mnt, "files", "obs", "none.txt")); err == nil {
			t.Fatal("fuse stat of nothing succeeded")
		}
	}

	// The SFTP session's end is seen by the server shortly after the
	// client closes: wait for the gauge rather than sleep.
	var m scrape
	for deadline := time.Now().Add(10 * time.Second); ; {
		m = s.scrapeAdmin(t)
		if v, _ := m.sum("datagate_sftp_sessions_active"); v == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	n := float64(len(small))

	t.Run("webdav", func(t *testing.T) {
		fe := []string{"frontend", "webdav"}
		m.atLeast(t, 1, "datagate_requests_total", append(fe, "op", "PUT", "status", "2xx")...)
		m.atLeast(t, 1, "datagate_requests_total", append(fe, "op", "GET", "status", "2xx")...)
		m.atLeast(t, 1, "datagate_request_errors_total", append(fe, "op", "GET", "kind", "not_exist")...)
		m.atLeast(t, 4, "datagate_request_duration_seconds_count", fe...)
		m.atLeast(t, n, "datagate_received_bytes_total", fe...)
		m.atLeast(t, float64(len(s.providerContent)), "datagate_sent_bytes_total", fe...)
	})
	t.Run("s3", func(t *testing.T) {
		fe := []string{"frontend", "s3"}
		m.atLeast(t, 1, "datagate_requests_total", append(fe, "op", "PUT", "status", "2xx")...)
		m.atLeast(t, 1, "datagate_requests_total", append(fe, "op", "GET", "status", "2xx")...)
		m.atLeast(t, 1, "datagate_request_errors_total", append(fe, "op", "HEAD", "kind", "not_exist")...)
		m.atLeast(t, n, "datagate_received_bytes_total", fe...)
		m.atLeast(t, n, "datagate_sent_bytes_total", fe...)
	})
	t.Run("sftp", func(t *testing.T) {
		fe := []string{"frontend", "sftp"}
		m.atLeast(t, 1, "datagate_sftp_sessions_total", "kind", "sftp")
		m.atLeast(t, 0, "datagate_sftp_sessions_active")
		if v, _ := m.sum("datagate_sftp_sessions_active"); v != 0 {
			t.Errorf("sftp sessions active after the client closed: %v", v)
		}
		m.atLeast(t, 1, "datagate_requests_total", append(fe, "op", "write", "status", "ok")...)
		m.atLeast(t, 1, "datagate_requests_total", append(fe, "op", "read", "status", "ok")...)
		m.atLeast(t, 1, "datagate_request_errors_total", append(fe, "op", "stat", "kind", "not_exist")...)
		m.atLeast(t, n, "datagate_received_bytes_total", fe...)
		m.atLeast(t, n, "datagate_sent_bytes_total", fe...)
	})
	t.Run("fuse", func(t *testing.T) {
		if !withFUSE {
			t.Skip("no FUSE on this machine (CI has it)")
		}
		fe := []string{"frontend", "fuse"}
		m.atLeast(t, 1, "datagate_fuse_mounts_active")
		m.atLeast(t, 1, "datagate_requests_total", append(fe, "op", "write", "status", "ok")...)
		m.atLeast(t, 1, "datagate_requests_total", append(fe, "op", "open", "status", "ok")...)
		m.atLeast(t, 1, "datagate_request_errors_total", append(fe, "op", "lookup", "kind", "not_exist")...)
		m.atLeast(t, n, "datagate_received_bytes_total", fe...)
	})
	t.Run("admin", func(t *testing.T) {
		// The scrapes above went through the admin listener.
		m.atLeast(t, 1, "datagate_requests_total", "frontend", "admin", "op", "GET", "status", "2xx")
	})
	t.Run("core", func(t *testing.T) {
		m.atLeast(t, 4, "datagate_catalogue_objects")
		m.atLeast(t, float64(len(s.providerContent)), "datagate_catalogue_bytes")
		m.atLeast(t, 1, "datagate_provider_fetches_total", "provider", "web")
		m.atLeast(t, float64(len(s.providerContent)), "datagate_provider_fetched_bytes_total", "provider", "web")
		m.atLeast(t, 1, "datagate_provider_fetch_duration_seconds_count", "provider", "web")
		m.atLeast(t, 1, "datagate_cache_misses_total")
		m.atLeast(t, float64(len(s.providerContent)), "datagate_cache_fetched_bytes_total")
		m.atLeast(t, 1, "datagate_store_copies", "store", "primary")
		for _, name := range []string{"datagate_gc_removed_total", "datagate_path_collisions_total", "datagate_badger_lsm_bytes", "datagate_badger_vlog_bytes", "datagate_cache_evictions_total"} {
			m.atLeast(t, 0, name)
		}
		if v, _ := m.sum("datagate_core_scrape_errors_total"); v != 0 {
			t.Errorf("core scrape errors: %v", v)
		}
	})
	t.Run("socket", func(t *testing.T) {
		// The socket serves the same registry without credentials.
		m2 := s.scrapeSocket(t)
		m2.atLeast(t, 1, "datagate_requests_total", "frontend", "webdav", "op", "PUT")
	})
	t.Run("auth", func(t *testing.T) {
		resp, err := http.Get(s.admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("/metrics without credentials on the admin listener: %s, want 401", resp.Status)
		}
	})
}
