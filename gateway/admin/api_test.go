package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/local"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
	"github.com/datagate/datagate/fs/store"
	"github.com/datagate/datagate/views"
	"github.com/datagate/datagate/views/audittest"
)

// apiHarness is a real store with a view set behind a real HTTP server.
type apiHarness struct {
	srv  *httptest.Server
	st   *store.Store
	logs *audittest.Log
	auth *Auth
}

const (
	readPass  = "read-password-1"
	fullPass  = "full-password-1"
	fullToken = "token-of-the-full-user-0123456789"
	dirToken  = "data-directory-token-0123456789abcdef"
)

func mustHash(t testing.TB, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func tokenSum(tok string) []byte {
	s := sha256.Sum256([]byte(tok))
	return s[:]
}

func newAPI(t *testing.T, edit func(*Options)) *apiHarness {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	set, err := views.NewSet(map[string]views.Def{
		"byk":  {Path: "{k}/{name}"},
		"only": {Path: "{name}", Filter: "k = w"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	lp, _ := local.New("disk", local.Config{Root: t.TempDir()})
	primary, _ := local.New(store.PrimaryName, local.Config{Root: filepath.Join(dir, "objects")})
	st, err := store.Open(ctx, store.Options{Dir: dir, Primary: primary, Derive: set.Derive,
		Providers: map[string]backends.Provider{"disk": lp}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := set.Attach(ctx, st); err != nil {
		t.Fatal(err)
	}
	h := &apiHarness{st: st, logs: &audittest.Log{}}
	h.auth = NewAuth([]Credential{
		{Name: "reader", Role: RoleRead, PasswordHash: mustHash(t, readPass)},
		{Name: "boss", Role: RoleFull, PasswordHash: mustHash(t, fullPass), TokenSHA256: tokenSum(fullToken)},
		{Name: "nobody", Role: RoleNone, PasswordHash: mustHash(t, "nobody-password")},
	}, dirToken)
	opts := Options{Store: st, Auth: h.auth, Views: set, Walk: st.Index().Walk, Logger: slog.New(slog.NewTextHandler(h.logs, nil))}
	if edit != nil {
		edit(&opts)
	}
	h.srv = httptest.NewServer(New(opts).Handler())
	t.Cleanup(h.srv.Close)
	return h
}

type creds func(*http.Request)

func basic(u, p string) creds { return func(r *http.Request) { r.SetBasicAuth(u, p) } }
func bearer(tok string) creds {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}
func anon() creds                       { return func(*http.Request) {} }
func asReader() creds                   { return basic("reader", readPass) }
func asBoss() creds                     { return basic("boss", fullPass) }
func body(s string) io.Reader           { return strings.NewReader(s) }
func noBody() io.Reader                 { return nil }
func bigBody(n int) io.Reader           { return io.LimitReader(neverEnding('x'), int64(n)) }
func (h *apiHarness) u(p string) string { return h.srv.URL + p }

type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// call makes one request and returns the status and body; out, when not
// nil, receives the decoded JSON body.
func (h *apiHarness) call(t *testing.T, c creds, method, path string, in io.Reader, out any) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, h.u(path), in)
	if err != nil {
		t.Fatal(err)
	}
	c(req)
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %q", method, path, err, b)
		}
	}
	return resp.StatusCode, b
}

func (h *apiHarness) register(t *testing.T, lines ...string) {
	t.Helper()
	if code, b := h.call(t, asBoss(), "POST", "/api/v1/objects", body(strings.Join(lines, "\n")+"\n"), nil); code != 200 {
		t.Fatalf("register: %d %s", code, b)
	}
}

func rec(name, k string) string {
	return fmt.Sprintf(`{"name":%q,"size":3,"meta":{"k":%q},"location":{"provider":"disk","path":%q}}`, name, k, name+".bin")
}

func TestAuthAndRoles(t *testing.T) {
	h := newAPI(t, func(o *Options) {
		o.Reload = func(context.Context) error { return nil }
	})
	for _, tc := range []struct {
		name         string
		c            creds
		method, path string
		want         int
	}{
		{"health is public", anon(), "GET", "/healthz", 200},
		{"readiness is public", anon(), "GET", "/readyz", 200},
		{"the description is public", anon(), "GET", "/api/v1/openapi.json", 200},
		{"no credentials", anon(), "GET", "/api/v1/whoami", 401},
		{"wrong password", basic("reader", "nope"), "GET", "/api/v1/whoami", 401},
		{"unknown user", basic("ghost", readPass), "GET", "/api/v1/whoami", 401},
		{"a password is not a token", bearer(fullPass), "GET", "/api/v1/whoami", 401},
		{"wrong token", bearer("x" + fullToken), "GET", "/api/v1/whoami", 401},
		{"malformed header", func(r *http.Request) { r.Header.Set("Authorization", "Digest x") }, "GET", "/api/v1/whoami", 401},
		{"reader reads", asReader(), "GET", "/api/v1/users", 200},
		{"reader may not reload", asReader(), "POST", "/api/v1/reload", 403},
		{"reader may not delete", asReader(), "DELETE", "/api/v1/objects/01KBN6B2J6YF0R2V1E4RMJ0M5Q", 403},
		{"reader may not register", asReader(), "POST", "/api/v1/objects", 403},
		{"reader may not trigger jobs", asReader(), "POST", "/api/v1/jobs/gc/run", 403},
		{"a user without a role reads nothing", basic("nobody", "nobody-password"), "GET", "/api/v1/users", 403},
		{"full user reloads", asBoss(), "POST", "/api/v1/reload", 200},
		{"full user by token", bearer(fullToken), "POST", "/api/v1/reload", 200},
		{"the data directory's token is full", bearer(dirToken), "POST", "/api/v1/reload", 200},
		{"bearer scheme in any case", func(r *http.Request) { r.Header.Set("Authorization", "bearer "+dirToken) }, "GET", "/api/v1/whoami", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, tc.method, h.u(tc.path), nil)
			tc.c(req)
			resp, err := h.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, resp.StatusCode, b, tc.want)
			}
			if tc.want == 401 && len(resp.Header.Values("WWW-Authenticate")) != 2 {
				t.Errorf("401 without both challenges: %q", resp.Header.Values("WWW-Authenticate"))
			}
			if tc.want >= 400 {
				var eb errorBody
				if json.Unmarshal(b, &eb) != nil || eb.Error == "" || eb.Kind != fs.Permission.String() {
					t.Errorf("error body %q: want JSON {error, kind: permission denied}", b)
				}
			}
		})
	}
	var who map[string]string
	h.call(t, bearer(fullToken), "GET", "/api/v1/whoami", nil, &who)
	if who["name"] != "boss" || who["role"] != "full" || who["via"] != "token" {
		t.Errorf("whoami by token: %v", who)
	}
	logs := h.logs.String()
	for _, secret := range []string{readPass, fullPass, fullToken, dirToken, "nobody-password"} {
		if strings.Contains(logs, secret) {
			t.Errorf("a secret (%.6s...) is in the log", secret)
		}
	}
	if !strings.Contains(logs, "op=login result=denied user=ghost method=password") || !strings.Contains(logs, "method=bearer") {
		t.Errorf("failed logins not logged with the name tried:\n%s", logs)
	}
}

