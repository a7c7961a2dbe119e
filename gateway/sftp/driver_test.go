package sftp

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"testing"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/datagate/datagate/backends"
	sftpbackend "github.com/datagate/datagate/backends/sftp"
)

// Our own SFTP provider driver against our own server: the driver's
// atomic put (temporary name, then posix-rename), ranged reads, stat,
// list and delete, through a view. The backend conformance suite itself
// does not fit a view: its fixture mixes path depths, a template fixes one.
func TestProviderDriverAgainstGateway(t *testing.T) {
	e := newTestEnv(t, nil)
	dir := t.TempDir()
	// The driver reads its key from a file: give alice one more key.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := gossh.MarshalPrivateKey(priv, "driver")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "id")
	os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600)
	signer, _ := gossh.NewSignerFromKey(priv)
	e.more = append(e.more, signer) // before any connection reads it
	kh := filepath.Join(dir, "known_hosts")
	var lines string
	for _, k := range e.srv.HostKeys() {
		lines += knownhosts.Line([]string{e.addr}, k) + "\n"
	}
	os.WriteFile(kh, []byte(lines), 0o600)

	p, err := sftpbackend.New("gw", sftpbackend.Config{
		Address: e.addr, User: "alice", KeyFile: keyFile, KnownHosts: kh, Root: "/by-date/2026-01-01",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := ctxT(t)
	data := randBytes(t, 3<<20+17)
	if err := p.Put(ctx, "obs/x.bin", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	rc, err := p.Open(ctx, "obs/x.bin", 1<<20, 4096)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data[1<<20:1<<20+4096]) {
		t.Fatalf("ranged read: %d bytes, %v", len(got), err)
	}
	ent, err := p.Stat(ctx, "obs/x.bin")
	if err != nil || ent.Size != int64(len(data)) {
		t.Fatalf("stat: %+v %v", ent, err)
	}
	var listed []string
	if err := p.List(ctx, "obs", func(en backends.Entry) error { listed = append(listed, en.Path); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0] != "obs/x.bin" {
		t.Fatalf("list: %v", listed)
	}
	// Replaced atomically; read back through the other view.
	if err := p.Put(ctx, "obs/x.bin", bytes.NewReader([]byte("short")), -1); err != nil {
		t.Fatal(err)
	}
	c, _ := e.client(t)
	if got := string(get(t, c, "/by-type/obs/2026-01-01/x.bin")); got != "short" {
		t.Fatalf("after replace: %q", got)
	}
	if err := p.Delete(ctx, "obs/x.bin"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Stat(ctx, "obs/x.bin"); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("after delete: %v", err)
	}
}
