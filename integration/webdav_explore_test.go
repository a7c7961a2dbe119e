package integration

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWebDAVExplore replays, with the real clients against the real
// binary, what a session as a demanding user found: cadaver's discover
// saw no lock on a locked file; cadaver's refused uploads ended in
// "connection was closed by server"; curl's conditional PUTs and DELETE
// were ignored; a DELETE of a view's root removed every file in it,
// locked ones too; rclone showed "Bad Request" with no reason.
func TestWebDAVExplore(t *testing.T) {
	davNeed(t, "curl")
	dataDir := t.TempDir()
	port := davFreePort(t)
	s := startDAV(t, davConfig(t, dataDir, port), port)
	u := s.url
	alice := "alice:" + davPassword
	tmp := t.TempDir()
	big := filepath.Join(tmp, "big.bin")
	b := make([]byte, 8<<20)
	rand.Read(b)
	os.WriteFile(big, b, 0o644)

	if code, _ := davCurl(t, "-u", alice, "-X", "MKCOL", u+"/files/x"); code != 201 {
		t.Fatalf("MKCOL: %d", code)
	}
	if code, _ := davCurl(t, "-u", alice, "--data-binary", "v1", "-X", "PUT", u+"/files/x/doc.txt"); code != 201 {
		t.Fatalf("PUT: %d", code)
	}

	t.Run("curl conditional writes", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			code int
		}{
			{[]string{"-X", "PUT", "--data-binary", "v2", "-H", "If-None-Match: *", u + "/files/x/doc.txt"}, 412},
			{[]string{"-X", "PUT", "--data-binary", "v2", "-H", `If-Match: "0000"`, u + "/files/x/doc.txt"}, 412},
			{[]string{"-X", "DELETE", "-H", `If-Match: "0000"`, u + "/files/x/doc.txt"}, 412},
			{[]string{"-X", "PUT", "--data-binary", "AB", "-H", "Content-Range: bytes 0-1/2", u + "/files/x/doc.txt"}, 400},
			{[]string{"-X", "DELETE", "-H", "Depth: 0", u + "/files/x"}, 400},
			{[]string{"-X", "PUT", "--data-binary", "n", "-H", "If-None-Match: *", u + "/files/x/new.txt"}, 201},
		} {
			if code, body := davCurl(t, append([]string{"-u", alice}, c.args...)...); code != c.code {
				t.Errorf("curl %v: %d, want %d (%s)", c.args, code, c.code, body)
			}
		}
		if code, body := davCurl(t, "-u", alice, u+"/files/x/doc.txt"); code != 200 || body != "v1" {
			t.Fatalf("doc.txt after refused writes: %d %q", code, body)
		}
	})

	t.Run("cadaver", func(t *testing.T) {
		davNeed(t, "cadaver")
		home := t.TempDir()
		os.WriteFile(filepath.Join(home, ".netrc"), []byte("machine 127.0.0.1\nlogin alice\npassword "+davPassword+"\n"), 0o600)
		script := fmt.Sprintf("lock x/doc.txt\ndiscover x/doc.txt\nput %s /ro/big.bin\nput %s x/nodir/big.bin\nunlock x/doc.txt\nquit\n", big, big)
		out, err := davRun(t, []string{"HOME=" + home}, script, "cadaver", u+"/files/")
		if err != nil {
			t.Fatalf("cadaver: %v\n%s", err, out)
		}
		for _, want := range []string{"Lock token <urn:uuid:", "Depth 0 on `" + u + "/files/x/doc.txt'", "403 Forbidden", "409 Conflict"} {
			if !strings.Contains(out, want) {
				t.Errorf("cadaver session lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "no locks found") || strings.Contains(out, "connection was closed") {
			t.Errorf("cadaver session:\n%s", out)
		}
	})

	t.Run("rclone error", func(t *testing.T) {
		davNeed(t, "rclone")
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "50%.txt"), []byte("x"), 0o644)
		obscured, err := davRun(t, nil, "", "rclone", "obscure", davPassword)
		if err != nil {
			t.Fatal(err)
		}
		env := []string{"RCLONE_CONFIG_DAV_TYPE=webdav", "RCLONE_CONFIG_DAV_URL=" + u + "/files", "RCLONE_CONFIG_DAV_VENDOR=other",
			"RCLONE_CONFIG_DAV_USER=alice", "RCLONE_CONFIG_DAV_PASS=" + strings.TrimSpace(obscured), "RCLONE_CONFIG=/dev/null"}
		out, err := davRun(t, env, "", "rclone", "copy", "--retries", "1", "--low-level-retries", "1", dir, "dav:x")
		if err == nil || !strings.Contains(out, "malformed escape") {
			t.Fatalf("rclone copy of a name the view cannot hold: %v, want an error that says why:\n%s", err, out)
		}
	})

	// DELETE of the view's root: refused before anything goes; nor
	// does a DELETE remove a locked file
	if code, _ := davCurl(t, "-u", alice, "-X", "DELETE", u+"/files"); code != 403 {
		t.Fatalf("DELETE of the view: %d, want 403", code)
	}
	out, err := davRun(t, nil, "", "curl", "-sS", "-D", "-", "-o", "/dev/null", "-u", alice, "-X", "LOCK",
		"--data", `<?xml version="1.0"?><lockinfo xmlns="DAV:"><lockscope><exclusive/></lockscope><locktype><write/></locktype><owner>it</owner></lockinfo>`,
		u+"/files/x/new.txt")
	if err != nil || !strings.Contains(strings.ToLower(out), "lock-token: <urn:uuid:") {
		t.Fatalf("LOCK: %v\n%s", err, out)
	}
	if code, _ := davCurl(t, "-u", alice, "-X", "DELETE", u+"/files/x"); code != 423 {
		t.Fatalf("DELETE of a collection holding a locked file: %d, want 423", code)
	}
	for _, p := range []string{"/files/x/doc.txt", "/files/x/new.txt"} {
		if code, _ := davCurl(t, "-u", alice, u+p); code != 200 {
			t.Fatalf("GET %s: %d", p, code)
		}
	}
	s.stop(t)
}