// A verified Basic login is cached, but the cache never outlives a change
// of the configured hash or the removal of the user.
func TestBasicLoginCacheFollowsTheConfiguration(t *testing.T) {
	h := newAPI(t, nil)
	if code, _ := h.call(t, asReader(), "GET", "/api/v1/whoami", nil, nil); code != 200 {
		t.Fatal(code)
	}
	h.auth.SetUsers([]Credential{{Name: "reader", Role: RoleRead, PasswordHash: mustHash(t, "new-password")}}, dirToken)
	if code, _ := h.call(t, asReader(), "GET", "/api/v1/whoami", nil, nil); code != 401 {
		t.Fatalf("old password after a change: %d", code)
	}
	if code, _ := h.call(t, basic("reader", "new-password"), "GET", "/api/v1/whoami", nil, nil); code != 200 {
		t.Fatalf("new password: %d", code)
	}
	h.auth.SetUsers(nil, dirToken)
	if code, _ := h.call(t, basic("reader", "new-password"), "GET", "/api/v1/whoami", nil, nil); code != 401 {
		t.Fatalf("removed user: %d", code)
	}
	if code, _ := h.call(t, bearer(fullToken), "GET", "/api/v1/whoami", nil, nil); code != 401 {
		t.Fatalf("removed user's token: %d", code)
	}
}

