package sftp

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/backendtest"
	"github.com/datagate/datagate/backends/sftp/sftptest"
)

// fixture is a server whose root holds files under sub, and a known_hosts
// file for it.
type fixture struct {
	srv        *sftptest.Server
	dir        string // the server's root on disk
	knownHosts string
}

func newFixture(t *testing.T, sub string, files map[string][]byte) *fixture {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, sub, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
		t.Fatal(err)
	}
	srv := sftptest.NewServer(t, dir)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(srv.KnownHostsLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: srv, dir: dir, knownHosts: kh}
}

func (f *fixture) passwordConfig() Config {
	return Config{Address: f.srv.Addr, User: f.srv.User, Password: f.srv.Password, KnownHosts: f.knownHosts, Timeout: 5 * time.Second}
}

func (f *fixture) keyFile(t *testing.T) string {
	kf := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(kf, f.srv.ClientKeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return kf
}

func newProvider(t *testing.T, cfg Config) *Provider {
	t.Helper()
	p, err := New("feed", cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// noTemps fails if a Put left a temporary file anywhere under dir.
func noTemps(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d iofs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), ".datagate-") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
}

func TestConformancePassword(t *testing.T) {
	var dir string
	backendtest.Run(t, func(t *testing.T, files map[string][]byte) backends.Provider {
		f := newFixture(t, "data/feed", files)
		dir = f.dir
		cfg := f.passwordConfig()
		cfg.Root = "/data/feed"
		return newProvider(t, cfg)
	})
	noTemps(t, dir)
}

func TestConformanceKey(t *testing.T) {
	var dir string
	backendtest.Run(t, func(t *testing.T, files map[string][]byte) backends.Provider {
		f := newFixture(t, "", files)
		dir = f.dir
		// Root empty: paths are relative to the login directory.
		return newProvider(t, Config{Address: f.srv.Addr, User: f.srv.User, KeyFile: f.keyFile(t), KnownHosts: f.knownHosts, Timeout: 5 * time.Second, MaxConns: 2})
	})
	noTemps(t, dir)
}

func TestKeyPassphrase(t *testing.T) {
	f := newFixture(t, "", map[string][]byte{"x": []byte("x")})
	key, err := ssh.ParseRawPrivateKey(f.srv.ClientKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKeyWithPassphrase(key, "", []byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	kf := filepath.Join(t.TempDir(), "id_enc")
	if err := os.WriteFile(kf, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Address: f.srv.Addr, User: f.srv.User, KeyFile: kf, KnownHosts: f.knownHosts}
	_, err = New("feed", cfg, nil)
	if !errors.Is(err, iofs.ErrInvalid) || !strings.Contains(err.Error(), "key_passphrase") {
		t.Fatalf("encrypted key without passphrase: %v, want an invalid-config error naming key_passphrase", err)
	}
	cfg.KeyPassphrase = "wrong"
	if _, err := New("feed", cfg, nil); !errors.Is(err, iofs.ErrInvalid) {
		t.Fatalf("wrong passphrase: %v, want invalid config", err)
	}
	cfg.KeyPassphrase = "s3cret"
	p := newProvider(t, cfg)
	if e, err := p.Stat(testCtx(t, 10*time.Second), "x"); err != nil || e.Size != 1 {
		t.Fatalf("Stat with an encrypted key: %+v, %v", e, err)
	}
}

func TestHostKeyRefused(t *testing.T) {
	f := newFixture(t, "", map[string][]byte{"x": []byte("x")})
	otherPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ssh.NewPublicKey(otherPub)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, line, want string
	}{
		{"mismatch", knownhosts.Line([]string{f.srv.Addr}, other), "does not match"},
		{"unknown host", knownhosts.Line([]string{"192.0.2.1:22"}, f.srv.HostKey), "is not in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kh := filepath.Join(t.TempDir(), "known_hosts")
			if err := os.WriteFile(kh, []byte(tc.line+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := f.passwordConfig()
			cfg.KnownHosts = kh
			p := newProvider(t, cfg)
			_, err := p.Stat(testCtx(t, 10*time.Second), "x")
			if !errors.Is(err, iofs.ErrPermission) {
				t.Fatalf("Stat: %v, want ErrPermission", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || !strings.Contains(msg, f.srv.Addr) {
				t.Fatalf("error %q does not say %q and name %s", msg, tc.want, f.srv.Addr)
			}
		})
	}
	t.Run("insecure", func(t *testing.T) {
		var logs bytes.Buffer
		cfg := f.passwordConfig()
		cfg.KnownHosts, cfg.InsecureIgnoreHostKey = "", true
		p, err := New("feed", cfg, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if !strings.Contains(logs.String(), "insecure_ignore_host_key") {
			t.Errorf("no warning logged for insecure_ignore_host_key: %q", logs.String())
		}
		if _, err := p.Stat(testCtx(t, 10*time.Second), "x"); err != nil {
			t.Fatalf("Stat with insecure_ignore_host_key: %v", err)
		}
	})
}

func TestWrongPassword(t *testing.T) {
	f := newFixture(t, "", map[string][]byte{"x": []byte("x")})
	cfg := f.passwordConfig()
	cfg.Password = "not-the-password"
	p := newProvider(t, cfg)
	_, err := p.Stat(testCtx(t, 10*time.Second), "x")
	if !errors.Is(err, iofs.ErrPermission) {
		t.Fatalf("Stat: %v, want ErrPermission", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "authentication") || !strings.Contains(msg, f.srv.Addr) || !strings.Contains(msg, `"feed"`) {
		t.Errorf("error %q does not explain the refused login", msg)
	}
	if strings.Contains(msg, cfg.Password) {
		t.Errorf("error %q shows the password", msg)
	}
}

func TestConfigErrors(t *testing.T) {
	f := newFixture(t, "", nil)
	good := f.passwordConfig()
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no address", func(c *Config) { c.Address = "" }, "address"},
		{"no user", func(c *Config) { c.User = "" }, "user"},
		{"no credentials", func(c *Config) { c.Password = "" }, "credentials"},
		{"missing known_hosts", func(c *Config) { c.KnownHosts = filepath.Join(t.TempDir(), "nope") }, "known_hosts"},
		{"missing key file", func(c *Config) { c.KeyFile = filepath.Join(t.TempDir(), "nope") }, "key_file"},
		{"negative timeout", func(c *Config) { c.Timeout = -1 }, "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			_, err := New("feed", cfg, nil)
			if !errors.Is(err, iofs.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an invalid-config error mentioning %q", err, tc.want)
			}
			if strings.Contains(err.Error(), f.srv.Password) {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
	p, err := New("feed", Config{Address: "example.invalid", User: "u", Password: "p", InsecureIgnoreHostKey: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.hostport != "example.invalid:22" || p.cfg.Timeout != defaultTimeout || p.cfg.MaxConns != defaultMaxConns {
		t.Errorf("defaults: hostport %s timeout %v max_conns %d", p.hostport, p.cfg.Timeout, p.cfg.MaxConns)
	}
	p.Close()
}

func TestErrorsNameProviderAddressPath(t *testing.T) {
	f := newFixture(t, "", map[string][]byte{"dir/x": []byte("x")})
	p := newProvider(t, f.passwordConfig())
	ctx := testCtx(t, 10*time.Second)
	_, err := p.Open(ctx, "dir/missing", 0, -1)
	if !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("Open missing: %v", err)
	}
	for _, want := range []string{`"feed"`, f.srv.Addr, "dir/missing"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), f.srv.Password) {
		t.Errorf("error %q shows the password", err)
	}
	for _, bad := range []string{"../x", "/dir/x", "dir/../../x", "", "."} {
		if _, err := p.Open(ctx, bad, 0, -1); !errors.Is(err, iofs.ErrInvalid) {
			t.Errorf("Open %q: %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := p.Open(ctx, "dir/x", 2, -1); !errors.Is(err, iofs.ErrInvalid) {
		t.Errorf("Open past the end: %v, want ErrInvalid", err)
	}
	if _, err := p.Stat(ctx, "dir"); !errors.Is(err, iofs.ErrInvalid) {
		t.Errorf("Stat of a directory: %v, want ErrInvalid", err)
	}
}

// elapsedUnavailable runs fn and checks it fails with ErrUnavailable
// within limit.
func elapsedUnavailable(t *testing.T, what string, limit time.Duration, fn func() error) {
	t.Helper()
	start := time.Now()
	err := fn()
	took := time.Since(start)
	if !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("%s while stalled: %v, want ErrUnavailable", what, err)
	}
	if took > limit {
		t.Errorf("%s took %v to fail, want under %v", what, took, limit)
	}
	t.Logf("%s failed after %v: %v", what, took.Round(time.Millisecond), err)
}

func TestStall(t *testing.T) {
	const timeout = 500 * time.Millisecond
	const limit = 2*timeout + 300*time.Millisecond // scheduling slack under -race
	files := backendtest.Fixture()
	f := newFixture(t, "", files)
	cfg := f.passwordConfig()
	cfg.Timeout = timeout
	p := newProvider(t, cfg)
	ctx := testCtx(t, 30*time.Second)

	rc, err := p.Open(ctx, "dir/b.bin", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}

	// The open reader holds its connection, so this dials a second one,
	// which is idle, not mid-handshake, when the stall begins.
	if _, err := p.Stat(ctx, "a.txt"); err != nil {
		t.Fatal(err)
	}
	f.srv.Stall(true)
	elapsedUnavailable(t, "Read", limit, func() error { _, err := io.Copy(io.Discard, rc); return err })
	elapsedUnavailable(t, "Stat", limit, func() error { _, err := p.Stat(ctx, "a.txt"); return err })
	elapsedUnavailable(t, "Open", limit, func() error {
		rc, err := p.Open(ctx, "a.txt", 0, -1)
		if err == nil {
			rc.Close()
		}
		return err
	})
	elapsedUnavailable(t, "List", limit, func() error { return p.List(ctx, "", func(backends.Entry) error { return nil }) })
	elapsedUnavailable(t, "Put", limit, func() error {
		return p.Put(ctx, "new.bin", bytes.NewReader(make([]byte, 3<<20)), 3<<20)
	})

	// A fresh provider is stuck in the SFTP version exchange, not a request.
	p2 := newProvider(t, cfg)
	elapsedUnavailable(t, "first Stat", limit, func() error { _, err := p2.Stat(ctx, "a.txt"); return err })

	// Cancelling ctx returns at once, whatever the watchdog's timeout.
	cfg.Timeout = time.Minute
	p3 := newProvider(t, cfg)
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := p3.Stat(cctx, "a.txt"); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("Stat with a 200ms ctx: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Stat with a 200ms ctx took %v", took)
	}

	f.srv.Stall(false)
	if _, err := p.Stat(ctx, "a.txt"); err != nil {
		t.Fatalf("Stat after the stall: %v", err)
	}
	if got := readAll(t, ctx, p, "dir/b.bin", 0, -1); !bytes.Equal(got, files["dir/b.bin"]) {
		t.Fatal("read after the stall differs")
	}
	noTemps(t, f.dir)
}

func readAll(t *testing.T, ctx context.Context, p *Provider, name string, off, n int64) []byte {
	t.Helper()
	rc, err := p.Open(ctx, name, off, n)
	if err != nil {
		t.Fatalf("Open %s: %v", name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return b
}

func TestDropReconnects(t *testing.T) {
	files := backendtest.Fixture()
	f := newFixture(t, "", files)
	p := newProvider(t, f.passwordConfig())
	ctx := testCtx(t, 30*time.Second)
	for i := range 3 {
		if _, err := p.Stat(ctx, "a.txt"); err != nil {
			t.Fatalf("Stat before drop %d: %v", i, err)
		}
		f.srv.Drop()
		if _, err := p.Stat(ctx, "a.txt"); err != nil {
			t.Fatalf("Stat right after drop %d: %v", i, err)
		}
		if got := readAll(t, ctx, p, "dir/b.bin", 0, -1); !bytes.Equal(got, files["dir/b.bin"]) {
			t.Fatalf("read after drop %d differs", i)
		}
	}
	// A reader whose connection is dropped fails cleanly.
	rc, err := p.Open(ctx, "dir/b.bin", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	f.srv.Drop()
	if _, err := io.Copy(io.Discard, rc); !errors.Is(err, backends.ErrUnavailable) {
		t.Fatalf("reading across a drop: %v, want ErrUnavailable", err)
	}
}

func TestPutFallbackRename(t *testing.T) {
	f := newFixture(t, "", map[string][]byte{"d/old": []byte("old content")})
	f.srv.DisablePosixRename(true)
	p := newProvider(t, f.passwordConfig())
	ctx := testCtx(t, 30*time.Second)
	for _, content := range []string{"first", "second, longer"} {
		if err := p.Put(ctx, "d/old", strings.NewReader(content), int64(len(content))); err != nil {
			t.Fatalf("Put: %v", err)
		}
		if got := readAll(t, ctx, p, "d/old", 0, -1); string(got) != content {
			t.Fatalf("after Put read %q, want %q", got, content)
		}
	}
	if !p.noPosixRename.Load() {
		t.Error("provider did not notice posix-rename is refused")
	}
	noTemps(t, f.dir)
}

func TestPutSizeMismatch(t *testing.T) {
	f := newFixture(t, "", nil)
	p := newProvider(t, f.passwordConfig())
	ctx := testCtx(t, 30*time.Second)
	for _, tc := range []struct {
		body string
		size int64
	}{{"short", 10}, {"longer than said", 3}} {
		if err := p.Put(ctx, "x", strings.NewReader(tc.body), tc.size); !errors.Is(err, iofs.ErrInvalid) {
			t.Errorf("Put %d bytes announced as %d: %v, want ErrInvalid", len(tc.body), tc.size, err)
		}
		if _, err := p.Stat(ctx, "x"); !errors.Is(err, iofs.ErrNotExist) {
			t.Errorf("failed Put left a file: %v", err)
		}
	}
	noTemps(t, f.dir)
}

func TestPutNoSpace(t *testing.T) {
	f := newFixture(t, "", nil)
	p := newProvider(t, f.passwordConfig())
	ctx := testCtx(t, 30*time.Second)
	f.srv.FailWrites(syscall.ENOSPC)
	err := p.Put(ctx, "full/x.bin", bytes.NewReader(make([]byte, 200000)), -1)
	if !errors.Is(err, backends.ErrNoSpace) {
		t.Fatalf("Put on a full disk: %v, want ErrNoSpace", err)
	}
	f.srv.FailWrites(nil)
	if _, err := p.Stat(ctx, "full/x.bin"); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("failed Put left a file: %v", err)
	}
	// The temporary file is removed in the same call, but its handle is
	// closed in the background: wait for the provider to settle.
	p.Close()
	noTemps(t, f.dir)
}

func TestListSymlinks(t *testing.T) {
	f := newFixture(t, "", map[string][]byte{"real/a": []byte("aaa"), "other/b": []byte("b")})
	for _, l := range [][2]string{{"../real/a", "links/to-file"}, {"../other", "links/to-dir"}, {"../nowhere", "links/dangling"}} {
		p := filepath.Join(f.dir, filepath.FromSlash(l[1]))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.Symlink(l[0], p); err != nil {
			t.Fatal(err)
		}
	}
	p := newProvider(t, f.passwordConfig())
	var got []string
	err := p.List(testCtx(t, 10*time.Second), "links", func(e backends.Entry) error {
		got = append(got, fmt.Sprintf("%s:%d", e.Path, e.Size))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[links/to-file:3]" {
		t.Errorf("List links = %v, want only the link to a file", got)
	}
}

func TestConcurrentUseBoundedConns(t *testing.T) {
	files := backendtest.Fixture()
	f := newFixture(t, "", files)
	cfg := f.passwordConfig()
	cfg.MaxConns = 2
	p := newProvider(t, cfg)
	ctx := testCtx(t, 60*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	// More open readers than connections: they share.
	readers := make([]io.ReadCloser, 6)
	for i := range readers {
		rc, err := p.Open(ctx, "dir/b.bin", int64(i)*1000, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		readers[i] = rc
	}
	for i, rc := range readers {
		wg.Go(func() {
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if err == nil && !bytes.Equal(b, files["dir/b.bin"][i*1000:i*1000+1<<20]) {
				err = fmt.Errorf("reader %d: wrong bytes", i)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	p.pool.mu.Lock()
	n := len(p.pool.conns)
	p.pool.mu.Unlock()
	if n > 2 {
		t.Errorf("%d connections open, max_conns is 2", n)
	}
}

func TestClosedProvider(t *testing.T) {
	f := newFixture(t, "", map[string][]byte{"x": []byte("x")})
	p := newProvider(t, f.passwordConfig())
	ctx := testCtx(t, 10*time.Second)
	rc, err := p.Open(ctx, "x", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	if _, err := p.Stat(ctx, "x"); err == nil {
		t.Error("Stat after Close succeeded")
	}
	if _, err := io.ReadAll(rc); err == nil {
		t.Error("read after Close succeeded")
	}
	rc.Close()
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want error
	}{
		{&pkgsftp.StatusError{Code: uint32(pkgsftp.ErrSSHFxNoSuchFile)}, iofs.ErrNotExist},
		{&pkgsftp.StatusError{Code: fxNoSuchPath}, iofs.ErrNotExist},
		{&pkgsftp.StatusError{Code: uint32(pkgsftp.ErrSSHFxPermissionDenied)}, iofs.ErrPermission},
		{&pkgsftp.StatusError{Code: uint32(pkgsftp.ErrSSHFxConnectionLost)}, backends.ErrUnavailable},
		{&pkgsftp.StatusError{Code: uint32(pkgsftp.ErrSSHFxOpUnsupported)}, errors.ErrUnsupported},
		{&pkgsftp.StatusError{Code: fxNoSpaceOnFilesystem}, backends.ErrNoSpace},
		{&pkgsftp.StatusError{Code: fxQuotaExceeded}, backends.ErrNoSpace},
		{&pkgsftp.StatusError{Code: uint32(pkgsftp.ErrSSHFxFailure)}, nil},
		{&os.PathError{Op: "remove", Path: "x", Err: os.ErrNotExist}, iofs.ErrNotExist},
		{pkgsftp.ErrSSHFxConnectionLost, backends.ErrUnavailable},
		{io.EOF, backends.ErrUnavailable},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, backends.ErrUnavailable},
		{&stallError{op: "stat", timeout: time.Second}, backends.ErrUnavailable},
		{context.DeadlineExceeded, backends.ErrUnavailable},
		{context.Canceled, nil},
		{&hostKeyError{addr: "h:22", err: &knownhosts.KeyError{}}, iofs.ErrPermission},
		{&authError{user: "u", err: errors.New("ssh: unable to authenticate")}, iofs.ErrPermission},
		{&sourceError{io.ErrUnexpectedEOF}, nil},
		{fmt.Errorf("bad: %w", iofs.ErrInvalid), iofs.ErrInvalid},
		{errors.New("something else"), nil},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestCancelledPutLeavesNothing(t *testing.T) {
	f := newFixture(t, "", nil)
	p := newProvider(t, f.passwordConfig())
	ctx := testCtx(t, 30*time.Second)
	if err := p.Put(ctx, "warm", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	// The create request is held by the stalled server when ctx ends; it
	// completes after the stall, and the abandoned temporary file must go.
	f.srv.Stall(true)
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := p.Put(cctx, "x", strings.NewReader("content"), 7); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Put with an expiring ctx: %v", err)
	}
	f.srv.Stall(false)
	waited := make(chan struct{})
	go func() { p.calls.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("abandoned calls did not finish")
	}
	noTemps(t, f.dir)
	if _, err := p.Stat(ctx, "x"); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("cancelled Put left a file: %v", err)
	}
}

// BenchmarkRead reads a 32 MiB file whole through the in-process server.
func BenchmarkRead(b *testing.B) {
	dir := b.TempDir()
	data := make([]byte, 32<<20)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(dir, "big"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	srv := sftptest.NewServer(b, dir)
	p, err := New("bench", Config{Address: srv.Addr, User: srv.User, Password: srv.Password, InsecureIgnoreHostKey: true}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		rc, err := p.Open(ctx, "big", 0, -1)
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, rc); err != nil || n != int64(len(data)) {
			b.Fatalf("read %d bytes: %v", n, err)
		}
		rc.Close()
	}
}
