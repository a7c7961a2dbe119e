package sftp

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"

	gossh "golang.org/x/crypto/ssh"
)

// Host key files in the data directory, in OpenSSH's private key format
// (readable by ssh-keygen -l -f).
const (
	ed25519KeyFile = "ssh_host_ed25519_key"
	rsaKeyFile     = "ssh_host_rsa_key"
	rsaBits        = 3072 // OpenSSH's default
)

// loadHostKeys reads the host keys from dir, generating the missing ones:
// ed25519 first (preferred by modern clients), RSA for old ones.
func loadHostKeys(dir string) (signers []gossh.Signer, created []string, err error) {
	gen := []struct {
		file string
		make func() (crypto.Signer, error)
	}{
		{ed25519KeyFile, func() (crypto.Signer, error) {
			_, k, err := ed25519.GenerateKey(rand.Reader)
			return k, err
		}},
		{rsaKeyFile, func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, rsaBits) }},
	}
	for _, g := range gen {
		p := filepath.Join(dir, g.file)
		b, err := os.ReadFile(p)
		if errors.Is(err, iofs.ErrNotExist) {
			if b, err = newHostKey(p, g.make); err == nil {
				created = append(created, p)
			}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("sftp host key %s: %w", p, err)
		}
		s, err := gossh.ParsePrivateKey(b)
		if err != nil {
			return nil, nil, fmt.Errorf("sftp host key %s: %w", p, err)
		}
		signers = append(signers, s)
	}
	return signers, created, nil
}

// newHostKey generates a key and writes it to p atomically (0600), so a
// crash never leaves a half-written key that would then fail every start.
func newHostKey(p string, mk func() (crypto.Signer, error)) ([]byte, error) {
	k, err := mk()
	if err != nil {
		return nil, err
	}
	block, err := gossh.MarshalPrivateKey(k, "datagate host key")
	if err != nil {
		return nil, err
	}
	b := pem.EncodeToMemory(block)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".hostkey-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	// Link, not rename: if another process made the key meanwhile, keep its.
	if err := os.Link(tmp.Name(), p); err != nil {
		if errors.Is(err, iofs.ErrExist) {
			return os.ReadFile(p)
		}
		return nil, err
	}
	return b, nil
}
