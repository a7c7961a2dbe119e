package sftptest

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func dial(t *testing.T, s *Server, auth ssh.AuthMethod) *pkgsftp.Client {
	t.Helper()
	khFile := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(khFile, []byte(s.KnownHostsLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cb, err := knownhosts.New(khFile)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ssh.Dial("tcp", s.Addr, &ssh.ClientConfig{
		User: s.User, Auth: []ssh.AuthMethod{auth}, HostKeyCallback: cb, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { sc.Close() })
	c, err := pkgsftp.NewClient(sc)
	if err != nil {
		t.Fatalf("sftp client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConfinedToRoot(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "secret"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A symbolic link leading out of the root must not be followed.
	if err := os.Symlink("../secret", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	s := NewServer(t, root)
	c := dial(t, s, ssh.Password(s.Password))

	f, err := c.Create("/in.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("inside")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if b, err := os.ReadFile(filepath.Join(root, "in.txt")); err != nil || string(b) != "inside" {
		t.Fatalf("file written through sftp: %q, %v", b, err)
	}
	for _, p := range []string{"../secret", "/../secret", "../../secret", "link"} {
		if f, err := c.Open(p); err == nil {
			b, rerr := io.ReadAll(f)
			f.Close()
			if rerr == nil {
				t.Errorf("Open %q read %q from outside the root", p, b)
			}
		}
	}
	if _, err := c.Create("../escaped"); err == nil {
		if _, err := os.Stat(filepath.Join(base, "escaped")); err == nil {
			t.Error("Create ../escaped wrote outside the root")
		}
	}
}

func TestKeyAuthAndWrongPassword(t *testing.T) {
	s := NewServer(t, t.TempDir())
	signer, err := ssh.ParsePrivateKey(s.ClientKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, s, ssh.PublicKeys(signer))
	if _, err := c.Stat("/"); err != nil {
		t.Fatalf("Stat / with key auth: %v", err)
	}
	_, err = ssh.Dial("tcp", s.Addr, &ssh.ClientConfig{
		User: s.User, Auth: []ssh.AuthMethod{ssh.Password("wrong")},
		HostKeyCallback: ssh.FixedHostKey(s.HostKey), Timeout: 5 * time.Second,
	})
	if err == nil {
		t.Fatal("wrong password accepted")
	}
}

func TestStallAndDrop(t *testing.T) {
	s := NewServer(t, t.TempDir())
	c := dial(t, s, ssh.Password(s.Password))
	s.Stall(true)
	done := make(chan error, 1)
	go func() { _, err := c.Stat("/"); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("Stat answered while stalled: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	s.Stall(false)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Stat after the stall: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stat not answered after the stall ended")
	}

	s.Drop()
	select {
	case <-waitClosed(c):
	case <-time.After(5 * time.Second):
		t.Fatal("client connection still up after Drop")
	}
	if _, err := c.Stat("/"); err == nil {
		t.Fatal("Stat on a dropped connection succeeded")
	}
	// New connections are still accepted.
	c2 := dial(t, s, ssh.Password(s.Password))
	if _, err := c2.Stat("/"); err != nil {
		t.Fatalf("Stat on a new connection after Drop: %v", err)
	}
}

func TestFailWritesAndPosixRename(t *testing.T) {
	root := t.TempDir()
	s := NewServer(t, root)
	c := dial(t, s, ssh.Password(s.Password))
	s.FailWrites(errors.New("no space left on device"))
	f, err := c.Create("/a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("x")); err == nil {
		t.Error("write succeeded while FailWrites was set")
	}
	f.Close()
	s.FailWrites(nil)

	if err := os.WriteFile(filepath.Join(root, "b"), []byte("b"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.DisablePosixRename(true)
	var se *pkgsftp.StatusError
	if err := c.PosixRename("/b", "/a"); !errors.As(err, &se) || se.FxCode() != pkgsftp.ErrSSHFxOpUnsupported {
		t.Errorf("PosixRename while disabled: %v, want OP_UNSUPPORTED", err)
	}
	if err := c.Rename("/b", "/a"); err == nil {
		t.Error("plain Rename replaced an existing file")
	}
	s.DisablePosixRename(false)
	if err := c.PosixRename("/b", "/a"); err != nil {
		t.Errorf("PosixRename: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "a")); err != nil || string(b) != "b" {
		t.Errorf("after PosixRename a = %q, %v", b, err)
	}
}

func waitClosed(c *pkgsftp.Client) <-chan struct{} {
	ch := make(chan struct{})
	go func() { c.Wait(); close(ch) }()
	return ch
}