// Pages through a search while another client keeps inserting matching
// objects: no object comes twice and every object that existed before
// the first page comes once.
func TestPagingStableUnderConcurrentInserts(t *testing.T) {
	h := newAPI(t, nil)
	const before = 1200
	var lines []string
	for i := range before {
		lines = append(lines, rec(fmt.Sprintf("pre-%04d", i), "v"))
	}
	h.register(t, lines...)
	pre := map[string]bool{}
	var page Page
	for after := ""; ; after = page.Next {
		page = Page{}
		if code, b := h.call(t, asReader(), "GET", "/api/v1/objects?q=k=v&limit=1000&after="+after, nil, &page); code != 200 {
			t.Fatal(code, string(b))
		}
		for _, o := range page.Objects {
			pre[o.ID] = true
		}
		if page.Next == "" {
			break
		}
	}
	if len(pre) != before {
		t.Fatalf("%d objects before the inserts, want %d", len(pre), before)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var inserted atomic.Int64
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				req, _ := http.NewRequestWithContext(ctx, "POST", h.u("/api/v1/objects"),
					body(rec(fmt.Sprintf("new-%d-%05d", w, i), "v")+"\n"+rec(fmt.Sprintf("new-%d-%05db", w, i), "v")+"\n"))
				req.SetBasicAuth("boss", fullPass)
				resp, err := h.srv.Client().Do(req)
				if err != nil {
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					inserted.Add(2)
				}
			}
		}()
	}
	seen := map[string]int{}
	var order []string
	pages := 0
	for after := ""; ; after = page.Next {
		page = Page{}
		if code, b := h.call(t, asReader(), "GET", "/api/v1/objects?q=k=v&limit=17&after="+after, nil, &page); code != 200 {
			t.Fatal(code, string(b))
		}
		pages++
		if len(page.Objects) > 17 {
			t.Fatalf("page of %d objects, limit 17", len(page.Objects))
		}
		for _, o := range page.Objects {
			seen[o.ID]++
			order = append(order, o.ID)
		}
		if page.Next == "" {
			break
		}
		// Give the writers time to land objects between pages.
		if pages%5 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	cancel()
	wg.Wait()
	for id, n := range seen {
		if n > 1 {
			t.Errorf("object %s returned %d times", id, n)
		}
	}
	for id := range pre {
		if seen[id] == 0 {
			t.Errorf("pre-existing object %s skipped", id)
		}
	}
	if !slices.IsSorted(order) {
		t.Error("pages are not in id order")
	}
	t.Logf("%d pages, %d objects seen, %d inserted during the walk", pages, len(seen), inserted.Load())
	if inserted.Load() == 0 {
		t.Fatal("no insert ran during the walk: the test proved nothing")
	}

	// Without conditions, every object, page by page.
	all := map[string]bool{}
	for after := ""; ; after = page.Next {
		page = Page{}
		if code, b := h.call(t, asReader(), "GET", "/api/v1/objects?limit=500&after="+after, nil, &page); code != 200 {
			t.Fatal(code, string(b))
		}
		for _, o := range page.Objects {
			all[o.ID] = true
		}
		if page.Next == "" {
			break
		}
	}
	for id := range seen {
		if !all[id] {
			t.Fatalf("listing everything lacks %s, which the search found", id)
		}
	}
	if int64(len(all)) < before+inserted.Load() {
		t.Errorf("listing everything: %d objects, %d were registered", len(all), before+inserted.Load())
	}

	// The limit is capped; a missing one is the default.
	page = Page{}
	h.call(t, asReader(), "GET", "/api/v1/objects?q=k=v&limit=100000", nil, &page)
	if page.Limit != MaxPageSize || len(page.Objects) != MaxPageSize || page.Next == "" {
		t.Errorf("limit 100000: limit %d, %d objects, next %q", page.Limit, len(page.Objects), page.Next)
	}
	page = Page{}
	h.call(t, asReader(), "GET", "/api/v1/objects?q=k=v", nil, &page)
	if page.Limit != DefaultPageSize || len(page.Objects) != DefaultPageSize {
		t.Errorf("no limit: limit %d, %d objects", page.Limit, len(page.Objects))
	}
	// The client pages through everything, or up to its limit.
	c := &Client{hc: h.srv.Client(), base: h.srv.URL}
	c.hc = &http.Client{Transport: authTransport{bearer(dirToken)}}
	n := 0
	if err := c.Find(context.Background(), []index.Cond{{Key: "k", Value: "v"}}, 1250, func(*fs.Object) error { n++; return nil }); err != nil || n != 1250 {
		t.Errorf("client find with limit 1250: %d, %v", n, err)
	}
}

