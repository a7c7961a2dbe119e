package sftp

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/datagate/datagate/views"
)

// Server-side cost of SFTP transfers through the pkg/sftp client (client
// and server in one process: for profiles, not for the README's figures,
// which make bench-sftp measures with OpenSSH's clients).
func BenchmarkTransfers(b *testing.B) {
	e := newTestEnv(b, nil)
	c, _ := e.client(b)
	data := make([]byte, 64<<20)
	rand.Read(data)
	put := func(b *testing.B) {
		f, err := c.Create("/by-date/2026-01-01/obs/bench")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.ReadFrom(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
	put(b) // for get, when run alone
	b.Run("put64MiB", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for range b.N {
			put(b)
		}
	})
	b.Run("get64MiB", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for range b.N {
			f, err := c.Open("/by-date/2026-01-01/obs/bench")
			if err != nil {
				b.Fatal(err)
			}
			if n, err := f.WriteTo(io.Discard); err != nil || n != int64(len(data)) {
				b.Fatal(n, err)
			}
			f.Close()
		}
	})
}

// BenchmarkConnect is connect + authenticate with the Go client, as
// rclone does, for each host key the client may choose.
func BenchmarkConnect(b *testing.B) {
	e := newTestEnv(b, nil)
	for _, algos := range [][]string{nil, {gossh.KeyAlgoED25519}, {gossh.KeyAlgoRSASHA256}} {
		name := "client-default"
		if algos != nil {
			name = algos[0]
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				c, err := gossh.Dial("tcp", e.addr, &gossh.ClientConfig{
					User: "alice", Auth: []gossh.AuthMethod{gossh.PublicKeys(e.key)},
					HostKeyCallback: gossh.InsecureIgnoreHostKey(), HostKeyAlgorithms: algos,
				})
				if err != nil {
					b.Fatal(err)
				}
				s, err := c.NewSession()
				if err != nil {
					b.Fatal(err)
				}
				s.Close()
				c.Close()
			}
		})
	}
}

// BenchmarkOpenSSH fetches a stored object with OpenSSH's sftp client
// and puts one
// (a separate process), so the process's CPU time is the server's:
// reported as cpu-s/GiB. For profiles of the server's read path
// (-cpuprofile); make bench-sftp gives the README's figures.
func BenchmarkOpenSSH(b *testing.B) {
	if _, err := exec.LookPath("sftp"); err != nil {
		b.Skip("OpenSSH's sftp client is not installed")
	}
	e := newTestEnv(b, nil)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := gossh.MarshalPrivateKey(priv, "")
	if err != nil {
		b.Fatal(err)
	}
	keyFile := filepath.Join(b.TempDir(), "id")
	os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600)
	if e.key, err = gossh.NewSignerFromKey(priv); err != nil {
		b.Fatal(err)
	}
	const size = 256 << 20
	// Stored through the Tree: no SSH in the profile but the gets'.
	content := io.LimitReader(mrand.NewChaCha8([32]byte{1}), size)
	if _, err := e.tree("alice").Create(context.Background(), "/by-date/2026-01-01/obs/big", content, views.CreateOptions{Size: size}); err != nil {
		b.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(e.addr)
	up := filepath.Join(b.TempDir(), "up")
	if f, err := os.Create(up); err != nil {
		b.Fatal(err)
	} else {
		io.Copy(f, io.LimitReader(mrand.NewChaCha8([32]byte{2}), size))
		f.Close()
	}
	for _, cipher := range []string{"", "aes128-gcm@openssh.com"} {
		name := "client-default"
		if cipher != "" {
			name = cipher
		}
		b.Run(name, func(b *testing.B) {
			args := []string{"-F", "/dev/null", "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no",
				"-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes", "-o", "IdentityFile=" + keyFile, "-o", "BatchMode=yes",
				"-P", port, "-b", "-"}
			if cipher != "" {
				args = append(args, "-c", cipher)
			}
			args = append(args, "alice@"+host)
			b.SetBytes(size)
			cpu0 := cpuTime()
			for range b.N {
				cmd := exec.Command("sftp", args...)
				cmd.Stdin = strings.NewReader("get /by-date/2026-01-01/obs/big /dev/null\n")
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("sftp: %v\n%s", err, out)
				}
			}
			b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N)*float64(1<<30)/size, "server-cpu-s/GiB")
		})
	}
	b.Run("put", func(b *testing.B) {
		args := []string{"-F", "/dev/null", "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no",
			"-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes", "-o", "IdentityFile=" + keyFile, "-o", "BatchMode=yes",
			"-P", port, "-b", "-", "alice@" + host}
		b.SetBytes(size)
		cpu0 := cpuTime()
		for range b.N {
			cmd := exec.Command("sftp", args...)
			cmd.Stdin = strings.NewReader("put " + up + " /by-date/2026-01-02/obs/up\n")
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("sftp: %v\n%s", err, out)
			}
		}
		b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N)*float64(1<<30)/size, "server-cpu-s/GiB")
	})
}

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
