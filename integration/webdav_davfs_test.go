package integration

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// davfs2 mounts the WebDAV tree (root, /dev/fuse and the Debian package
// davfs2 needed): listing, reading, writing, renaming (davfs2 locks the
// file and sends MOVE with the lock's token) and deleting through the
// kernel, each checked over HTTP.
func TestWebDAVDavfs2(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mount -t davfs needs root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	davNeed(t, "mount.davfs")
	davNeed(t, "curl")
	dataDir := t.TempDir()
	port := davFreePort(t)
	s := startDAV(t, davConfig(t, dataDir, port), port)
	alice := "alice:" + davPassword
	if code, _ := davCurl(t, "-u", alice, "-X", "PUT", "--data-binary", "from http", s.url+"/files/http.txt"); code != 201 {
		t.Fatalf("PUT: %d", code)
	}

	// A configuration of our own: credentials from a secrets file (no
	// prompt), uploads at close, and buf_size 64: with the default (16
	// KiB) davfs2 up to 1.7.1 lists no directory on Linux 6.16 and later
	// (EINVAL from getdents).
	conf := t.TempDir()
	secrets := filepath.Join(conf, "secrets")
	os.WriteFile(secrets, fmt.Appendf(nil, "%s/ alice %s\n", s.url, davPassword), 0o600)
	cfg := filepath.Join(conf, "davfs2.conf")
	os.WriteFile(cfg, fmt.Appendf(nil, "secrets %s\nask_auth 0\nuse_locks 1\ndelay_upload 0\nbuf_size 64\n", secrets), 0o644)
	mnt := t.TempDir()
	if out, err := davRun(t, nil, "", "mount", "-t", "davfs", "-o", "conf="+cfg, s.url+"/", mnt); err != nil {
		t.Fatalf("mount -t davfs: %v\n%s", err, out)
	}
	mounted := true
	unmount := func() {
		if mounted {
			mounted = false
			if out, err := davRun(t, nil, "", "umount", mnt); err != nil {
				t.Errorf("umount: %v\n%s", err, out)
				exec.Command("umount", "-l", mnt).Run()
			}
		}
	}
	t.Cleanup(unmount)

	ls := func(dir string) []string {
		var names []string
		davWithin(t, func() error {
			ents, err := os.ReadDir(dir)
			for _, e := range ents {
				names = append(names, e.Name())
			}
			return err
		})
		return names
	}
	if names := ls(mnt); !slices.Contains(names, "files") || !slices.Contains(names, "ro") {
		t.Fatalf("root lists %v, want the views files and ro", names)
	}
	if names := ls(filepath.Join(mnt, "files")); !slices.Contains(names, "http.txt") {
		t.Fatalf("files lists %v", names)
	}
	davWithin(t, func() error {
		b, err := os.ReadFile(filepath.Join(mnt, "files", "http.txt"))
		if err == nil && string(b) != "from http" {
			return fmt.Errorf("read %q", b)
		}
		return err
	})

	payload := make([]byte, 3<<20+17)
	rand.Read(payload)
	dir := filepath.Join(mnt, "files", "dav")
	davWithin(t, func() error {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "a.bin"), payload, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "gone.txt"), []byte("x"), 0o644); err != nil {
			return err
		}
		if err := os.Rename(filepath.Join(dir, "a.bin"), filepath.Join(dir, "b.bin")); err != nil {
			return fmt.Errorf("rename: %w", err)
		}
		return os.Remove(filepath.Join(dir, "gone.txt"))
	})
	// a read-only view refuses writes
	davWithin(t, func() error {
		if err := os.WriteFile(filepath.Join(mnt, "ro", "no.txt"), []byte("x"), 0o644); err == nil {
			return fmt.Errorf("write into the read-only view succeeded")
		}
		return nil
	})
	unmount() // davfs2 finishes its uploads before it returns

	out := filepath.Join(t.TempDir(), "b.bin")
	if code, _ := davCurl(t, "-u", alice, "-o", out, s.url+"/files/dav/b.bin"); code != 200 {
		t.Fatalf("GET of the renamed file: %d", code)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, payload) {
		t.Fatalf("the file written through davfs2 holds %d other bytes", len(got))
	}
	for _, p := range []string{"/files/dav/a.bin", "/files/dav/gone.txt", "/ro/no.txt"} {
		if code, _ := davCurl(t, "-u", alice, "-o", "/dev/null", s.url+p); code != 404 {
			t.Errorf("GET %s after the mount: %d, want 404", p, code)
		}
	}
}

// davWithin runs fn, failing the test if it errs or takes over a minute (a
// hung mount must not hang the test run).
func davWithin(t *testing.T, fn func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("file system operation on the davfs2 mount took over a minute")
	}
}