type authTransport struct{ c creds }

func (a authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	a.c(r)
	return http.DefaultTransport.RoundTrip(r)
}

func TestBadInput(t *testing.T) {
	h := newAPI(t, func(o *Options) { o.MaxRegisterBody = 64 << 10 })
	h.register(t, rec("f", "v"))
	var page Page
	h.call(t, asReader(), "GET", "/api/v1/objects?q=k=v", nil, &page)
	if len(page.Objects) != 1 {
		t.Fatal(page)
	}
	obj := "/api/v1/objects/" + page.Objects[0].ID
	for _, tc := range []struct {
		name, method, path string
		in                 io.Reader
		want               int
		says               string
	}{
		{"malformed JSON", "PATCH", obj, body(`{"set": {"a": `), 400, "malformed request"},
		{"JSON of the wrong type", "PATCH", obj, body(`{"set": ["a"]}`), 400, `field "set"`},
		{"unknown field", "PATCH", obj, body(`{"set": {"a": "b"}, "colour": "red"}`), 400, `unknown field "colour"`},
		{"two JSON values", "PATCH", obj, body(`{"set": {"a": "b"}} {}`), 400, "after the JSON value"},
		{"empty body", "PATCH", obj, noBody(), 400, "empty request body"},
		{"nothing to change", "PATCH", obj, body(`{}`), 400, "nothing to change"},
		{"reserved key", "PATCH", obj, body(`{"set": {"dg.view": "x"}}`), 400, "reserved"},
		{"name as a key", "PATCH", obj, body(`{"delete": ["name"]}`), 400, `use the "name" field`},
		{"huge JSON body", "PATCH", obj, io.MultiReader(body(`{"set": {"a": "`), bigBody(2<<20), body(`"}}`)), 413, "too large"},
		{"huge crawl request", "POST", "/api/v1/crawl", io.MultiReader(body(`{"provider": "`), bigBody(2<<20), body(`"}`)), 413, "too large"},
		{"crawl with an unknown field", "POST", "/api/v1/crawl", body(`{"provider": "disk", "recursive": true}`), 400, `unknown field "recursive"`},
		{"malformed NDJSON line", "POST", "/api/v1/objects", body(rec("a", "v") + "\n\n{\"name\": \n"), 400, "line 3"},
		{"unknown NDJSON field", "POST", "/api/v1/objects", body(`{"name":"a","size":1,"colour":"red","location":{"provider":"disk","path":"a"}}` + "\n"), 400, "colour"},
		{"huge NDJSON body", "POST", "/api/v1/objects", bigNDJSON(128 << 10), 413, "too large"},
		{"unknown query parameter", "GET", "/api/v1/objects?q=k=v&limt=3", nil, 400, "limt"},
		{"bad limit", "GET", "/api/v1/objects?q=k=v&limit=-1", nil, 400, "limit"},
		{"bad cursor", "GET", "/api/v1/objects?q=k=v&after=zzz", nil, 400, "cursor"},
		{"bad id", "GET", "/api/v1/objects/nope", nil, 400, "nope"},
		{"unknown job", "POST", "/api/v1/jobs/nope/run", nil, 404, "no such job"},
		{"unknown user", "GET", "/api/v1/users/nope", nil, 404, "no such user"},
		{"unknown route", "GET", "/api/v2/nope", nil, 404, "no such route"},
		{"wrong method", "PUT", "/api/v1/reload", nil, 405, "allowed: POST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if in == nil {
				in = noBody()
			}
			code, b := h.call(t, asBoss(), tc.method, tc.path, in, nil)
			var eb errorBody
			if code != tc.want || json.Unmarshal(b, &eb) != nil || eb.Kind == "" || !strings.Contains(eb.Error, tc.says) {
				t.Fatalf("%d %s: want %d and a JSON error saying %q", code, b, tc.want, tc.says)
			}
		})
	}
	var eb errorBody
	_, b := h.call(t, asBoss(), "POST", "/api/v1/objects", body(rec("a", "v")+"\n\n{\"name\": \n"), nil)
	if json.Unmarshal(b, &eb) != nil || eb.Line != 3 || eb.Kind != fs.Invalid.String() {
		t.Errorf("NDJSON error body %s: want line 3, kind invalid", b)
	}
	// Nothing of the refused requests changed the object.
	var d Detail
	h.call(t, asReader(), "GET", obj, nil, &d)
	if len(d.Meta) != 1 || d.Meta["k"] != "v" {
		t.Errorf("metadata after refused patches: %v", d.Meta)
	}
}

