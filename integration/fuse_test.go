package integration

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/datagate/datagate/views/audittest"
)

// fuseViews: alice has rwd on by-date and r on by-type; one object is at
// {date}/{type}/{name} in one and {type}/{name} in the other.
const fuseViews = `views:
  by-date: {path: "{date}/{type}/{name}"}
  by-type: {path: "{type}/{name}"}
users:
  alice: {views: {by-date: rwd, by-type: r}}
`

// needMount skips when this machine cannot mount FUSE (CI installs fuse3
// and attr and runs as root: there the test runs, or fails).
func needMount(t *testing.T) {
	t.Helper()
	needTool(t, "fusermount3", "getfattr", "setfattr")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no /dev/fuse in CI")
		}
		t.Skip("no /dev/fuse: cannot mount")
	}
}

// mounted reports whether dir is a mount point (in /proc/self/mountinfo).
func mounted(t *testing.T, dir string) bool {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 && fields[4] == dir {
			return true
		}
	}
	return false
}

func waitMounted(t *testing.T, dir string, want bool, stderr fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for mounted(t, dir) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: mounted=%v after 20s\n%s", dir, !want, stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitGone waits until path does not exist, as a change made through
// another view or the CLI reaches the mount through the change feed.
func waitGone(t *testing.T, path, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, err := os.Stat(path)
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still there after 10s: %v", what, err)
		}
	}
}

// mountProc is `datagate mount` running in the foreground.
type mountProc struct {
	cmd    *exec.Cmd
	stderr *audittest.Log
	done   chan error
}

func startMount(t *testing.T, cfg, mnt string, args ...string) *mountProc {
	t.Helper()
	m := &mountProc{stderr: &audittest.Log{}, done: make(chan error, 1)}
	m.cmd = exec.Command(datagateBin, append([]string{"--config", cfg, "mount", "--user", "alice", mnt}, args...)...)
	pr, pw := io.Pipe()
	m.cmd.Stderr = pw
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			m.stderr.WriteString(sc.Text() + "\n")
		}
	}()
	go func() { m.done <- m.cmd.Wait(); pw.Close() }()
	t.Cleanup(func() {
		m.cmd.Process.Kill()
		if mounted(t, mnt) {
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})
	waitMounted(t, mnt, true, m.stderr)
	return m
}

func (m *mountProc) stop(t *testing.T) {
	t.Helper()
	terminate(t, "mount", m.cmd, m.done, m.stderr)
}

