package webdav

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/cache"
	"github.com/datagate/datagate/backends/local"
	"github.com/datagate/datagate/fs/store"
	"github.com/datagate/datagate/views"
)

// env is a real store with views, a WebDAV server on loopback and two
// users: alice sees "files" (rwd, any path), "ro" (read only) and "dated"
// (rw, {date}/{name}), so her root holds one directory per view; bob sees
// only "secret", as his root.
type env struct {
	dir   string
	set   *views.Set
	st    *store.Store
	locks *LockStore
	srv   *Server
	ts    *httptest.Server
	users map[string]views.Profile
}

const password = "correct horse"

func newEnv(t testing.TB, opts ...func(*Options)) *env {
	t.Helper()
	set, err := views.NewSet(map[string]views.Def{
		"files":  {Path: "{path...}"},
		"ro":     {Path: "{name}"},
		"secret": {Path: "{name}"},
		"dated":  {Path: "{date}/{name}"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{dir: t.TempDir(), set: set, users: map[string]views.Profile{
		"alice": {Views: map[string]views.Rights{"files": views.All, "ro": views.Read, "dated": views.Read | views.Write}},
		"bob":   {Views: map[string]views.Rights{"secret": views.All}},
	}}
	src, err := local.New("disk", local.Config{Root: filepath.Join(e.dir, "src")})
	if err != nil {
		t.Fatal(err)
	}
	primary, err := local.New(store.PrimaryName, local.Config{Root: filepath.Join(e.dir, "objects")})
	if err != nil {
		t.Fatal(err)
	}
	e.st, err = store.Open(context.Background(), store.Options{
		Dir: e.dir, Providers: map[string]backends.Provider{"disk": src}, Primary: primary,
		Cache: cache.Options{ChunkSize: 64 << 10}, Derive: set.Derive, NoSync: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.st.Close() })
	if err := set.Attach(context.Background(), e.st); err != nil {
		t.Fatal(err)
	}
	if e.locks, err = NewLockStore(e.st.Index().DB(), LockOptions{}); err != nil {
		t.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{
		PasswordHash: func(u string) ([]byte, bool) {
			_, ok := e.users[u]
			return hash, ok
		},
		Tree:  e.tree,
		Store: e.st,
		Locks: e.locks,
		Views: set,
	}
	for _, f := range opts {
		f(&o)
	}
	if e.srv, err = New(o); err != nil {
		t.Fatal(err)
	}
	e.ts = httptest.NewServer(e.srv)
	t.Cleanup(e.ts.Close)
	return e
}

func (e *env) tree(user string) *views.Tree {
	p, ok := e.users[user]
	if !ok {
		return nil
	}
	return views.NewTree(views.TreeOptions{Set: e.set, Store: e.st, User: user, Profile: p})
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// req is one request's description.
type req struct {
	method, path, body string
	user               string // default alice
	hdr                map[string]string
}

// do sends r and returns the status, the body and the headers.
func (e *env) do(t testing.TB, r req) (int, string, http.Header) {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequestWithContext(ctxT(t), r.method, e.ts.URL+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.user == "" {
		r.user = "alice"
	}
	if r.user != "-" {
		hr.SetBasicAuth(r.user, password)
	}
	for k, v := range r.hdr {
		hr.Header.Set(k, v)
	}
	resp, err := e.ts.Client().Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", r.method, r.path, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// want sends r and fails unless the status is code.
func (e *env) want(t testing.TB, code int, r req) (string, http.Header) {
	t.Helper()
	got, body, h := e.do(t, r)
	if got != code {
		t.Fatalf("%s %s: status %d, want %d; body %q", r.method, r.path, got, code, trunc(body))
	}
	return body, h
}

func trunc(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