func bigNDJSON(n int) io.Reader {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		b.WriteString(rec(fmt.Sprintf("big-%06d", i), "big") + "\n")
	}
	return strings.NewReader(b.String())
}

// Detail lists the paths in every view; a PATCH moves the object.
func TestDetailPatchDelete(t *testing.T) {
	h := newAPI(t, func(o *Options) {
		o.Inspect = fakeInspector{}
	})
	h.register(t, rec("f", "v"))
	var page Page
	h.call(t, asReader(), "GET", "/api/v1/objects?q=k=v", nil, &page)
	id := page.Objects[0].ID
	var d Detail
	if code, b := h.call(t, asReader(), "GET", "/api/v1/objects/"+id, nil, &d); code != 200 {
		t.Fatal(code, string(b))
	}
	if !slices.Equal(d.Paths, []ViewPath{{"byk", "v/f"}}) || d.Size != 3 || d.Locations == nil || d.Locations.Cached != 3 {
		t.Fatalf("detail: %+v", d)
	}
	d = Detail{}
	if code, b := h.call(t, asBoss(), "PATCH", "/api/v1/objects/"+id, body(`{"set":{"k":"w","x":"1"},"name":"g"}`), &d); code != 200 {
		t.Fatal(code, string(b))
	}
	if !slices.Equal(d.Paths, []ViewPath{{"byk", "w/g"}, {"only", "g"}}) || d.Meta["x"] != "1" || d.Name != "g" {
		t.Fatalf("after patch: %+v", d)
	}
	page = Page{}
	h.call(t, asReader(), "GET", "/api/v1/objects?q=k=w&q=x=1", nil, &page)
	if len(page.Objects) != 1 || page.Objects[0].ID != id {
		t.Fatalf("search by the new metadata: %+v", page)
	}
	d = Detail{}
	if code, b := h.call(t, asBoss(), "PATCH", "/api/v1/objects/"+id, body(`{"delete":["x"]}`), &d); code != 200 || d.Meta["x"] != "" {
		t.Fatal(code, string(b))
	}
	withID := func(r *http.Request) { r.SetBasicAuth("boss", fullPass); r.Header.Set("X-Request-Id", "req-42") }
	if code, _ := h.call(t, withID, "DELETE", "/api/v1/objects/"+id, nil, nil); code != 204 {
		t.Fatal(code)
	}
	if code, _ := h.call(t, asReader(), "GET", "/api/v1/objects/"+id, nil, nil); code != 404 {
		t.Fatalf("after delete: %d", code)
	}
	if code, _ := h.call(t, asBoss(), "PATCH", "/api/v1/objects/"+id, body(`{"set":{"a":"b"}}`), nil); code != 404 {
		t.Fatalf("patch after delete: %d", code)
	}
	logs := h.logs.String()
	for _, w := range []string{"op=update result=ok user=boss via=basic id=" + id, "op=delete result=ok user=boss", "frontend=admin request_id=req-42"} {
		if !strings.Contains(logs, w) {
			t.Errorf("audit log lacks %q:\n%s", w, logs)
		}
	}
}

