package s3

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/cache"
	"github.com/datagate/datagate/backends/local"
	"github.com/datagate/datagate/fs/store"
	"github.com/datagate/datagate/views"
)

// testDefs are the views of the tests: two buckets of their own and a
// view by type over both, to push through one and read through another.
func testDefs() map[string]views.Def {
	return map[string]views.Def{
		"data":   {Path: "{path...}", Filter: "bucket = data", Set: map[string]string{"bucket": "data"}},
		"other":  {Path: "{path...}", Filter: "bucket = other", Set: map[string]string{"bucket": "other"}},
		"bytype": {Path: "{type}/{name}"},
		"secret": {Path: "{path...}", Filter: "bucket = secret", Set: map[string]string{"bucket": "secret"}},
	}
}

// Test users: alice sees data, other and bytype and may create buckets;
// bob reads data only and owns secret.
const (
	aliceKey, aliceSecret = "AKIAALICE", "alice-secret-key"
	bobKey, bobSecret     = "AKIABOB", "bob-secret-key-1"
)

type testEnv struct {
	srv   *Server
	st    *store.Store
	set   *views.Set
	url   string // http://127.0.0.1:port
	host  string // 127.0.0.1:port
	dir   string
	alice *minio.Client
	bob   *minio.Client
}

func newTestEnv(t testing.TB, mod ...func(*Options)) *testEnv {
	t.Helper()
	dir := t.TempDir()
	set, err := views.NewSet(testDefs(), nil)
	if err != nil {
		t.Fatal(err)
	}
	primary, err := local.New(store.PrimaryName, local.Config{Root: filepath.Join(dir, "objects")})
	if err != nil {
		t.Fatal(err)
	}
	disk, err := local.New("disk", local.Config{Root: filepath.Join(dir, "src")})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), store.Options{
		Dir: dir, Providers: map[string]backends.Provider{"disk": disk}, Primary: primary,
		Cache: cache.Options{ChunkSize: 64 << 10}, Derive: set.Derive, NoSync: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Attach(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Store: st, Views: set,
		Users: map[string]views.Profile{
			"alice": {Views: map[string]views.Rights{"data": views.All, "other": views.All, "bytype": views.All}, CreateViews: true},
			"bob":   {Views: map[string]views.Rights{"data": views.Read, "secret": views.All}},
		},
		Keys:      map[string]Key{aliceKey: {aliceSecret, "alice"}, bobKey: {bobSecret, "bob"}},
		UploadDir: filepath.Join(dir, "s3-uploads"),
		StatfsDir: dir,
	}
	for _, m := range mod {
		m(&opts)
	}
	t.Cleanup(func() { st.Close() }) // after the server's (cleanups run last first)
	srv, host := serve(t, opts)
	e := &testEnv{srv: srv, st: st, set: set, url: "http://" + host, host: host, dir: dir}
	e.alice = e.client(t, aliceKey, aliceSecret)
	e.bob = e.client(t, bobKey, bobSecret)
	return e
}

// serve starts a server with opts on a loopback port of its own until the
// test ends, and returns it with its address.
func serve(t testing.TB, opts Options) (*Server, string) {
	t.Helper()
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	return srv, ln.Addr().String()
}

func (e *testEnv) client(t testing.TB, id, secret string) *minio.Client {
	t.Helper()
	c, err := minio.New(e.host, &minio.Options{Creds: credentials.NewStaticV4(id, secret, ""), Region: DefaultRegion, BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
