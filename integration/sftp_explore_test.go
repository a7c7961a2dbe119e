package integration

import (
	"os"
	"path/filepath"
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