type fakeInspector struct{}

func (fakeInspector) Stats(context.Context) (Stats, error) {
	return Stats{Objects: 7, Bytes: 70, Cache: CacheStats{Hits: 3, Misses: 1}, Stores: []StoreStats{{Name: "primary", UsedBytes: 70, FreeBytes: -1}}}, nil
}

func (fakeInspector) Replication(context.Context) (Replication, error) {
	return Replication{Stores: []QueueStats{{Name: "s2", Queued: 2}},
		Recent: []Transfer{{ID: "x", Store: "s2", Bytes: 1000, Seconds: 2}, {ID: "y", Store: "s2", Error: "disk full"}}}, nil
}

func (fakeInspector) Locations(ctx context.Context, id fs.ID) (Locations, error) {
	return Locations{Stores: []string{}, Pending: []string{}, Cached: 3}, nil
}

func TestStatsReplicationUsersViews(t *testing.T) {
	h := newAPI(t, func(o *Options) {
		o.Inspect = fakeInspector{}
		o.Users = func() []UserInfo {
			return []UserInfo{{Name: "alice", Views: []UserView{{View: "byk", Rights: "rw"}}, Credentials: []string{"password"}}}
		}
	})
	var st Stats
	h.call(t, asReader(), "GET", "/api/v1/stats", nil, &st)
	if st.Objects != 7 || st.Cache.HitRatio != 0.75 || len(st.Stores) != 1 {
		t.Errorf("stats: %+v", st)
	}
	var rs Replication
	h.call(t, asReader(), "GET", "/api/v1/replication", nil, &rs)
	if len(rs.Recent) != 2 || rs.Recent[0].BytesPerSecond != 500 || rs.Recent[1].Error != "disk full" {
		t.Errorf("replication: %+v", rs)
	}
	var us []UserInfo
	h.call(t, asReader(), "GET", "/api/v1/users", nil, &us)
	var u UserInfo
	h.call(t, asReader(), "GET", "/api/v1/users/alice", nil, &u)
	if len(us) != 1 || u.Name != "alice" || u.Views[0].Rights != "rw" {
		t.Errorf("users: %+v %+v", us, u)
	}
	var vs []ViewInfo
	h.call(t, asReader(), "GET", "/api/v1/views", nil, &vs)
	if len(vs) != 2 || vs[0].Name != "byk" || vs[1].Filter == "" {
		t.Errorf("views: %+v", vs)
	}
	// Without the sources, the routes say so.
	h2 := newAPI(t, nil)
	for _, p := range []string{"/api/v1/stats", "/api/v1/replication"} {
		if code, _ := h2.call(t, asReader(), "GET", p, nil, nil); code != 501 {
			t.Errorf("%s without an inspector: %d", p, code)
		}
	}
	if code, _ := h2.call(t, asBoss(), "POST", "/api/v1/reload", nil, nil); code != 501 {
		t.Errorf("reload without a reloader: %d", code)
	}
}

type fakeJob struct {
	mu   sync.Mutex
	st   JobStatus
	fail bool
}

func (j *fakeJob) Status() JobStatus { j.mu.Lock(); defer j.mu.Unlock(); return j.st }
func (j *fakeJob) Trigger(context.Context) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail {
		return fs.E(fs.Unavailable, "job", j.st.Name, errors.New("stopped"))
	}
	j.st.Runs++
	return nil
}

