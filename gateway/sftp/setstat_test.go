package sftp

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/views"
)

// openSSHBatch runs OpenSSH's sftp client as alice with a fresh key the
// server accepts, the commands in batch, from dir.
func (e *testEnv) openSSHBatch(t *testing.T, dir, batch string) {
	t.Helper()
	if _, err := exec.LookPath("sftp"); err != nil {
		t.Skip("OpenSSH's sftp client is not installed")
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := gossh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "id")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if e.key, err = gossh.NewSignerFromKey(priv); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(e.addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sftp", "-F", "/dev/null", "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no",
		"-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes", "-o", "IdentityFile="+keyFile, "-o", "BatchMode=yes",
		"-P", port, "-b", "-", "alice@"+host)
	cmd.Dir, cmd.Stdin = dir, strings.NewReader(batch)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sftp: %v\n%s", err, out)
	}
}

// object is the record of the object at p in alice's tree.
func (e *testEnv) object(t *testing.T, p string) *fs.Object {
	t.Helper()
	fi, err := e.tree("alice").Stat(ctxT(t), p)
	if err != nil {
		t.Fatal(err)
	}
	o, err := e.st.Get(ctxT(t), fi.ID())
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// A setstat that only sets the times (put -p, rclone's set-modtime, a
// touch through sshfs) sets them on the object: no new version.
func TestSetstatTimesOnlyKeepsTheVersion(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := ctxT(t)
	const p = "/by-date/2026-01-02/obs/kept"
	data := []byte("content that must not be rewritten\n")
	if _, err := e.tree("alice").Create(ctx, p, bytes.NewReader(data), views.CreateOptions{Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	before := e.object(t, p)
	c, _ := e.client(t)

	// OpenSSH's put -p: OPEN (create, truncate), WRITEs, FSETSTAT of the
	// mode and times, CLOSE: one version, with the local file's mtime.
	dir := t.TempDir()
	up := bytes.Repeat([]byte("uploaded with put -p\n"), 5000)
	sent := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.WriteFile(filepath.Join(dir, "up"), up, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(dir, "up"), sent, sent); err != nil {
		t.Fatal(err)
	}
	e.openSSHBatch(t, dir, "put -p up /by-date/2026-01-02/obs/new\n")
	o, got := e.object(t, "/by-date/2026-01-02/obs/new"), get(t, c, "/by-date/2026-01-02/obs/new")
	if !bytes.Equal(got, up) || !o.ModTime.Equal(sent) {
		t.Fatalf("put -p stored %d bytes (equal %v) with mtime %v, want %v", len(got), bytes.Equal(got, up), o.ModTime, sent)
	}
	if o.Version != 0 {
		t.Fatalf("put -p made version %d of a new file, want one version (0)", o.Version)
	}

	// SETSTAT of the times on the path (rclone's set-modtime).
	mt := time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := c.Chtimes(p, mt, mt); err != nil {
		t.Fatal(err)
	}
	after, got := e.object(t, p), get(t, c, p)
	if after.ID != before.ID || after.Version != before.Version || !bytes.Equal(got, data) || !after.ModTime.Equal(mt) {
		t.Fatalf("setstat of the times: id %v→%v version %d→%d mtime %v (want %v)", before.ID, after.ID, before.Version, after.Version, after.ModTime, mt)
	}

	// FSETSTAT of the times on a handle opened for writing but never
	// written (sshfs's touch of an existing file).
	f, err := c.OpenFile(p, os.O_WRONLY)
	if err != nil {
		t.Fatal(err)
	}
	mt = time.Date(2011, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := c.Chtimes(p, mt, mt); err != nil { // the path of an open handle: routed to it
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	after, got = e.object(t, p), get(t, c, p)
	if after.ID != before.ID || after.Version != before.Version || !bytes.Equal(got, data) || !after.ModTime.Equal(mt) {
		t.Fatalf("times set on an unwritten handle: id %v→%v version %d→%d mtime %v (want %v)", before.ID, after.ID, before.Version, after.Version, after.ModTime, mt)
	}
}
