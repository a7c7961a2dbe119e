package sftp

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"

	gossh "golang.org/x/crypto/ssh"
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
