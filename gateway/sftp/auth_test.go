package sftp

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	gossh "golang.org/x/crypto/ssh"
)

func TestHostKeysPersistAcrossStarts(t *testing.T) {
	dir := t.TempDir()
	k1, created, err := loadHostKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 2 || len(k1) != 2 {
		t.Fatalf("first start: %d keys, %d created", len(k1), len(created))
	}
	if k1[0].PublicKey().Type() != gossh.KeyAlgoED25519 || k1[1].PublicKey().Type() != gossh.KeyAlgoRSA {
		t.Fatalf("key types %s, %s", k1[0].PublicKey().Type(), k1[1].PublicKey().Type())
	}
	for _, f := range []string{ed25519KeyFile, rsaKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v", f, fi.Mode())
		}
	}
	k2, created, err := loadHostKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 0 {
		t.Fatalf("second start created %v", created)
	}
	for i := range k1 {
		if !bytes.Equal(k1[i].PublicKey().Marshal(), k2[i].PublicKey().Marshal()) {
			t.Fatalf("key %d changed across starts", i)
		}
	}
	// A corrupt key file is an error naming it, not a silent new key.
	os.WriteFile(filepath.Join(dir, ed25519KeyFile), []byte("garbage"), 0o600)
	if _, _, err := loadHostKeys(dir); err == nil || !strings.Contains(err.Error(), ed25519KeyFile) {
		t.Fatalf("corrupt key: %v", err)
	}
}

func TestAuthentication(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.PenaltyFailures = 100 })
	for _, tc := range []struct {
		name string
		user string
		auth gossh.AuthMethod
	}{
		{"key", "alice", gossh.PublicKeys(e.key)},
		{"password", "alice", gossh.Password(testPassword)},
		{"password only user", "bob", gossh.Password(testPassword)},
		{"ecdsa key", "alice", gossh.PublicKeys(e.more[0])},
		{"rsa-sha2-256 key", "alice", gossh.PublicKeys(mustAlgo(t, e.more[1], gossh.KeyAlgoRSASHA256))},
		{"rsa-sha2-512 key", "alice", gossh.PublicKeys(mustAlgo(t, e.more[1], gossh.KeyAlgoRSASHA512))},
		{"second key offered", "alice", gossh.PublicKeys(e.other, e.key)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := e.dial(tc.user, tc.auth)
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
		})
	}

	// A bcrypt comparison at the cost of users' hashes: every failure
	// must cost about that much, whatever failed. Measured in the
	// process's CPU time (the server runs in it), not wall time: on a
	// loaded machine one comparison's wall time varied 2.5x between the
	// reference and the failure (1 run in ~10), while a failure without
	// its comparison costs a handshake's CPU only, a small fraction.
	c0 := cpuTime()
	bcrypt.CompareHashAndPassword(testHash, []byte("x"))
	cost := cpuTime() - c0
	var msgs []string
	for _, tc := range []struct {
		name string
		user string
		auth gossh.AuthMethod
	}{
		{"wrong password", "alice", gossh.Password("wrong")},
		{"unknown user", "mallory", gossh.Password(testPassword)},
		{"wrong key", "alice", gossh.PublicKeys(e.other)},
		{"unknown user key", "mallory", gossh.PublicKeys(e.key)},
		{"key for password-only user", "bob", gossh.PublicKeys(e.key)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := cpuTime()
			c, err := e.dial(tc.user, tc.auth)
			took := cpuTime() - start
			if err == nil {
				c.Close()
				t.Fatal("logged in")
			}
			if took < cost/2 {
				t.Errorf("failure cost %v of CPU, a bcrypt comparison %v: timing tells failures apart", took, cost)
			}
			msgs = append(msgs, strings.ReplaceAll(err.Error(), " publickey]", " password]"))
		})
	}
	for _, m := range msgs[1:] {
		if m != msgs[0] {
			t.Errorf("different answers: %q vs %q", m, msgs[0])
		}
	}
}

func TestPenaltyAfterRepeatedFailures(t *testing.T) {
	// Failures count together when less than PenaltyTime apart: long
	// enough for two bcrypt comparisons on a loaded machine.
	const penalty = 8 * time.Second
	e := newTestEnv(t, func(o *Options) { o.PenaltyFailures = 2; o.PenaltyTime = penalty })
	for range 2 {
		if c, err := e.dial("alice", gossh.Password("wrong")); err == nil {
			c.Close()
			t.Fatal("logged in")
		}
	}
	// The server counts a failure when it has closed the connection,
	// which may come after the client gave up.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, ok, _ := e.srv.penalty.blocked("127.0.0.1"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("two failed logins did not put the address in the penalty box")
		}
	}
	if c, err := e.dial("alice", gossh.Password(testPassword)); err == nil {
		c.Close()
		t.Fatal("the right password got in during the penalty")
	}
	until, _, _ := e.srv.penalty.blocked("127.0.0.1")
	time.Sleep(time.Until(until) + 100*time.Millisecond)
	c, err := e.dial("alice", gossh.Password(testPassword))
	if err != nil {
		t.Fatalf("after the penalty: %v", err)
	}
	c.Close()
}