// sh runs a command and fails the test unless it succeeds.
func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, code := run(t, "", "", name, args...)
	if code != 0 {
		t.Fatalf("%s %s: exit %d\n%s", name, strings.Join(args, " "), code, out)
	}
	return out
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestFUSEMountCommand(t *testing.T) {
	needMount(t)
	data, tmp := t.TempDir(), t.TempDir()
	cfg := filepath.Join(tmp, "datagate.yaml")
	os.WriteFile(cfg, []byte("data: "+data+"\n"+fuseViews), 0o644)
	mnt := filepath.Join(tmp, "mnt")
	os.Mkdir(mnt, 0o755)
	m := startMount(t, cfg, mnt)
	at := func(p string) string { return filepath.Join(mnt, p) }

	// cp in, cat and dd out with several block sizes, same bytes in
	// both views
	src := filepath.Join(tmp, "t2m.grib")
	body := writeRandom(t, src, 3<<20+12345)
	sh(t, "mkdir", "-p", at("by-date/2026-11-22/fc"))
	sh(t, "cp", src, at("by-date/2026-11-22/fc/t2m.grib"))
	if out := sh(t, "cat", at("by-type/fc/t2m.grib")); out != string(body) {
		t.Fatalf("cat: %d bytes differ", len(out))
	}
	for _, bs := range []string{"1", "4k", "65537", "1M"} {
		out := filepath.Join(tmp, "dd.out")
		count := []string{}
		if bs == "1" {
			count = []string{"count=100000"} // a byte at a time is slow anywhere
		}
		sh(t, "dd", append([]string{"if=" + at("by-type/fc/t2m.grib"), "of=" + out, "bs=" + bs, "status=none"}, count...)...)
		want := body
		if bs == "1" {
			want = body[:100000]
		}
		sameFile(t, out, want)
	}
	sh(t, "dd", "if="+src, "of="+at("by-date/2026-11-22/fc/dd.grib"), "bs=7k", "status=none")
	sameFile(t, at("by-type/fc/dd.grib"), body)
	if out := sh(t, "stat", "-c", "%s %A", at("by-type/fc/dd.grib")); strings.TrimSpace(out) != fmt.Sprintf("%d -r--r--r--", len(body)) {
		t.Fatalf("stat: %q", out)
	}

	// xattrs: the checksum the store computed is the content's
	if got := strings.TrimSpace(sh(t, "getfattr", "--absolute-names", "--only-values", "-n", "user.datagate.sha256", at("by-type/fc/t2m.grib"))); got != sha256Hex(body) {
		t.Fatalf("user.datagate.sha256 = %q", got)
	}
	dump := sh(t, "getfattr", "--absolute-names", "-d", at("by-date/2026-11-22/fc/t2m.grib"))
	for _, want := range []string{`user.datagate.date="2026-11-22"`, `user.datagate.type="fc"`, "user.datagate.id=", "user.datagate.md5="} {
		if !strings.Contains(dump, want) {
			t.Fatalf("getfattr -d lacks %s:\n%s", want, dump)
		}
	}
	if out, code := run(t, "", "", "setfattr", "-n", "user.datagate.type", "-v", "obs", at("by-type/fc/t2m.grib")); code == 0 || !strings.Contains(out, "Permission denied") {
		t.Fatalf("setfattr on a read-only view: exit %d %s", code, out)
	}
	// a key the path does not use: set, read back, removed
	sh(t, "setfattr", "-n", "user.datagate.param", "-v", "t2m", at("by-date/2026-11-22/fc/t2m.grib"))
	if got := strings.TrimSpace(sh(t, "getfattr", "--absolute-names", "--only-values", "-n", "user.datagate.param", at("by-type/fc/t2m.grib"))); got != "t2m" {
		t.Fatalf("user.datagate.param = %q", got)
	}
	sh(t, "setfattr", "-x", "user.datagate.param", at("by-date/2026-11-22/fc/t2m.grib"))
	if out, code := run(t, "", "", "getfattr", "--absolute-names", "-n", "user.datagate.param", at("by-date/2026-11-22/fc/t2m.grib")); code == 0 || !strings.Contains(out, "No such attribute") {
		t.Fatalf("getfattr after setfattr -x: exit %d %s", code, out)
	}

	// ls -lR and find see both views
	lsR := sh(t, "ls", "-lR", mnt)
	if strings.Count(lsR, "t2m.grib") != 2 {
		t.Fatalf("ls -lR:\n%s", lsR)
	}
	found := strings.Fields(sh(t, "find", mnt, "-type", "f"))
	if len(found) != 4 {
		t.Fatalf("find: %v", found)
	}

	// setfattr of a key the path uses moves the file, in every view
	sh(t, "setfattr", "-n", "user.datagate.type", "-v", "an", at("by-date/2026-11-22/fc/dd.grib"))
	sameFile(t, at("by-type/an/dd.grib"), body)
	// The old name goes when the change feed reaches the mount, even in
	// the view the setfattr was made in (gateway/fuse Setxattr; checked
	// at once, it was still there 1 run in ~20 under load).
	waitGone(t, at("by-date/2026-11-22/fc/dd.grib"), "old path after setfattr")

	// mv is a metadata change: the object shows up under its new type in
	// the other view
	sh(t, "mkdir", "-p", at("by-date/2026-11-23/obs"))
	sh(t, "mv", at("by-date/2026-11-22/fc/t2m.grib"), at("by-date/2026-11-23/obs/t2m.grib"))
	sameFile(t, at("by-type/obs/t2m.grib"), body)
	// The other view's old name goes when the change feed reaches the
	// mount (tens of ms: the kernel's dentry is dropped then, the mv
	// does not wait for it; checked at once, it was still there 1 run in
	// ~10 under load).
	waitGone(t, at("by-type/fc/t2m.grib"), "old path after mv")

	// a write the store refuses fails at close and leaves nothing
	out, code := run(t, "", "", "cp", src, at("by-date/not-in-template.bin"))
	if code == 0 || !strings.Contains(out, "Invalid argument") {
		t.Fatalf("cp to a path outside the template: exit %d %s", code, out)
	}
	if _, err := os.Stat(at("by-date/not-in-template.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("failed upload visible: %v", err)
	}
	// read-only view, bad names
	if out, code := run(t, "", "", "cp", src, at("by-type/fc/x.grib")); code == 0 || !strings.Contains(out, "Permission denied") {
		t.Fatalf("cp into a read-only view: exit %d %s", code, out)
	}
	if _, err := os.Stat(at("by-date/" + strings.Repeat("n", 256))); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Fatalf("over-long name: %v", err)
	}
	if st, err := os.Stat(at("by-date/2026-11-22/..")); err != nil || !st.IsDir() {
		t.Fatalf("..: %v", err)
	}

	// rm, rmdir
	wantFail := func(args ...string) {
		if out, code := run(t, "", "", args[0], args[1:]...); code == 0 {
			t.Fatalf("%v succeeded: %s", args, out)
		}
	}
	wantFail("rmdir", at("by-date/2026-11-23/obs"))
	sh(t, "rm", at("by-date/2026-11-23/obs/t2m.grib"))
	sh(t, "rmdir", at("by-date/2026-11-23/obs"))
	wantFail("rm", at("by-type/an/dd.grib"))

	// SIGTERM while busy (a process's working directory inside): the
	// mount is detached, the command exits, the mount point is free
	busy := exec.Command("sleep", "60")
	busy.Dir = at("by-date")
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	defer busy.Process.Kill()
	m.stop(t)
	waitMounted(t, mnt, false, m.stderr)
	if ents, err := os.ReadDir(mnt); err != nil || len(ents) != 0 {
		t.Fatalf("mount point after unmount: %v %v", ents, err)
	}
}

