package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/cache"
	httpbackend "github.com/datagate/datagate/backends/http"
	"github.com/datagate/datagate/backends/local"
	sftpbackend "github.com/datagate/datagate/backends/sftp"
	"github.com/datagate/datagate/backends/sftp/sftptest"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/store"
)

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7+i>>10) ^ seed
	}
	return b
}

// TestLazyReadsFromRealProvidersSurviveRestart registers byte ranges of one
// large file on each of an HTTP server, an SFTP server and a local
// directory, reads them lazily through the Store, then restarts the store
// with every provider gone and reads them again from the cache.
func TestLazyReadsFromRealProvidersSurviveRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	big := pattern(3<<20+12345, 0x5a)
	srcDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(srcDir, "fields.grib"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(http.FileServer(http.Dir(srcDir)))
	defer web.Close()
	sftpSrv := sftptest.NewServer(t, srcDir)
	keyFile := filepath.Join(t.TempDir(), "key")
	os.WriteFile(keyFile, sftpSrv.ClientKeyPEM, 0o600)
	knownHosts := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(knownHosts, []byte(sftpSrv.KnownHostsLine+"\n"), 0o600)

	dataDir := t.TempDir()
	openStore := func() *store.Store {
		t.Helper()
		hp, err := httpbackend.New("web", httpbackend.Config{URL: web.URL + "/", Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		sp, err := sftpbackend.New("feed", sftpbackend.Config{Address: sftpSrv.Addr, User: sftpSrv.User, KeyFile: keyFile, KnownHosts: knownHosts, Timeout: 2 * time.Second}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sp.Close() })
		lp, err := local.New("disk", local.Config{Root: srcDir})
		if err != nil {
			t.Fatal(err)
		}
		primary, _ := local.New(store.PrimaryName, local.Config{Root: filepath.Join(dataDir, "objects")})
		st, err := store.Open(ctx, store.Options{
			Dir: dataDir, Primary: primary, Cache: cache.Options{ChunkSize: 256 << 10},
			Providers: map[string]backends.Provider{"web": hp, "feed": sp, "disk": lp},
		})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	type rng struct{ off, n int64 }
	ranges := []rng{{0, 1000}, {1000, 1 << 20}, {1<<20 + 1000, 2 << 20}, {int64(len(big)) - 12345, 12345}}
	st := openStore()
	var objs []*fs.Object
	for _, prov := range []string{"web", "feed", "disk"} {
		for _, r := range ranges {
			sum := sha256.Sum256(big[r.off : r.off+r.n])
			objs = append(objs, &fs.Object{
				Name: prov, Size: r.n, SHA256: sum[:], Meta: map[string]string{"provider": prov},
				Source: fs.Location{Provider: prov, Path: "fields.grib", Offset: r.off, Length: r.n},
			})
		}
	}
	if _, err := st.Register(ctx, objs); err != nil {
		t.Fatal(err)
	}
	for i, o := range objs {
		r := ranges[i%len(ranges)]
		rd, err := st.Open(ctx, o.ID)
		if err != nil {
			t.Fatalf("%s %v: open: %v", o.Name, r, err)
		}
		got, err := io.ReadAll(rd)
		rd.Close()
		if err != nil || !bytes.Equal(got, big[r.off:r.off+r.n]) {
			t.Fatalf("%s range %v: %d bytes, %v", o.Name, r, len(got), err)
		}
	}
	for _, o := range objs {
		o := o
		deadline := time.Now().Add(10 * time.Second)
		for {
			cur, _ := st.Get(ctx, o.ID)
			if cur.State == fs.StateCached {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never became cached (state %v)", o.Name, cur.State)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// Every provider goes away.
	web.Close()
	sftpSrv.Close()
	os.Remove(filepath.Join(srcDir, "fields.grib"))

	st = openStore()
	defer st.Close()
	for i, o := range objs {
		r := ranges[i%len(ranges)]
		rd, err := st.Open(ctx, o.ID)
		if err != nil {
			t.Fatalf("after restart %s %v: %v", o.Name, r, err)
		}
		got, err := io.ReadAll(rd)
		rd.Close()
		if err != nil || !bytes.Equal(got, big[r.off:r.off+r.n]) {
			t.Fatalf("after restart %s range %v: %d bytes, %v", o.Name, r, len(got), err)
		}
	}
}

// TestUnreachableProviderFailsInTime: a registered object on a provider
// that does not answer fails with an error naming the provider and the
// location within its timeout, never a hang.
func TestUnreachableProviderFailsInTime(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stall := make(chan struct{})
	defer close(stall)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	hp, _ := httpbackend.New("slow", httpbackend.Config{URL: hang.URL + "/", Timeout: 300 * time.Millisecond, Retries: 1})
	dataDir := t.TempDir()
	primary, _ := local.New(store.PrimaryName, local.Config{Root: filepath.Join(dataDir, "objects")})
	st, err := store.Open(ctx, store.Options{Dir: dataDir, Primary: primary, Providers: map[string]backends.Provider{"slow": hp}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	o := &fs.Object{Size: 100, Source: fs.Location{Provider: "slow", Path: "x/y.bin"}}
	st.Register(ctx, []*fs.Object{o})
	start := time.Now()
	rd, err := st.Open(ctx, o.ID)
	if err == nil {
		_, err = io.ReadAll(rd)
		rd.Close()
	}
	took := time.Since(start)
	if err == nil {
		t.Fatal("read from a stalled provider succeeded")
	}
	if fs.KindOf(err) != fs.Unavailable {
		t.Errorf("kind %v, want unavailable: %v", fs.KindOf(err), err)
	}
	if took > 5*time.Second {
		t.Errorf("took %v to fail; the provider timeout is 300ms", took)
	}
	for _, want := range []string{"slow", "x/y.bin"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error does not name %q: %v", want, err)
		}
	}
}