func mustAlgo(t *testing.T, s gossh.Signer, algo string) gossh.Signer {
	as, err := gossh.NewSignerWithAlgorithms(s.(gossh.AlgorithmSigner), []string{algo})
	if err != nil {
		t.Fatal(err)
	}
	return as
}

func TestMaxAuthTries(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.MaxAuthTries = 2; o.PenaltyFailures = 100 })
	tries := 0
	pw := gossh.RetryableAuthMethod(gossh.PasswordCallback(func() (string, error) {
		tries++
		return "wrong", nil
	}), 10)
	if c, err := e.dial("alice", pw); err == nil {
		c.Close()
		t.Fatal("logged in")
	}
	if tries > 2 {
		t.Fatalf("%d password tries on one connection, max 2", tries)
	}
}

func TestLoginGraceAndIdleTimeouts(t *testing.T) {
	// The login (a handshake and a session channel, under -race) must fit
	// in the grace time and a keepalive's round trip in the idle timeout
	// on a loaded machine: 300 ms and 700 ms left too little.
	const grace, idle = time.Second, 2 * time.Second
	e := newTestEnv(t, func(o *Options) {
		o.LoginGraceTime = grace
		o.IdleTimeout = idle
	})
	// A client that connects and never authenticates is cut off.
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if _, err := io.Copy(io.Discard, nc); err != nil {
		t.Fatalf("the server did not close the silent connection: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("closed after %v", d)
	}
	// Once in, the grace time no longer applies, but the idle timeout does.
	c, err := e.dial("alice", gossh.PublicKeys(e.key))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Logged in means a session channel was opened (the key's signature
	// was checked by then).
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	sess.Close()
	for busy := time.Now(); time.Since(busy) < grace*3/2; { // busy past the grace time
		time.Sleep(200 * time.Millisecond)
		if _, _, err := c.SendRequest("keepalive@openssh.com", true, nil); err != nil {
			t.Fatalf("active connection dropped: %v", err)
		}
	}
	// Then idle: the server closes the connection, not before the idle
	// timeout has passed since the last request.
	last := time.Now()
	closed := make(chan struct{})
	go func() { c.Wait(); close(closed) }()
	select {
	case <-closed:
		if d := time.Since(last); d < idle/2 {
			t.Fatalf("closed %v after the last request, idle timeout %v", d, idle)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("idle connection still open after 20s")
	}
}

func TestNoShellPTYOrForwarding(t *testing.T) {
	e := newTestEnv(t, nil)
	c, err := e.dial("alice", gossh.PublicKeys(e.key))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, _ := c.NewSession()
	if err := s.RequestPty("xterm", 24, 80, gossh.TerminalModes{}); err == nil {
		t.Error("pty granted")
	}
	if err := s.Shell(); err == nil {
		t.Error("shell granted")
	}
	s.Close()
	s, _ = c.NewSession()
	out, err := s.CombinedOutput("ls /")
	if err == nil || !strings.Contains(string(out), "refused") {
		t.Errorf("exec ls: %v %q", err, out)
	}
	if ok, _ := s.SendRequest("auth-agent-req@openssh.com", true, nil); ok {
		t.Error("agent forwarding granted")
	}
	if _, err := c.Dial("tcp", "127.0.0.1:22"); err == nil {
		t.Error("direct-tcpip granted")
	}
	if _, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
		t.Error("tcpip-forward granted")
	}
	s, _ = c.NewSession()
	if err := s.RequestSubsystem("not-sftp"); err == nil {
		t.Error("unknown subsystem granted")
	}
}

func TestMaxSessionsPerUser(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.MaxSessionsPerUser = 2 })
	c, err := e.dial("alice", gossh.PublicKeys(e.key))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var open []*gossh.Session
	for i := range 3 {
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		err = s.RequestSubsystem("sftp")
		if i < 2 && err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		if i == 2 && err == nil {
			t.Fatal("third session admitted")
		}
		open = append(open, s)
	}
	// Ending one frees its slot.
	open[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, _ := c.NewSession()
		if err := s.RequestSubsystem("sftp"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slot was not freed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
