package sftp

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/bcrypt"
	gossh "golang.org/x/crypto/ssh"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/cache"
	"github.com/datagate/datagate/backends/local"
	"github.com/datagate/datagate/fs/store"
	"github.com/datagate/datagate/views"
)

var testViews = map[string]views.Def{
	"by-date": {Path: "{date}/{type}/{name}"},
	"by-type": {Path: "{type}/{date}/{name}"},
	"secret":  {Path: "{name}"},
}

const testPassword = "correct horse"

// hostKeyDir holds host keys made once, copied into each test's data
// directory: generating RSA keys for every test would dominate the run.
var (
	hostKeyOnce sync.Once
	hostKeyDir  string
	testHash    []byte
)

type testEnv struct {
	dir    string
	st     *store.Store
	set    *views.Set
	srv    *Server
	addr   string
	key    gossh.Signer   // alice's
	more   []gossh.Signer // alice's too: ECDSA and RSA
	other  gossh.Signer   // a key nobody has
	rights map[string]map[string]views.Rights
}

func newTestEnv(t testing.TB, tweak func(*Options)) *testEnv {
	t.Helper()
	hostKeyOnce.Do(func() {
		d, err := os.MkdirTemp("", "sftp-hostkeys-")
		if err != nil {
			panic(err)
		}
		if _, _, err := loadHostKeys(d); err != nil {
			panic(err)
		}
		hostKeyDir = d
		testHash, _ = bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.DefaultCost)
	})
	e := &testEnv{dir: t.TempDir()}
	for _, f := range []string{ed25519KeyFile, rsaKeyFile} {
		b, err := os.ReadFile(filepath.Join(hostKeyDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(e.dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if e.set, err = views.NewSet(testViews, nil); err != nil {
		t.Fatal(err)
	}
	primary, err := local.New(store.PrimaryName, local.Config{Root: filepath.Join(e.dir, "objects")})
	if err != nil {
		t.Fatal(err)
	}
	e.st, err = store.Open(context.Background(), store.Options{
		Dir: e.dir, Providers: map[string]backends.Provider{}, Primary: primary,
		Cache: cache.Options{ChunkSize: 64 << 10}, Derive: e.set.Derive, NoSync: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.st.Close() })
	if err := e.set.Attach(context.Background(), e.st); err != nil {
		t.Fatal(err)
	}
	e.key = newKey(t)
	e.other = newKey(t)
	e.more = append([]gossh.Signer(nil), moreKeys(t)...)

	e.rights = map[string]map[string]views.Rights{
		"alice": {"by-date": views.All, "by-type": views.All},
		"bob":   {"by-type": views.Read},
	}
	opts := Options{
		Dir: e.dir,
		Account: func(user string) (Account, bool) {
			switch user {
			case "alice":
				pubs := []gossh.PublicKey{e.key.PublicKey()}
				for _, k := range e.more {
					pubs = append(pubs, k.PublicKey())
				}
				return Account{PasswordHash: testHash, AuthorizedKeys: pubs}, true
			case "bob":
				return Account{PasswordHash: testHash}, true
			}
			return Account{}, false
		},
		Tree: func(user string) *views.Tree {
			return views.NewTree(views.TreeOptions{Set: e.set, Store: e.st, User: user, Profile: views.Profile{Views: e.rights[user]}, StatfsDir: e.dir})
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if testing.Verbose() {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if tweak != nil {
		tweak(&opts)
	}
	e.srv, err = New(opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = l.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.srv.Serve(l)
	}()
	t.Cleanup(func() {
		e.srv.Close()
		<-done
	})
	return e
}

func newKey(t testing.TB) gossh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var (
	moreOnce sync.Once
	moreKeyS []gossh.Signer
)

// moreKeys are an ECDSA and an RSA key, made once (RSA is slow to make).
func moreKeys(t testing.TB) []gossh.Signer {
	moreOnce.Do(func() {
		ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		for _, k := range []any{ek, rk} {
			s, err := gossh.NewSignerFromKey(k)
			if err != nil {
				panic(err)
			}
			moreKeyS = append(moreKeyS, s)
		}
	})
	return moreKeyS
}

func (e *testEnv) dial(user string, auth ...gossh.AuthMethod) (*gossh.Client, error) {
	return gossh.Dial("tcp", e.addr, &gossh.ClientConfig{
		User: user, Auth: auth, Timeout: 20 * time.Second,
		HostKeyCallback:   gossh.FixedHostKey(e.srv.HostKeys()[0]),
		HostKeyAlgorithms: []string{gossh.KeyAlgoED25519},
	})
}

// client logs alice in with her key and opens an SFTP session.
func (e *testEnv) client(t testing.TB) (*pkgsftp.Client, *gossh.Client) {
	t.Helper()
	c, err := e.dial("alice", gossh.PublicKeys(e.key))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	sc, err := pkgsftp.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	return sc, c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func (e *testEnv) tree(user string) *views.Tree {
	return views.NewTree(views.TreeOptions{Set: e.set, Store: e.st, User: user, Profile: views.Profile{Views: e.rights[user]}, StatfsDir: e.dir})
}
