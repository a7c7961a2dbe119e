package sftp

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/datagate/datagate/views"
)

// A file whose content cannot be read (its stored copy unreadable: the
// store sets it aside, "set aside as DATA/objects/…corrupt") fails over
// SFTP, scp -O and md5sum with a message that names the client's path
// and no path of the server's data directory: the store's message went
// to the client as it was (SFTP status text, scp's and md5sum's stderr).
func TestUnavailableHidesServerPaths(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := ctxT(t)
	const p = "/by-date/2026-01-01/obs/lost.txt"
	info, err := e.tree("alice").Create(ctx, p, bytes.NewReader([]byte("content")), views.CreateOptions{Size: 7})
	if err != nil {
		t.Fatal(err)
	}
	var stored string
	filepath.WalkDir(filepath.Join(e.dir, "objects"), func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == info.ID().String() {
			stored = path
		}
		return nil
	})
	if stored == "" {
		t.Fatal("stored copy not found")
	}
	// A directory where the file was: unreadable, whatever the user.
	if err := os.Remove(stored); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(stored, 0o700); err != nil {
		t.Fatal(err)
	}
	leaks := func(what, msg string) {
		t.Helper()
		if strings.Contains(msg, e.dir) || strings.Contains(msg, "objects/") || strings.Contains(msg, info.ID().String()) {
			t.Errorf("%s: the message names the server's files: %q", what, msg)
		}
	}

	sc, c := e.client(t)
	f, err := sc.Open(p)
	if err == nil {
		_, err = io.ReadAll(f)
		f.Close()
	}
	if err == nil {
		t.Fatal("SFTP read of an unreadable file succeeded")
	}
	leaks("sftp", err.Error())

	for _, cmd := range []string{"md5sum " + p, "scp -f " + p} {
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		s.Stderr = &stderr
		in, _ := s.StdinPipe()
		out, _ := s.StdoutPipe()
		if err := s.Start(cmd); err != nil {
			t.Fatal(err)
		}
		var said string
		if strings.HasPrefix(cmd, "scp") {
			in.Write([]byte{0}) // ready
			said, _ = bufio.NewReader(out).ReadString('\n')
			in.Close()
		} else {
			io.Copy(io.Discard, out)
		}
		err = s.Wait()
		if _, ok := err.(*gossh.ExitError); !ok {
			t.Errorf("%s: %v, want a failure", cmd, err)
		}
		msg := said + stderr.String()
		if !strings.Contains(msg, p) {
			t.Errorf("%s: %q does not name %s", cmd, msg, p)
		}
		leaks(cmd, msg)
		s.Close()
	}
}
