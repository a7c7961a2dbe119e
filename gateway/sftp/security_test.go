package sftp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	gossh "golang.org/x/crypto/ssh"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/local"
	"github.com/datagate/datagate/fs"
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

// Password guesses on connections made at once from one address are
// bounded like those made in turn: at most PenaltyFailures bcrypt checks
// in flight, the others refused without one. The penalty counts a
// failure when its connection closes, so every connection made at once
// was checked (seen against serve: 100 at once, 100 guesses, 6 s of
// CPU). Logins with the right password at once all get in.
func TestConcurrentLoginsAreBounded(t *testing.T) {
	var logs lockedBuffer
	e := newTestEnv(t, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		o.PenaltyFailures = 5
	})
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	acc := e.srv.opts.Account
	e.srv.opts.Account = func(u string) (Account, bool) { // a hash at the cost of a real one
		a, ok := acc(u)
		a.PasswordHash = hash
		return a, ok
	}
	run := func(n int, pw func(i int) string) (ok int) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := e.dial("bob", gossh.Password(pw(i)))
				if err == nil {
					c.Close()
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return ok
	}
	if ok := run(12, func(int) string { return testPassword }); ok != 12 {
		t.Errorf("12 logins with the right password at once: %d got in", ok)
	}
	if ok := run(30, func(i int) string { return fmt.Sprint("guess", i) }); ok != 0 {
		t.Fatalf("%d guesses got in", ok)
	}
	checked := strings.Count(logs.String(), "login failed") - strings.Count(logs.String(), "too many logins at once")
	if checked > 2*5 {
		t.Errorf("30 guesses at once: %d checked with bcrypt, want at most 10", checked)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A read that fails for the server's own reasons (the provider's "file"
// is a directory) is an internal error for SFTP, scp -O and md5sum
// clients, naming their path: it was "Bad message" with the cache's and
// the provider's words, their name and path.
func TestServerSideReadFailureIsInternal(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := ctxT(t)
	src := filepath.Join(e.dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	disk, err := local.New("disk", local.Config{Root: src})
	if err != nil {
		t.Fatal(err)
	}
	e.st.SetProviders(map[string]backends.Provider{"disk": disk})
	if _, err := e.st.Register(ctx, []*fs.Object{{Name: "adir.bin", Size: 10,
		Meta: map[string]string{"date": "2026-01-01", "type": "obs"}, Source: fs.Location{Provider: "disk", Path: "adir"}}}); err != nil {
		t.Fatal(err)
	}
	const p = "/by-date/2026-01-01/obs/adir.bin"
	sc, c := e.client(t)
	f, err := sc.Open(p)
	if err == nil {
		_, err = io.ReadAll(f)
		f.Close()
	}
	told := map[string]string{}
	if err == nil {
		t.Fatal("SFTP read succeeded")
	}
	told["sftp"] = err.Error()
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
			in.Write([]byte{0})
			r := bufio.NewReader(out)
			said, _ = r.ReadString('\n') // C0644 10 adir.bin
			in.Write([]byte{0})
			rest, _ := io.ReadAll(r)
			said += string(rest)
			in.Close()
		} else {
			io.Copy(io.Discard, out)
		}
		s.Wait()
		s.Close()
		told[cmd] = said + stderr.String()
	}
	for what, msg := range told {
		if strings.Contains(msg, "disk") || strings.Contains(msg, "adir@") || strings.Contains(msg, "cache") || !strings.Contains(msg, "internal server error") && what != "sftp" {
			t.Errorf("%s: told %q", what, msg)
		}
	}
}

// An address serving a penalty is refused with one log line per
// penalty: a blocked client connecting in a loop wrote a warning per
// connection (against serve: 23,562 connections in 3 s, 4.4 MB of log).
func TestPenaltyRefusalsLoggedOnce(t *testing.T) {
	var logs lockedBuffer
	e := newTestEnv(t, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		o.PenaltyFailures = 2
		o.PenaltyTime = time.Minute
	})
	for range 2 {
		if c, err := e.dial("alice", gossh.Password("wrong")); err == nil {
			c.Close()
			t.Fatal("logged in")
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		p := e.srv.penalty
		p.mu.Lock()
		r := p.addrs["127.0.0.1"]
		in := r != nil && !r.until.IsZero()
		p.mu.Unlock()
		if in { // (blocked would take the first refusal's log line)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no penalty")
		}
	}
	for range 50 {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, c) // closed by the server
		c.Close()
	}
	if n := strings.Count(logs.String(), "too many failed logins"); n != 1 {
		t.Errorf("50 refused connections: %d log lines, want 1", n)
	}
}
