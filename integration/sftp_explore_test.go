package integration

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"
	gossh "golang.org/x/crypto/ssh"
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

// chmod, chown or chgrp of a missing file succeeded silently (the
// setstat of permissions or owner is ignored, but only for files that
// exist); OpenSSH's server answers "No such file or directory".
func TestSFTPChmodMissingFile(t *testing.T) {
	needTool(t, "sftp")
	s := startSFTPServer(t, "")
	for _, cmd := range []string{"chmod 600", "chown 1000", "chgrp 1000"} {
		out, code := s.sftpBatch(t, t.TempDir(), cmd+" /by-date/2026-03-03/obs/missing\n")
		if code == 0 || !strings.Contains(out, "No such file or directory") {
			t.Fatalf("%s of a missing file: exit %d\n%s", cmd, code, out)
		}
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

	// ~ is the home, the root, as the shell of an OpenSSH server has it.
	got5 := filepath.Join(dir, "got5")
	if out, code := scp(got5, "~/by-date/2026-04-01/obs/a.grib"); code != 0 {
		t.Fatalf("scp -O host:~/path: exit %d\n%s", code, out)
	}
	sameFile(t, filepath.Join(got5, "a.grib"), []byte("a.grib"))

	// -p of a view root, which has no time of its own: the server's
	// start, not 1970.
	got4 := filepath.Join(dir, "got4")
	if out, code := scp(got4, "/by-type"); code == 0 || !strings.Contains(out, "not a regular file") {
		t.Fatalf("scp -O of a directory without -r: exit %d\n%s", code, out)
	}
	args := append(s.sshOpts(), "-O", "-r", "-p", "-P", s.port, "alice@127.0.0.1:/by-type", got4)
	if out, code := run(t, dir, "", "scp", args...); code != 0 {
		t.Fatalf("scp -O -rp: exit %d\n%s", code, out)
	}
	if fi, err := os.Stat(filepath.Join(got4, "by-type")); err != nil || fi.ModTime().Year() < 2026 {
		t.Fatalf("scp -O -rp of a view root: %v %v", fi.ModTime(), err)
	}

	// No match: the pattern stays as it is and is a missing file, as
	// with the shell.
	out, code = scp(filepath.Join(dir, "got3"), "/by-date/2026-04-01/obs/*.nc")
	if code == 0 || !strings.Contains(out, "*.nc: No such file or directory") {
		t.Fatalf("no match: exit %d\n%s", code, out)
	}
}

// mountSSHFS mounts alice's tree with sshfs and returns the mount point.
func (s *sftpServer) mountSSHFS(t *testing.T) string {
	t.Helper()
	needTool(t, "sshfs", "fusermount")
	if os.Geteuid() != 0 {
		t.Skip("sshfs mount test runs as root (CI does)")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	mnt := t.TempDir()
	out, code := run(t, "", "", "sshfs", "alice@127.0.0.1:/", mnt, "-p", s.port, "-F", "/dev/null",
		"-o", "UserKnownHostsFile="+s.knownHosts, "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
		"-o", "IdentityFile="+s.key, "-o", "BatchMode=yes")
	if code != 0 {
		t.Fatalf("sshfs: exit %d\n%s", code, out)
	}
	t.Cleanup(func() { exec.Command("fusermount", "-u", "-z", mnt).Run() })
	return mnt
}

// Processes appending to one file through one sshfs mount (shell >>
// from three loops) lost most lines and got NULs: each SFTP handle had
// its own copy of the file and the last close won. Now the handles of
// a session share the file, as OpenSSH's server shares the inode, and a
// reader of the mount sees the lines as they come (tail -f).
func TestSSHFSConcurrentAppends(t *testing.T) {
	s := startSFTPServer(t, "")
	mnt := s.mountSSHFS(t)
	dir := filepath.Join(mnt, "by-date", "2026-05-05", "log")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const writers, lines = 3, 40
	var script strings.Builder
	for w := range writers {
		fmt.Fprintf(&script, "(for i in $(seq %d); do echo \"writer %d line $i\" >> app.log; done) &\n", lines, w)
	}
	script.WriteString("wait\n")
	if out, code := run(t, dir, "", "bash", "-c", script.String()); code != 0 {
		t.Fatalf("appending: exit %d\n%s", code, out)
	}
	check := func(b []byte, where string) {
		t.Helper()
		if bytes.IndexByte(b, 0) >= 0 {
			t.Fatalf("%s: NUL bytes in the file", where)
		}
		got := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		slices.Sort(got)
		var want []string
		for w := range writers {
			for i := 1; i <= lines; i++ {
				want = append(want, fmt.Sprintf("writer %d line %d", w, i))
			}
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: %d lines, want the %d written", where, len(got), len(want))
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "app.log"))
	if err != nil {
		t.Fatal(err)
	}
	check(b, "through the mount")
	// Stored so: a fresh session sees the same.
	dl := t.TempDir()
	if out, code := s.sftpBatch(t, dl, "get /by-type/log/2026-05-05/app.log app.log\n"); code != 0 {
		t.Fatalf("sftp get: %s", out)
	}
	b, _ = os.ReadFile(filepath.Join(dl, "app.log"))
	check(b, "stored")

	// A file open for writing is read as written so far by another
	// process of the mount (tail -f), not as its stored version.
	w, err := os.OpenFile(filepath.Join(dir, "live.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range 3 {
		fmt.Fprintf(w, "line %d\n", i)
		want := fmt.Sprintf("line %d\n", i)
		deadline := time.Now().Add(10 * time.Second)
		for {
			// A new open each time: sshfs reads through its handle.
			b, err := os.ReadFile(filepath.Join(dir, "live.log"))
			if err == nil && strings.HasSuffix(string(b), want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("reader of the mount got %q, %v; want it to end with %q", b, err, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// A handle opened with SSH_FXF_APPEND writes at the end of the file
// with OpenSSH's server whatever the offset; Go's pkg/sftp client
// counts its offsets from 0 and relies on that, and wrote over the start
// of the file here. OpenSSH's reput, which sends the offsets at the end
// of the file, keeps working (TestSFTPWithOpenSSH).
func TestSFTPAppendFlag(t *testing.T) {
	s := startSFTPServer(t, "")
	conn, err := gossh.Dial("tcp", "127.0.0.1:"+s.port, &gossh.ClientConfig{
		User: "alice", Auth: []gossh.AuthMethod{gossh.PublicKeys(s.signer)},
		HostKeyCallback: gossh.FixedHostKey(s.hostKey), Timeout: 20 * time.Second,
		HostKeyAlgorithms: []string{gossh.KeyAlgoED25519},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := pkgsftp.NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := "/by-date/2026-06-06/log/a.log"
	for _, line := range []string{"first\n", "second\n", "third\n"} {
		f, err := c.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	f, err := c.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	if string(b) != "first\nsecond\nthird\n" {
		t.Fatalf("appended file holds %q", b)
	}
}

// "scp f host:newdir/" when newdir does not exist: OpenSSH's server
// fails (open of "newdir/" is EISDIR) and the user sees the typo; ours
// made a file named newdir, which the next "scp g host:newdir/" then
// replaced. Both scp protocols and sftp's put.
func TestSCPUploadToMissingDirectory(t *testing.T) {
	needTool(t, "scp", "sftp")
	s := startSFTPServer(t, "")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644)
	for _, tc := range []struct{ mode, target, msg string }{
		{"-O", "/by-date/2026-07-07/obs/legacy/", "/by-date/2026-07-07/obs/legacy/: Is a directory"},
		{"-s", "/by-date/2026-07-07/obs/sftp/", `dest open "/by-date/2026-07-07/obs/sftp/": Failure`},
	} {
		args := append(s.sshOpts(), tc.mode, "-P", s.port, "f", "alice@127.0.0.1:"+tc.target)
		out, code := run(t, dir, "", "scp", args...)
		if code == 0 || !strings.Contains(out, tc.msg) {
			t.Errorf("scp %s to a missing directory: exit %d, want %q\n%s", tc.mode, code, tc.msg, out)
		}
	}
	out, code := s.sftpBatch(t, dir, "put f /by-date/2026-07-07/obs/put/\n")
	if code == 0 || !strings.Contains(out, `dest open "/by-date/2026-07-07/obs/put/": Failure`) {
		t.Errorf("sftp put to a missing directory: exit %d\n%s", code, out)
	}
	out, _ = s.sftpBatch(t, dir, "ls -1 /by-date/2026-07-07/obs\n")
	for _, n := range []string{"legacy", "sftp", "put"} {
		if strings.Contains(out, "/"+n+"\n") {
			t.Errorf("a file %s was made:\n%s", n, out)
		}
	}
	// A directory that exists takes the file, in both protocols.
	if out, code := s.sftpBatch(t, dir, "mkdir /by-date/2026-03-03\nmkdir /by-date/2026-03-03/obs\n"); code != 0 {
		t.Fatalf("mkdir: %s", out)
	}
	for _, mode := range []string{"-O", "-s"} {
		args := append(s.sshOpts(), mode, "-P", s.port, "f", "alice@127.0.0.1:/by-date/2026-03-03/obs/")
		if out, code := run(t, dir, "", "scp", args...); code != 0 {
			t.Fatalf("scp %s into a directory: exit %d\n%s", mode, code, out)
		}
	}
	out, code = s.sftpBatch(t, dir, "get /by-date/2026-03-03/obs/f got\n")
	if code != 0 {
		t.Fatalf("the file is not in the directory:\n%s", out)
	}
}

// A file open for writing through sshfs, renamed or removed before it is
// closed: rename said "no such file" for a new file and the content
// went to the old name at close; remove said "no such file" and the file
// came back at close. Now the open file moves or goes with its name, as
// on OpenSSH's server.
func TestSSHFSRenameAndRemoveWhileWriting(t *testing.T) {
	s := startSFTPServer(t, "")
	mnt := s.mountSSHFS(t)
	dir := filepath.Join(mnt, "by-date", "2026-09-09", "tmp")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	at := func(n string) string { return filepath.Join(dir, n) }
	os.WriteFile(at("old"), []byte("old\n"), 0o644)

	// A new file and an existing one, each renamed between two writes.
	for _, tc := range []struct{ from, to, want string }{
		{"new.part", "new", "part1\npart2\n"},
		{"old", "old.moved", "old\npart1\npart2\n"},
	} {
		f, err := os.OpenFile(at(tc.from), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("part1\n")
		if err := os.Rename(at(tc.from), at(tc.to)); err != nil {
			t.Fatalf("rename of a file open for writing: %v", err)
		}
		f.WriteString("part2\n")
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(at(tc.from)); !os.IsNotExist(err) {
			t.Errorf("%s still there after the rename: %v", tc.from, err)
		}
		if b, err := os.ReadFile(at(tc.to)); err != nil || string(b) != tc.want {
			t.Errorf("%s holds %q, %v; want %q", tc.to, b, err, tc.want)
		}
	}

	// Removed while open: the handle writes on, nothing comes back.
	f, err := os.Create(at("scratch"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("x")
	if err := os.Remove(at("scratch")); err != nil {
		t.Fatalf("remove of a file open for writing: %v", err)
	}
	f.WriteString("y")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(at("scratch")); !os.IsNotExist(err) {
		t.Errorf("removed file came back at close: %v", err)
	}

	// A directory renamed with a file in it open for writing: the file
	// moves with it (its close recreated the old directory).
	day := filepath.Join(mnt, "by-date", "2026-09-10")
	if err := os.MkdirAll(filepath.Join(day, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err = os.Create(filepath.Join(day, "a", "f"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("1")
	if err := os.Rename(filepath.Join(day, "a"), filepath.Join(day, "b")); err != nil {
		t.Fatal(err)
	}
	f.WriteString("2")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(day, "b", "f")); err != nil || string(b) != "12" {
		t.Errorf("b/f holds %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(day, "a")); !os.IsNotExist(err) {
		t.Errorf("the renamed directory came back: %v", err)
	}

	// What another session sees.
	dl := t.TempDir()
	out, _ := s.sftpBatch(t, dl, "ls -1 /by-date/2026-09-09/tmp\n")
	var names []string
	for _, l := range strings.Split(out, "\n") {
		if n, ok := strings.CutPrefix(l, "/by-date/2026-09-09/tmp/"); ok {
			names = append(names, n)
		}
	}
	if !slices.Equal(names, []string{"new", "old.moved"}) {
		t.Fatalf("stored: %q\n%s", names, out)
	}
}

// A directory listed through sshfs while a file in it was being written
// left the file out (the Tree has no such file yet), and sshfs kept that
// listing in its cache after the close: "ls" missed the file for a
// while. Listings of the writing session now show it, as written so far.
func TestSSHFSListsFilesBeingWritten(t *testing.T) {
	s := startSFTPServer(t, "")
	mnt := s.mountSSHFS(t)
	dir := filepath.Join(mnt, "by-date", "2026-10-10", "tmp")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "b"), []byte("stored"), 0o644)
	var open []*os.File
	for _, n := range []string{"a", "b", "c"} { // before, over and after the stored one
		f, err := os.OpenFile(filepath.Join(dir, n), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("being written: " + n)
		open = append(open, f)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		fi, _ := e.Info()
		got = append(got, fmt.Sprintf("%s:%d", e.Name(), fi.Size()))
	}
	if want := []string{"a:16", "b:16", "c:16"}; !slices.Equal(got, want) {
		t.Fatalf("listing while writing: %q, want %q", got, want)
	}
	for _, f := range open {
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// The spool's disk fills during an upload: the client is told its write
// failed, and the file must not appear. The partial spool became a
// version at close (31 of 50 MB, visible to everyone).
func TestSFTPUploadSpoolFull(t *testing.T) {
	needTool(t, "sftp")
	s := startSFTPServer(t, "")
	mountTmpfs(t, filepath.Join(s.data, "spool", "sftp"), 2<<20)
	dir := t.TempDir()
	writeRandom(t, filepath.Join(dir, "big.bin"), 5<<20)
	out, code := s.sftpBatch(t, dir, "put big.bin /by-date/2026-11-11/obs/big.bin\n")
	if code == 0 || !strings.Contains(out, "Failure") {
		t.Fatalf("put into a full spool: exit %d\n%s", code, out)
	}
	out, code = s.sftpBatch(t, dir, "ls -l /by-date/2026-11-11/obs/big.bin\n")
	if code == 0 {
		t.Fatalf("the upload that lost writes is visible:\n%s", out)
	}
	// Space again: the same upload goes through.
	os.WriteFile(filepath.Join(dir, "small.bin"), []byte("fits"), 0o644)
	if out, code := s.sftpBatch(t, dir, "put small.bin /by-date/2026-11-11/obs/small.bin\n"); code != 0 {
		t.Fatalf("put after the failure: exit %d\n%s", code, out)
	}
}

// An object registered without its size (read lazily, size learnt at the
// first open) was stat'ed as 0 bytes: sshfs then read it as empty (the
// kernel reads no further than the size). And what has no time (the
// root, the view roots) showed as year 1 in sftp's ls and as 2042 (the
// zero time wrapped in 32 bits) through sshfs.
func TestSFTPRegisteredObjectAndMissingTimes(t *testing.T) {
	s := startSFTPServer(t, "")
	os.MkdirAll(filepath.Join(s.data, "import", "p"), 0o755)
	data := make([]byte, 123457)
	for i := range data {
		data[i] = byte(i * 7)
	}
	os.WriteFile(filepath.Join(s.data, "import", "p", "lazy.bin"), data, 0o644)
	c := cli{t, []string{"--config", filepath.Join(s.tmp, "serve.yaml")}}
	rec := `{"name":"lazy.bin","meta":{"date":"2026-12-01","type":"obs"},"location":{"provider":"local","path":"p/lazy.bin"}}` + "\n"
	if out, errs, code := c.run(rec, "register"); code != 0 {
		t.Fatalf("register: exit %d\n%s%s", code, out, errs)
	}

	out, code := s.sftpBatch(t, t.TempDir(), "ls -l /\n")
	if code != 0 || strings.Contains(out, " 0001 ") || !strings.Contains(out, "by-date") {
		t.Fatalf("ls -l of the root:\n%s", out)
	}

	mnt := s.mountSSHFS(t)
	got, err := os.ReadFile(filepath.Join(mnt, "by-type", "obs", "2026-12-01", "lazy.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read through sshfs: %d bytes, %v; want %d", len(got), err, len(data))
	}
	for _, p := range []string{mnt, filepath.Join(mnt, "by-date")} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if y := fi.ModTime().Year(); y < 2026 || y > time.Now().Year() {
			t.Errorf("%s: mtime %v", p, fi.ModTime())
		}
	}
}

// Listings start with "." and "..", as OpenSSH's server sends them:
// sshfs passes them on, and "ls -a" through it showed neither. Clients
// that walk trees (get -r, scp -r, rclone) skip them.
func TestSFTPListsDotEntries(t *testing.T) {
	needTool(t, "sftp")
	s := startSFTPServer(t, "")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644)
	out, code := s.sftpBatch(t, dir, "put f /by-date/2026-02-02/obs/f\nls -1a /by-date/2026-02-02/obs\nget -r /by-date/2026-02-02 got\n")
	if code != 0 {
		t.Fatalf("sftp: exit %d\n%s", code, out)
	}
	for _, want := range []string{"/obs/.\n", "/obs/..\n", "/obs/f\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("ls -1a lacks %q:\n%s", want, out)
		}
	}
	sameFile(t, filepath.Join(dir, "got", "obs", "f"), []byte("x"))
}
