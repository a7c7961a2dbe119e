package integration

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// What OpenSSH's clients do every day against our SSH front-end, where
// an earlier version differed from OpenSSH's own server in a way users
// see. Each test runs the real client against `datagate serve`.

// chown and chgrp read the file's owner before they set it: without
// one in the attributes, OpenSSH's sftp stopped with "Can't get current
// ownership of remote file" and the batch failed.
func TestSFTPChownChgrp(t *testing.T) {
	needTool(t, "sftp")
	s := startSFTPServer(t, "")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644)
	out, code := s.sftpBatch(t, dir, `
put f /by-date/2026-03-03/obs/f
chown 1000 /by-date/2026-03-03/obs/f
chgrp 1000 /by-date/2026-03-03/obs/f
chmod 600 /by-date/2026-03-03/obs/f
ls -ln /by-date/2026-03-03/obs/f
`)
	if code != 0 {
		t.Fatalf("sftp batch: exit %d\n%s", code, out)
	}
	// Accepted and ignored, as the README says.
	if !strings.Contains(out, "-rw-r--r--    ? 0        0               1 ") {
		t.Fatalf("owner or mode changed:\n%s", out)
	}
}

// The remote half of "scp -O host:dir/*.grib ." runs under a shell on an
// OpenSSH server, which expands the wildcards; ours answered "No such
// file or directory" for every pattern.
func TestSCPLegacyWildcards(t *testing.T) {
	needTool(t, "scp", "sftp")
	s := startSFTPServer(t, "")
	dir := t.TempDir()
	for _, n := range []string{"a.grib", "b.grib", "c.txt", ".hidden.grib"} {
		os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644)
	}
	out, code := s.sftpBatch(t, dir, `
put a.grib /by-date/2026-04-01/obs/a.grib
put b.grib /by-date/2026-04-01/obs/b.grib
put c.txt /by-date/2026-04-01/obs/c.txt
put .hidden.grib /by-date/2026-04-01/obs/.hidden.grib
put c.txt /by-date/2026-04-02/obs/c.txt
put c.txt /by-date/2026-04-02/fc/c.txt
`)
	if code != 0 {
		t.Fatalf("sftp batch: exit %d\n%s", code, out)
	}
	scp := func(dst string, srcs ...string) (string, int) {
		t.Helper()
		os.MkdirAll(dst, 0o755)
		args := append(s.sshOpts(), "-O", "-P", s.port)
		for _, src := range srcs {
			args = append(args, "alice@127.0.0.1:"+src)
		}
		return run(t, dir, "", "scp", append(args, dst)...)
	}
	names := func(d string) []string {
		es, _ := os.ReadDir(d)
		var out []string
		for _, e := range es {
			out = append(out, e.Name())
		}
		return out
	}

	got := filepath.Join(dir, "got")
	if out, code := scp(got, "/by-date/2026-04-01/obs/*.grib"); code != 0 {
		t.Fatalf("scp -O *.grib: exit %d\n%s", code, out)
	}
	if n := names(got); !slices.Equal(n, []string{"a.grib", "b.grib"}) {
		t.Fatalf("*.grib fetched %q, want a.grib and b.grib (a hidden file only by a pattern starting with a dot)", n)
	}
	sameFile(t, filepath.Join(got, "b.grib"), []byte("b.grib"))

	// Wildcards in a directory segment, ? and [...], as bash has them.
	got2 := filepath.Join(dir, "got2")
	if out, code := scp(got2, "/by-date/2026-04-0?/[fo]*/c.txt", "/by-type/obs/2026-04-01/[ab].grib"); code != 0 {
		t.Fatalf("scp -O: exit %d\n%s", code, out)
	}
	if n := names(got2); !slices.Equal(n, []string{"a.grib", "b.grib", "c.txt"}) {
		t.Fatalf("fetched %q", n)
	}

	// No match: the pattern stays as it is and is a missing file, as
	// with the shell.
	out, code = scp(filepath.Join(dir, "got3"), "/by-date/2026-04-01/obs/*.nc")
	if code == 0 || !strings.Contains(out, "*.nc: No such file or directory") {
		t.Fatalf("no match: exit %d\n%s", code, out)
	}
}
