package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/datagate/datagate/backends/sftp/sftptest"
)

// regServer is a server with alice on the view "p" ({param}/{name}) over
// WebDAV, and the CLI on its data directory.
type regServer struct {
	*server
	c   cli
	dav *dav
	imp string // the local provider's root
}

func startRegServer(t *testing.T, extra string) *regServer {
	t.Helper()
	dataDir := t.TempDir()
	imp := filepath.Join(dataDir, "import")
	os.MkdirAll(imp, 0o755)
	h, err := bcrypt.GenerateFromPassword([]byte(davPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	s := startServerConfig(t, dataDir, fmt.Sprintf(`listen: {admin: '127.0.0.1:0', webdav: '127.0.0.1:0'}
views:
  p: {path: "{param}/{name}"}
users:
  alice: {password_hash: '%s', views: {p: rwd}}
%s`, h, extra))
	return &regServer{server: s, c: cli{t, []string{"--data", dataDir}}, dav: newDAV(s.listenAddr(t, "WebDAV"), 20*time.Second), imp: imp}
}

// register runs `register --json` of the records and returns its counts.
func (r *regServer) register(t *testing.T, records ...string) (added, updated, unchanged int) {
	t.Helper()
	var res struct{ Added, Updated, Unchanged int }
	out := r.c.ok(strings.Join(records, "\n")+"\n", "register", "--json")
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("register --json: %q: %v", out, err)
	}
	return res.Added, res.Updated, res.Unchanged
}

// status is a WebDAV GET's status for alice.
func (r *regServer) status(t *testing.T, p string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code, _, err := r.dav.do(ctx, "GET", p, nil)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func (r *regServer) move(t *testing.T, from, to string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if code, b, err := r.dav.do(ctx, "MKCOL", path.Dir(to), nil); err != nil || code != http.StatusCreated {
		t.Fatalf("MKCOL %s: %d %s %v", path.Dir(to), code, b, err)
	}
	if code, b, err := r.dav.do(ctx, "MOVE", from, nil, "Destination", r.dav.base+to); err != nil || code != http.StatusCreated {
		t.Fatalf("MOVE %s %s: %d %s %v", from, to, code, b, err)
	}
}

// A producer's corrected record (another param) moves the object and
// keeps its fetched content; re-registering the record registered last
// leaves an object alice moved where she put it.
func TestRegisterCorrectionMovesRepeatKeepsRename(t *testing.T) {
	r := startRegServer(t, "")
	os.WriteFile(filepath.Join(r.imp, "f.grib"), []byte("GRIB-content"), 0o644)
	rec := func(param string) string {
		return fmt.Sprintf(`{"name":"f.grib","meta":{"param":%q},"location":{"provider":"local","path":"f.grib"}}`, param)
	}
	if a, _, _ := r.register(t, rec("t2m")); a != 1 {
		t.Fatalf("first registration: %d added", a)
	}
	id := strings.Fields(r.c.ok("", "find", "param=t2m") + " -")[0]
	if got := r.c.ok("", "get", id); got != "GRIB-content" {
		t.Fatalf("get: %q", got)
	}
	stat := func() (state string, version int) {
		var o struct {
			State   string `json:"state"`
			Version int    `json:"version"`
		}
		out := r.c.ok("", "stat", id)
		if err := json.Unmarshal([]byte(out), &o); err != nil {
			t.Fatalf("stat: %q: %v", out, err)
		}
		return o.State, o.Version
	}
	// The server records the fetched content's state in the background.
	deadline := time.Now().Add(20 * time.Second)
	for st, _ := stat(); st != "cached"; st, _ = stat() {
		if time.Now().After(deadline) {
			t.Fatalf("state %s 20 s after a get, want cached", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, _, u := r.register(t, rec("t2m")); u != 1 {
		t.Fatal("the same record again is not unchanged")
	}

	_, up, _ := r.register(t, rec("2t"))
	if up != 1 {
		t.Fatalf("a corrected record: %d updated, want 1", up)
	}
	if c := r.status(t, "/2t/f.grib"); c != 200 {
		t.Fatalf("GET at the corrected path: %d", c)
	}
	if c := r.status(t, "/t2m/f.grib"); c != 404 {
		t.Fatalf("GET at the old path: %d", c)
	}
	if state, v := stat(); state != "cached" || v != 0 {
		t.Fatalf("after the correction: state %s version %d, want cached 0 (content unchanged)", state, v)
	}

	r.move(t, "/2t/f.grib", "/mine/g.grib")
	if _, _, u := r.register(t, rec("2t")); u != 1 {
		t.Fatal("the last record again is not unchanged")
	}
	if c := r.status(t, "/mine/g.grib"); c != 200 {
		t.Fatalf("a repeated registration undid alice's MOVE: GET /mine/g.grib %d, /2t/f.grib %d", c, r.status(t, "/2t/f.grib"))
	}
	r.stop(t)
}

// A crawl run again with a corrected --path-template moves what it
// registered; the scheduled crawls of an `acquire:` entry do not undo a
// MOVE.
func TestCrawlCorrectedTemplateAndAcquireKeepRename(t *testing.T) {
	r := startRegServer(t, `acquire:
  - {provider: local, prefix: acq, path_template: "{param}/{name}", interval: 1s}
`)
	os.MkdirAll(filepath.Join(r.imp, "obs", "t2m"), 0o755)
	os.WriteFile(filepath.Join(r.imp, "obs", "t2m", "a.grib"), []byte("a"), 0o644)
	crawl := func(tmpl string) map[string]int {
		var st map[string]int
		out := r.c.ok("", "crawl", "local", "--prefix", "obs", "--path-template", tmpl, "--json")
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("crawl --json: %q: %v", out, err)
		}
		return st
	}
	if st := crawl("{type}/{name}"); st["added"] != 1 {
		t.Fatalf("first crawl: %v", st)
	}
	if c := r.status(t, "/t2m/a.grib"); c != 404 {
		t.Fatalf("GET /t2m/a.grib before the correction: %d", c)
	}
	if st := crawl("{param}/{name}"); st["updated"] != 1 {
		t.Fatalf("crawl with the corrected template: %v, want 1 updated", st)
	}
	if c := r.status(t, "/t2m/a.grib"); c != 200 {
		t.Fatalf("GET /t2m/a.grib after the correction: %d", c)
	}
	if st := crawl("{param}/{name}"); st["unchanged"] != 1 {
		t.Fatalf("the same crawl again: %v, want 1 unchanged", st)
	}

	os.MkdirAll(filepath.Join(r.imp, "acq", "msl"), 0o755)
	os.WriteFile(filepath.Join(r.imp, "acq", "msl", "b.grib"), []byte("b"), 0o644)
	admin := adminClient{t, r.admin, func(req *http.Request) { req.Header.Set("Authorization", "Bearer "+r.token) }}
	// A run that started after the file was written.
	st := admin.waitRuns("acquire-0", admin.waitRuns("acquire-0", 0).Runs)
	if c := r.status(t, "/msl/b.grib"); c != 200 {
		t.Fatalf("GET /msl/b.grib after acquisition: %d", c)
	}
	r.move(t, "/msl/b.grib", "/kept/b.grib")
	admin.waitRuns("acquire-0", st.Runs+2)
	if c := r.status(t, "/kept/b.grib"); c != 200 {
		t.Fatalf("scheduled crawls undid a MOVE: GET /kept/b.grib %d, /msl/b.grib %d", c, r.status(t, "/msl/b.grib"))
	}
	r.stop(t)
}

// Crawls of a real SFTP provider: a corrected template moves what the
// crawl registered; after a user's MOVE, a provider file rewritten is a
// new version read with its new bytes, at the path the user chose.
func TestCrawlSFTPCorrectionRenameAndRewrite(t *testing.T) {
	remote := t.TempDir()
	srv := sftptest.NewServer(t, remote)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(srv.KnownHostsLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(remote, "obs", "t2m"), 0o755)
	os.WriteFile(filepath.Join(remote, "obs", "t2m", "a.grib"), []byte("first"), 0o644)
	r := startRegServer(t, fmt.Sprintf(`providers:
  feed: {type: sftp, address: %s, user: %s, password: %s, known_hosts: %s, timeout: 5s}
`, srv.Addr, srv.User, srv.Password, kh))
	crawl := func(tmpl string) map[string]int {
		var st map[string]int
		out := r.c.ok("", "crawl", "feed", "--prefix", "obs", "--path-template", tmpl, "--json")
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("crawl --json: %q: %v", out, err)
		}
		return st
	}
	get := func(p string) (int, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		code, b, err := r.dav.do(ctx, "GET", p, nil)
		if err != nil {
			t.Fatal(err)
		}
		return code, string(b)
	}
	if st := crawl("{type}/{name}"); st["added"] != 1 {
		t.Fatalf("first crawl: %v", st)
	}
	if st := crawl("{param}/{name}"); st["updated"] != 1 {
		t.Fatalf("corrected crawl: %v", st)
	}
	if code, b := get("/t2m/a.grib"); code != 200 || b != "first" {
		t.Fatalf("GET /t2m/a.grib: %d %q", code, b)
	}
	r.move(t, "/t2m/a.grib", "/mine/a.grib")
	if st := crawl("{param}/{name}"); st["unchanged"] != 1 {
		t.Fatalf("the same crawl after a MOVE: %v", st)
	}
	// Rewritten at the provider, another size and time.
	os.WriteFile(filepath.Join(remote, "obs", "t2m", "a.grib"), []byte("second, longer"), 0o644)
	later := time.Now().Add(time.Minute)
	os.Chtimes(filepath.Join(remote, "obs", "t2m", "a.grib"), later, later)
	if st := crawl("{param}/{name}"); st["updated"] != 1 {
		t.Fatalf("crawl after a rewrite: %v", st)
	}
	if code, b := get("/mine/a.grib"); code != 200 || b != "second, longer" {
		t.Fatalf("GET /mine/a.grib after the rewrite: %d %q", code, b)
	}
	if code, _ := get("/t2m/a.grib"); code != 404 {
		t.Fatalf("the rewrite moved the object back: GET /t2m/a.grib %d", code)
	}
	r.stop(t)
}