// fuseHTTP is a provider on loopback: /data/* serves content (counting
// GETs per path), /stall/* answers nothing until the test ends.
type fuseHTTP struct {
	*httptest.Server
	gets  sync.Map // path -> *atomic.Int64
	stall chan struct{}
	files map[string][]byte
}

func newFuseHTTP(t *testing.T, files map[string][]byte) *fuseHTTP {
	h := &fuseHTTP{stall: make(chan struct{}), files: files}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/stall/") {
			select {
			case <-h.stall:
			case <-r.Context().Done():
			}
			return
		}
		b, ok := h.files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method == http.MethodGet {
			c, _ := h.gets.LoadOrStore(r.URL.Path, new(atomic.Int64))
			c.(*atomic.Int64).Add(1)
		}
		http.ServeContent(w, r, "", time.Unix(1700000000, 0), bytes.NewReader(b))
	}))
	t.Cleanup(func() { close(h.stall); h.Close() })
	return h
}

func (h *fuseHTTP) getCount(p string) int64 {
	if c, ok := h.gets.Load(p); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
}

func TestFUSEThroughServer(t *testing.T) {
	needMount(t)
	cold := pattern(3<<20, 7)
	web := newFuseHTTP(t, map[string][]byte{"/data/cold.bin": cold, "/data/small.bin": []byte("small")})
	data, tmp := t.TempDir(), t.TempDir()
	mnt := filepath.Join(tmp, "mnt")
	os.Mkdir(mnt, 0o755)
	t.Cleanup(func() { // after startServer's kill, if the test failed
		if mounted(t, mnt) {
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})
	s := startServerWith(t, data, fuseViews+fmt.Sprintf(`providers:
  web: {type: http, url: "%[1]s/", timeout: 30s, retries: 0}
  flaky: {type: http, url: "%[1]s/", timeout: 300ms, retries: 1}
mounts:
  - {user: alice, path: %[2]s, timeout: 5s}
`, web.URL, mnt))
	waitMounted(t, mnt, true, s.stderr)
	c := cli{t, []string{"--data", data}}
	at := func(p string) string { return filepath.Join(mnt, p) }

	// the data directory is the server's: mount says how to go through it
	mnt2 := filepath.Join(tmp, "mnt2")
	os.Mkdir(mnt2, 0o755)
	cfg2 := filepath.Join(tmp, "c2.yaml")
	os.WriteFile(cfg2, []byte("data: "+data+"\n"+fuseViews), 0o644)
	if _, errs, code := c.run("", "--config", cfg2, "mount", "--user", "alice", mnt2); code == 0 || !strings.Contains(errs, "serve --mount alice:"+mnt2) {
		t.Fatalf("mount while a server owns the data: exit %d\n%s", code, errs)
	}

	// pushed through the API: in a listing within 1 s
	src := filepath.Join(tmp, "synop.bufr")
	os.WriteFile(src, []byte("synop"), 0o644)
	start := time.Now()
	c.ok("", "put", src, "--meta", "type=obs", "--meta", "date=2026-11-22")
	for {
		if ents, _ := os.ReadDir(at("by-type/obs")); len(ents) == 1 && ents[0].Name() == "synop.bufr" {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("pushed object not listed after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("put → listed through the mount: %v", time.Since(start))

	// registered while mounted, read cold by 8 readers at once: one fetch
	nd := `{"name":"cold.bin","size":3145728,"meta":{"type":"grib","date":"2026-11-22"},"location":{"provider":"web","path":"data/cold.bin"}}
{"name":"gone.bin","size":100,"meta":{"type":"flaky","date":"2026-11-22"},"location":{"provider":"flaky","path":"stall/gone.bin"}}
{"name":"slow.bin","size":100,"meta":{"type":"stall","date":"2026-11-22"},"location":{"provider":"web","path":"stall/slow.bin"}}
`
	c.ok(nd, "register")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := os.ReadFile(at("by-type/grib/cold.bin"))
			if err == nil && !bytes.Equal(b, cold) {
				err = fmt.Errorf("%d bytes differ", len(b))
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("%v\nserver log:\n%s", err, s.stderr)
		}
	}
	if n := web.getCount("/data/cold.bin"); n != 1 {
		t.Fatalf("8 concurrent cold readers made %d fetches, want 1 (one 4 MiB chunk)", n)
	}

	// a stalled provider is EIO within its bounded time, not a hang
	start = time.Now()
	_, err := os.ReadFile(at("by-type/flaky/gone.bin"))
	if !errors.Is(err, syscall.EIO) || time.Since(start) > 10*time.Second {
		t.Fatalf("read from a stalled provider: %v after %v", err, time.Since(start))
	}

	// pushed over the mount, read back through the store: same SHA-256
	body := writeRandom(t, filepath.Join(tmp, "up.bin"), 1<<20+7)
	sh(t, "mkdir", at("by-date/2026-11-22/up"))
	sh(t, "cp", filepath.Join(tmp, "up.bin"), at("by-date/2026-11-22/up/up.bin"))
	var found struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		SHA256 string `json:"sha256"`
	}
	dec := json.NewDecoder(strings.NewReader(c.ok("", "find", "type=up", "--json")))
	for found.Name != "up.bin" { // the other is mkdir's directory marker
		if err := dec.Decode(&found); err != nil {
			t.Fatal(err)
		}
	}
	if found.SHA256 != sha256Hex(body) {
		t.Fatalf("store's sha256 %s, want %s", found.SHA256, sha256Hex(body))
	}
	if got := c.ok("", "get", found.ID); got != string(body) {
		t.Fatal("get of the object pushed over the mount: bytes differ")
	}

	// stopping the server while a reader is blocked on a slow provider:
	// the reader gets an error, the server exits, the mount point is
	// free (not a dead endpoint)
	cat := exec.Command("cat", at("by-type/stall/slow.bin"))
	var catOut bytes.Buffer
	cat.Stdout, cat.Stderr = &catOut, &catOut
	if err := cat.Start(); err != nil {
		t.Fatal(err)
	}
	catDone := make(chan error, 1)
	go func() { catDone <- cat.Wait() }()
	time.Sleep(500 * time.Millisecond)
	select {
	case err := <-catDone:
		t.Fatalf("cat of a stalled object ended early: %v %s", err, catOut.String())
	default:
	}
	s.stop(t)
	select {
	case err := <-catDone:
		if err == nil {
			t.Fatalf("blocked cat succeeded: %q", catOut.String())
		}
	case <-time.After(15 * time.Second):
		cat.Process.Kill()
		t.Fatal("reader still blocked 15s after the server stopped")
	}
	waitMounted(t, mnt, false, s.stderr)
	if _, err := os.ReadDir(mnt); err != nil {
		t.Fatalf("mount point after stop: %v", err)
	}
}
