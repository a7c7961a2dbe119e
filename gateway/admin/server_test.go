package admin

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/local"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
	"github.com/datagate/datagate/fs/ingest"
	"github.com/datagate/datagate/fs/store"
)

func newTestServer(t *testing.T, token string) (*httptest.Server, *store.Store, string) {
	t.Helper()
	dir, src := t.TempDir(), t.TempDir()
	lp, _ := local.New("disk", local.Config{Root: src})
	primary, _ := local.New(store.PrimaryName, local.Config{Root: filepath.Join(dir, "objects")})
	st, err := store.Open(context.Background(), store.Options{Dir: dir, Primary: primary, Providers: map[string]backends.Provider{"disk": lp}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := httptest.NewServer(NewServer(st, token, nil).Handler())
	t.Cleanup(srv.Close)
	return srv, st, src
}

func TestAPIRoundTrip(t *testing.T) {
	srv, st, src := newTestServer(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	os.WriteFile(filepath.Join(src, "f.bin"), []byte("0123456789abcdef"), 0o644)

	// The client, pointed at the test server instead of a socket.
	c := &Client{hc: srv.Client(), base: srv.URL}
	res, err := c.Register(ctx, strings.NewReader(`{"name":"f","meta":{"k":"v"},"location":{"provider":"disk","path":"f.bin","offset":4,"length":8}}`+"\n"), 0)
	if err != nil || res.Added != 1 {
		t.Fatalf("register: %+v %v", res, err)
	}
	var id fs.ID
	if err := c.Find(ctx, []index.Cond{{Key: "k", Value: "v"}}, 0, func(o *fs.Object) error { id = o.ID; return nil }); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := c.Read(ctx, id, &buf); err != nil || buf.String() != "456789ab" {
		t.Fatalf("read: %q %v", buf.String(), err)
	}
	// Range on content.
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/objects/"+id.String()+"/content", nil)
	req.Header.Set("Range", "bytes=2-4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || string(b) != "678" {
		t.Fatalf("range: %s %q", resp.Status, b)
	}
	o, err := c.Put(ctx, store.PutRequest{Name: "p", Meta: map[string]string{"k": "v"}, Size: 5}, strings.NewReader("hello"))
	if err != nil || o.Size != 5 || o.State != fs.StateStored {
		t.Fatalf("put: %+v %v", o, err)
	}
	if got, _ := st.Get(ctx, o.ID); got == nil || got.Name != "p" {
		t.Fatal("pushed object not in the store")
	}
	if err := c.Delete(ctx, o.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, o.ID); fs.KindOf(err) != fs.NotExist {
		t.Fatalf("get after delete: %v", err)
	}
	// A malformed line keeps its line number and kind across the wire.
	_, err = c.Register(ctx, strings.NewReader("\n{bad\n"), 0)
	var le *ingest.LineError
	if !errors.As(err, &le) || le.Line != 2 || fs.KindOf(err) != fs.Invalid {
		t.Fatalf("malformed: %v", err)
	}
	// Bad ids and unknown providers are 400s.
	for _, u := range []string{"/api/v1/objects/not-an-id", "/api/v1/objects/not-an-id/content"} {
		resp, _ := http.Get(srv.URL + u)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s: %s", u, resp.Status)
		}
		resp.Body.Close()
	}
	stats, err := c.Crawl(ctx, CrawlRequest{Provider: "nope"}, nil)
	if fs.KindOf(err) != fs.Invalid {
		t.Fatalf("crawl of an unknown provider: %+v %v", stats, err)
	}
	stats, err = c.Crawl(ctx, CrawlRequest{Provider: "disk"}, nil)
	if err != nil || stats.Listed != 1 || stats.Added != 1 {
		t.Fatalf("crawl: %+v %v", stats, err)
	}
}

func TestTokenRequired(t *testing.T) {
	srv, _, _ := newTestServer(t, "s3cret-token-s3cret-token-s3cret")
	for _, tc := range []struct {
		path, auth string
		want       int
	}{
		{"/healthz", "", 200},
		{"/api/v1/objects?q=a=b", "", 401},
		{"/api/v1/objects?q=a=b", "Bearer wrong", 401},
		{"/api/v1/objects?q=a=b", "Bearer s3cret-token-s3cret-token-s3cret", 200},
	} {
		req, _ := http.NewRequest("GET", srv.URL+tc.path, nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s with %q: %d, want %d", tc.path, tc.auth, resp.StatusCode, tc.want)
		}
	}
}

// Content whose provider fails before the first byte is an error status
// naming the cause, not a 200 with a body cut short.
func TestContentProviderFailureIsAStatus(t *testing.T) {
	srv, _, src := newTestServer(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	os.WriteFile(filepath.Join(src, "gone.bin"), []byte("0123456789"), 0o644)
	c := &Client{hc: srv.Client(), base: srv.URL}
	if _, err := c.Register(ctx, strings.NewReader(`{"name":"gone","size":10,"meta":{"k":"gone"},"location":{"provider":"disk","path":"gone.bin"}}`+"\n"), 0); err != nil {
		t.Fatal(err)
	}
	var id fs.ID
	if err := c.Find(ctx, []index.Cond{{Key: "k", Value: "gone"}}, 0, func(o *fs.Object) error { id = o.ID; return nil }); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(src, "gone.bin"))
	resp, err := srv.Client().Get(srv.URL + "/api/v1/objects/" + id.String() + "/content")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 400 || !strings.Contains(string(body), "gone.bin") {
		t.Fatalf("status %d, body %q: want an error naming the source", resp.StatusCode, body)
	}
}