func TestJobsReloadReady(t *testing.T) {
	gc, acq := &fakeJob{st: JobStatus{Name: "gc"}}, &fakeJob{st: JobStatus{Name: "acquire-0"}, fail: true}
	var reloads atomic.Int32
	var ready atomic.Bool
	h := newAPI(t, func(o *Options) {
		o.Jobs = func() []Job { return []Job{gc, acq} }
		o.Reload = func(context.Context) error {
			if reloads.Add(1) == 2 {
				return errors.New("views.x: bad template")
			}
			return nil
		}
		o.Ready = []Check{{Name: "frontends", Check: func(context.Context) error {
			if !ready.Load() {
				return errors.New("starting")
			}
			return nil
		}}}
	})
	var js []JobStatus
	h.call(t, asReader(), "GET", "/api/v1/jobs", nil, &js)
	if len(js) != 2 || js[0].Name != "gc" {
		t.Fatalf("jobs: %+v", js)
	}
	var st JobStatus
	if code, b := h.call(t, asBoss(), "POST", "/api/v1/jobs/gc/run", nil, &st); code != 202 || st.Runs != 1 {
		t.Fatalf("trigger: %d %s", code, b)
	}
	if code, _ := h.call(t, asBoss(), "POST", "/api/v1/jobs/acquire-0/run", nil, nil); code != 502 {
		t.Fatalf("trigger of a stopped job: %d", code)
	}
	h.call(t, asReader(), "GET", "/api/v1/jobs/gc", nil, &st)
	if st.Runs != 1 {
		t.Fatalf("job status: %+v", st)
	}
	if code, _ := h.call(t, asBoss(), "POST", "/api/v1/reload", nil, nil); code != 200 {
		t.Fatal("reload", code)
	}
	code, b := h.call(t, asBoss(), "POST", "/api/v1/reload", nil, nil)
	if code != 400 || !strings.Contains(string(b), "views.x: bad template") {
		t.Fatalf("refused reload: %d %s", code, b)
	}
	if code, b := h.call(t, anon(), "GET", "/readyz", nil, nil); code != 503 || !strings.Contains(string(b), "starting") {
		t.Fatalf("readyz before ready: %d %s", code, b)
	}
	ready.Store(true)
	if code, _ := h.call(t, anon(), "GET", "/readyz", nil, nil); code != 200 {
		t.Fatalf("readyz: %d", code)
	}
}

// Every route is in openapi.json, with the role its method needs, and the
// file describes no route the server lacks.
func TestOpenAPICoversRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	s := New(Options{Store: nil})
	have := map[string]bool{}
	for _, rt := range s.routes() {
		key := strings.ToLower(rt.method) + " " + rt.pattern
		have[key] = true
		raw, ok := doc.Paths[rt.pattern][strings.ToLower(rt.method)]
		if !ok {
			t.Errorf("%s %s is not in openapi.json", rt.method, rt.pattern)
			continue
		}
		var op struct {
			Security *[]any `json:"security"`
			Role     string `json:"x-datagate-role"`
		}
		json.Unmarshal(raw, &op)
		want := "full"
		if rt.method == "GET" {
			want = "read"
		}
		switch {
		case rt.public && (op.Security == nil || len(*op.Security) != 0):
			t.Errorf("%s %s is public: openapi.json must say security: []", rt.method, rt.pattern)
		case !rt.public && op.Role != want:
			t.Errorf("%s %s: x-datagate-role %q, want %q", rt.method, rt.pattern, op.Role, want)
		}
	}
	for p, ops := range doc.Paths {
		for m := range ops {
			if m != "parameters" && !have[m+" "+p] {
				t.Errorf("openapi.json describes %s %s, which the server does not serve", m, p)
			}
		}
	}
	// And the server serves it.
	h := newAPI(t, nil)
	code, b := h.call(t, anon(), "GET", "/api/v1/openapi.json", nil, nil)
	if code != 200 || !bytes.Equal(b, OpenAPI()) {
		t.Errorf("GET /api/v1/openapi.json: %d", code)
	}
}
