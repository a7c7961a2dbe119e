package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"
	gossh "golang.org/x/crypto/ssh"
)

// fsync@openssh.com: OpenSSH's "put -f" flushes through it, and what a
// client fsyncs is readable by another session while its handle is still
// open.
func TestSFTPFsync(t *testing.T) {
	needTool(t, "sftp")
	s := startSFTPServer(t, "")
	dir := t.TempDir()
	data := writeRandom(t, filepath.Join(dir, "f.bin"), 3<<20+5)
	out, code := s.sftpBatch(t, dir, "put -f f.bin /by-date/2026-02-02/obs/flushed.bin\nget /by-type/obs/2026-02-02/flushed.bin back.bin\n")
	if code != 0 || strings.Contains(out, "does not support") {
		t.Fatalf("put -f: exit %d\n%s", code, out)
	}
	sameFile(t, filepath.Join(dir, "back.bin"), data)
	if !strings.Contains(s.stderr.String(), "fsync: pushed") {
		t.Fatalf("put -f sent no fsync the server acted on\n%s", out)
	}

	c, err := gossh.Dial("tcp", "127.0.0.1:"+s.port, &gossh.ClientConfig{
		User: "alice", Auth: []gossh.AuthMethod{gossh.PublicKeys(s.signer)},
		HostKeyCallback: gossh.FixedHostKey(s.hostKey), HostKeyAlgorithms: []string{gossh.KeyAlgoED25519},
		Timeout: 20 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := pkgsftp.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	f, err := sc.Create("/by-date/2026-02-03/obs/open.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data[:1<<20]); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	// The handle is open; OpenSSH's client, in its own session, reads
	// what was fsynced.
	out, code = s.sftpBatch(t, dir, "get /by-type/obs/2026-02-03/open.bin early.bin\n")
	if code != 0 {
		t.Fatalf("get during the upload: exit %d\n%s", code, out)
	}
	sameFile(t, filepath.Join(dir, "early.bin"), data[:1<<20])
	if _, err := f.Write(data[1<<20:]); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	out, code = s.sftpBatch(t, dir, "get /by-type/obs/2026-02-03/open.bin late.bin\n")
	if code != 0 {
		t.Fatalf("get after close: exit %d\n%s", code, out)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "late.bin"))
	if !bytes.Equal(got, data) {
		t.Fatalf("after close: %d bytes, want %d", len(got), len(data))
	}
}
