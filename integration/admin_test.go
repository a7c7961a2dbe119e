package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// adminClient calls the admin API of a running server over TCP.
type adminClient struct {
	t    *testing.T
	base string
	auth func(*http.Request)
}

func (c adminClient) do(method, path, body string, out any) (int, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.auth != nil {
		c.auth(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v in %q", method, path, err, b)
		}
	}
	return resp.StatusCode, string(b)
}

func (c adminClient) must(want int, method, path, body string, out any) string {
	c.t.Helper()
	code, b := c.do(method, path, body, out)
	if code != want {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, code, b, want)
	}
	return b
}

type jobStatus struct {
	Name      string `json:"name"`
	Runs      uint64 `json:"runs"`
	LastCount int64  `json:"last_count"`
	Running   bool   `json:"running"`
	Pending   bool   `json:"pending"`
	LastErr   string `json:"last_error"`
}

// waitRuns polls a job until it has run more than n times and is idle.
func (c adminClient) waitRuns(name string, n uint64) jobStatus {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var st jobStatus
		c.must(200, "GET", "/api/v1/jobs/"+name, "", &st)
		if st.Runs > n && !st.Running && !st.Pending {
			return st
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("job %s: %+v after 20s, want more than %d runs", name, st, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The admin API of the real server: admin users from the configuration
// with their roles, the data directory's token, object search, detail,
// update and delete, users, stats, the jobs and their triggers, readiness
// and reload.
func TestAdminAPI(t *testing.T) {
	dataDir := t.TempDir()
	imp := filepath.Join(dataDir, "import")
	os.MkdirAll(filepath.Join(imp, "obs"), 0o755)
	hash, _ := bcrypt.GenerateFromPassword([]byte("ops-password"), bcrypt.MinCost)
	userHash, _ := bcrypt.GenerateFromPassword([]byte("alice-password"), bcrypt.MinCost)
	const grafanaToken = "grafana-token-0123456789abcdef0123"
	sum := sha256.Sum256([]byte(grafanaToken))
	extra := fmt.Sprintf(`admin:
  users:
    ops: {role: full, password_hash: %q}
    grafana: {role: read, token_sha256: %s}
views:
  by-type: {path: "{type}/{name}"}
  by-origin: {path: "{origin}/{type}/{name}", filter: "origin = acquired"}
acquire:
  - provider: local
    match: "*.bufr"
    path_template: "{type}/{name}"
    meta: {origin: acquired}
    interval: 1h
users:
  alice: {password_hash: %q, views: {by-type: rw, by-origin: r}}
`, hash, hex.EncodeToString(sum[:]), userHash)
	s := startServerWith(t, dataDir, extra)
	anon := adminClient{t, s.admin, nil}
	ops := adminClient{t, s.admin, func(r *http.Request) { r.SetBasicAuth("ops", "ops-password") }}
	grafana := adminClient{t, s.admin, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+grafanaToken) }}
	root := adminClient{t, s.admin, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+s.token) }}

	// Health and readiness need nothing; the rest needs credentials.
	anon.must(200, "GET", "/healthz", "", nil)
	var ready struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	// Ready once every front-end has started: poll, as a load balancer does.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		code, b := anon.do("GET", "/readyz", "", &ready)
		if code == 200 {
			break
		}
		if code != 503 || time.Now().After(deadline) {
			t.Fatalf("readyz: %d %s", code, b)
		}
	}
	if ready.Status != "ready" || ready.Checks["store"] != "ok" || ready.Checks["index"] != "ok" || ready.Checks["frontends"] != "ok" {
		t.Fatalf("readyz: %+v", ready)
	}
	anon.must(401, "GET", "/api/v1/jobs", "", nil)
	(adminClient{t, s.admin, func(r *http.Request) { r.SetBasicAuth("ops", "wrong") }}).must(401, "GET", "/api/v1/jobs", "", nil)
	grafana.must(403, "POST", "/api/v1/jobs/gc/run", "", nil)
	grafana.must(403, "POST", "/api/v1/objects", `{"name":"x"}`, nil)
	var who map[string]string
	root.must(200, "GET", "/api/v1/whoami", "", &who)
	if who["name"] != "admin.token" || who["role"] != "full" {
		t.Fatalf("whoami with the data directory's token: %v", who)
	}

	// The acquisition job, triggered: its hour-long interval would
	// otherwise leave b.bufr for later.
	first := ops.waitRuns("acquire-0", 0)
	if first.LastCount != 0 || first.LastErr != "" {
		t.Fatalf("first acquisition of an empty directory: %+v", first)
	}
	os.WriteFile(filepath.Join(imp, "obs", "b.bufr"), []byte("BUFR"), 0o644)
	old := time.Now().Add(-time.Hour) // older than any min_age
	os.Chtimes(filepath.Join(imp, "obs", "b.bufr"), old, old)
	ops.must(202, "POST", "/api/v1/jobs/acquire-0/run", "", nil)
	if st := ops.waitRuns("acquire-0", first.Runs); st.LastCount != 1 {
		t.Fatalf("triggered acquisition: %+v", st)
	}
	var page struct {
		Objects []struct {
			ID   string            `json:"id"`
			Name string            `json:"name"`
			Meta map[string]string `json:"meta"`
		} `json:"objects"`
		Next string `json:"next"`
	}
	grafana.must(200, "GET", "/api/v1/objects?q=origin=acquired", "", &page)
	if len(page.Objects) != 1 || page.Objects[0].Name != "b.bufr" || page.Next != "" {
		t.Fatalf("search: %+v", page)
	}
	id := page.Objects[0].ID

	// Detail: checksums once read, locations, a path in each view.
	type detail struct {
		Name      string            `json:"name"`
		Size      int64             `json:"size"`
		Meta      map[string]string `json:"meta"`
		SHA256    string            `json:"sha256"`
		Locations *struct {
			Stores   []string `json:"stores"`
			Cached   int64    `json:"cached"`
			Complete bool     `json:"complete"`
		} `json:"locations"`
		Paths []struct{ View, Path string } `json:"paths"`
	}
	if b := grafana.must(200, "GET", "/api/v1/objects/"+id+"/content", "", nil); b != "BUFR" {
		t.Fatalf("content %q", b)
	}
	var d detail
	grafana.must(200, "GET", "/api/v1/objects/"+id, "", &d)
	want := sha256.Sum256([]byte("BUFR"))
	if d.Size != 4 || d.Locations == nil || d.Locations.Cached != 4 || !d.Locations.Complete ||
		fmt.Sprint(d.Paths) != "[{by-origin acquired/obs/b.bufr} {by-type obs/b.bufr}]" {
		t.Fatalf("detail: %+v", d)
	}
	if d.SHA256 != "" && d.SHA256 != hex.EncodeToString(want[:]) {
		t.Fatalf("sha256 %s", d.SHA256)
	}

	// An update moves the object in every view; alice sees it at once.
	d = detail{}
	ops.must(200, "PATCH", "/api/v1/objects/"+id, `{"set": {"type": "synop"}}`, &d)
	if fmt.Sprint(d.Paths) != "[{by-origin acquired/synop/b.bufr} {by-type synop/b.bufr}]" {
		t.Fatalf("paths after update: %+v", d.Paths)
	}
	c := cli{t, []string{"--data", dataDir}}
	if out := c.ok("", "ls", "--user", "alice", "/by-type/synop"); !strings.Contains(out, "b.bufr") {
		t.Fatalf("alice's tree after the update: %q", out)
	}

	// Users: views and rights, the kinds of credentials, no secret.
	b := grafana.must(200, "GET", "/api/v1/users", "", nil)
	if !strings.Contains(b, `"name":"alice"`) || !strings.Contains(b, `"rights":"rw"`) || !strings.Contains(b, `"password"`) || strings.Contains(b, "$2a$") {
		t.Fatalf("users: %s", b)
	}
	// Stats and replication come from the store.
	var st struct {
		Objects int64 `json:"objects"`
		Cache   struct {
			Hits, Misses uint64
		} `json:"cache"`
		Stores []struct{ Name string } `json:"stores"`
	}
	grafana.must(200, "GET", "/api/v1/stats", "", &st)
	if st.Objects != 1 || len(st.Stores) == 0 {
		t.Fatalf("stats: %+v", st)
	}
	grafana.must(200, "GET", "/api/v1/replication", "", nil)

	// The collector, triggered.
	gc := ops.waitRuns("gc", 0)
	ops.must(202, "POST", "/api/v1/jobs/gc/run", "", nil)
	ops.waitRuns("gc", gc.Runs)

	// Delete.
	ops.must(204, "DELETE", "/api/v1/objects/"+id, "", nil)
	grafana.must(404, "GET", "/api/v1/objects/"+id, "", nil)

	// Bad input is refused with a JSON error naming it.
	if b := ops.must(400, "POST", "/api/v1/objects", "{\"name\":\"a\",\"size\":1,\"location\":{\"provider\":\"local\",\"path\":\"a\"}}\n{oops\n", nil); !strings.Contains(b, `"line":2`) {
		t.Fatalf("malformed NDJSON: %s", b)
	}
	if b := ops.must(400, "PATCH", "/api/v1/objects/"+id, `{"sett": {}}`, nil); !strings.Contains(b, `unknown field \"sett\"`) {
		t.Fatalf("unknown field: %s", b)
	}
	ops.must(413, "PATCH", "/api/v1/objects/"+id, `{"set": {"a": "`+strings.Repeat("x", 2<<20)+`"}}`, nil)

	// Reload: a new front-end user appears; a broken file is refused with
	// its reason and the running configuration stays.
	cfgPath := s.cmd.Args[2]
	orig, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(cfgPath, append(orig, []byte("  bob: {views: {by-type: r}}\n")...), 0o644)
	ops.must(200, "POST", "/api/v1/reload", "", nil)
	ops.must(200, "GET", "/api/v1/users/bob", "", nil)
	os.WriteFile(cfgPath, append(orig, []byte("  carol: {views: {nowhere: r}}\n")...), 0o644)
	if b := ops.must(400, "POST", "/api/v1/reload", "", nil); !strings.Contains(b, "nowhere") {
		t.Fatalf("refused reload: %s", b)
	}
	ops.must(200, "GET", "/api/v1/users/bob", "", nil)
	ops.must(404, "GET", "/api/v1/users/carol", "", nil)
	// Admin users reload too: a new one logs in at once, a removed one no more.
	cfgText := strings.Replace(string(orig), "    grafana: {role: read", "    late: {role: read, password_hash: \""+string(hash)+"\"}\n    grafana: {role: read", 1)
	os.WriteFile(cfgPath, []byte(strings.Replace(cfgText, "    ops: {role: full", "    gone: {role: full", 1)), 0o644)
	ops.must(200, "POST", "/api/v1/reload", "", nil)
	(adminClient{t, s.admin, func(r *http.Request) { r.SetBasicAuth("late", "ops-password") }}).must(200, "GET", "/api/v1/whoami", "", nil)
	ops.must(401, "GET", "/api/v1/whoami", "", nil)
	ops = adminClient{t, s.admin, func(r *http.Request) { r.SetBasicAuth("gone", "ops-password") }}
	ops.must(200, "POST", "/api/v1/reload", "", nil)

	// Prometheus metrics need the read role, and count the API's requests.
	anon.must(401, "GET", "/metrics", "", nil)
	if b := grafana.must(200, "GET", "/metrics", "", nil); !strings.Contains(b, `frontend="admin"`) {
		t.Fatalf("metrics lack the admin API's requests:\n%.2000s", b)
	}

	// The OpenAPI description is served.
	var doc struct {
		Paths map[string]any `json:"paths"`
	}
	anon.must(200, "GET", "/api/v1/openapi.json", "", &doc)
	if doc.Paths["/api/v1/objects/{id}"] == nil {
		t.Fatalf("openapi paths: %v", doc.Paths)
	}

	// Writes and failed logins are in the audit log, with who and how.
	audit, err := os.ReadFile(filepath.Join(dataDir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"op":"update","result":"ok","user":"ops","via":"basic","id":"` + id + `"`,
		`"op":"delete","result":"ok","user":"ops"`,
		`"op":"job run","result":"ok","user":"ops","via":"basic","job":"gc"`,
		`"op":"login","result":"denied","user":"ops","method":"password"`,
		`"frontend":"admin"`,
	} {
		if !strings.Contains(string(audit), want) {
			t.Errorf("audit log lacks %s:\n%s", want, audit)
		}
	}

	logs := s.stderr.String()
	for _, secret := range []string{"ops-password", grafanaToken, s.token} {
		if strings.Contains(logs, secret) {
			t.Fatalf("a secret is in the server's log")
		}
	}
	s.stop(t)
}
