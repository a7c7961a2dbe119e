package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// What an operator's first hour found in the CLI, checked with the real
// binary.

// The README promises exit status 2 for bad input, a bad flag included;
// cobra's refusals (an unknown flag or command, missing arguments) and a
// configuration that does not load exited 1.
func TestCLIUsageErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	c := cli{t, []string{"--data", filepath.Join(dir, "var")}}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("cahce: {}\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"find", "--bogus", "a=b"}, "unknown flag: --bogus"},
		{[]string{"find"}, "datagate find --help"},
		{[]string{"get"}, "datagate get --help"},
		{[]string{"frob"}, `unknown command "frob"`},
		{[]string{"--log-level", "loud", "find", "a=b"}, "--log-level loud: want debug, info, warn or error"},
		{[]string{"--config", bad, "find", "a=b"}, `unknown key "cahce"`},
		{[]string{"stat", "nope"}, "object id nope: want 26 letters and digits"},
		{[]string{"find", "--limit", "-5", "a=b"}, "--limit -5: want 0 (no limit) or more"},
		// A missing input file is bad input, not the missing object of exit 3.
		{[]string{"put", filepath.Join(dir, "nofile")}, "no such file or directory"},
		{[]string{"register", filepath.Join(dir, "nofile")}, "no such file or directory"},
		{[]string{"register", "--batch", "0"}, "--batch 0: want 1 or more records"},
		{[]string{"serve", "--mount", "alice"}, `--mount "alice": want NAME:MOUNTPOINT`},
		{[]string{"serve", "--mount", "bob:" + dir}, `no such user "bob" (the configuration has no users:)`},
		// The views' namespace: an object given dg.view and dg.dir left
		// its views and showed as an empty directory.
		{[]string{"put", bad, "--meta", "dg.view=x"}, "--meta dg.view: the dg. namespace is reserved"},
		{[]string{"crawl", "local", "--meta", "dg.dir=x"}, "--meta dg.dir: the dg. namespace is reserved"},
	} {
		_, errs, code := c.run("", tc.args...)
		if code != 2 || !strings.Contains(errs, tc.want) {
			t.Errorf("datagate %v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, errs, tc.want)
		}
	}
	// Refused before anything was made: serve with a bad --mount opened
	// the store and started its admin API first.
	if _, err := os.Stat(filepath.Join(dir, "var")); err == nil {
		t.Error("a refused command line made the data directory")
	}
}

// A malformed NDJSON line registered through a running server was reported
// as "line 2: line 2: … (batch from line 1 not applied) (batch from line 0
// not applied)"; without a server the same input says it once.
func TestCLIRegisterErrorThroughServer(t *testing.T) {
	dataDir := t.TempDir()
	in := `{"location":{"provider":"local","path":"a"}}` + "\n" + `{"bad` + "\n"
	_, alone, code := cli{t, []string{"--data", dataDir}}.run(in, "register")
	if code != 2 {
		t.Fatalf("register without a server: exit %d %q", code, alone)
	}
	startServer(t, dataDir)
	_, served, code := cli{t, []string{"--data", dataDir}}.run(in, "register")
	if code != 2 {
		t.Fatalf("register through the server: exit %d %q", code, served)
	}
	for _, errs := range []string{alone, served} {
		if strings.Count(errs, "line 2") != 1 || strings.Count(errs, "not applied") != 1 || !strings.Contains(errs, "batch from line 1 not applied") {
			t.Errorf("register error %q: want line 2 and its batch named once", errs)
		}
	}
	// With batches of one line, line 1's is applied: the server's error
	// answer has no counts, and the CLI printed "0 added" all the same.
	in = `{"location":{"provider":"local","path":"b"}}` + "\n" + `{"bad` + "\n"
	out, errs, code := cli{t, []string{"--data", dataDir}}.run(in, "register", "--batch", "1")
	if code != 2 || strings.Contains(out, "0 added") || !strings.Contains(errs, "batch from line 2 not applied") {
		t.Errorf("register through the server, one batch applied: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// get -o made its file with a temporary file's 0600: other users could not
// read what the shell's > or curl -o would have let them read.
func TestCLIGetOutputMode(t *testing.T) {
	dataDir := t.TempDir()
	c := cli{t, []string{"--data", dataDir}}
	src := filepath.Join(t.TempDir(), "a.txt")
	os.WriteFile(src, []byte("hello\n"), 0o644)
	id := idRE.FindString(c.ok("", "put", src))
	umask := processUmask(t)
	out := filepath.Join(t.TempDir(), "new.txt")
	c.ok("", "get", id, "-o", out)
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o666&^umask {
		t.Fatalf("get -o of a new file: %v %v, want %04o (0666 less the umask %04o)", st.Mode(), err, 0o666&^umask, umask)
	}
	// Over an existing file, its mode stays, as with > or curl -o.
	old := filepath.Join(t.TempDir(), "old.txt")
	os.WriteFile(old, []byte("x"), 0o600)
	os.Chmod(old, 0o640)
	c.ok("", "get", id, "-o", old)
	if st, err := os.Stat(old); err != nil || st.Mode().Perm() != 0o640 {
		t.Fatalf("get -o over a 0640 file: %v %v", st.Mode(), err)
	}
	if b, _ := os.ReadFile(old); string(b) != "hello\n" {
		t.Fatalf("get -o wrote %q", b)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(old), ".old.txt.*"))
	if len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// processUmask reads this process's umask from /proc (Linux ≥ 4.7),
// which setting it to read it would race with other goroutines' files.
func processUmask(t *testing.T) os.FileMode {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				t.Fatal(err)
			}
			return os.FileMode(n)
		}
	}
	t.Skip("no Umask in /proc/self/status")
	return 0
}

// With --config (a file without data:) and --data DIR, the default local
// provider stayed at ./var/import: demo wrote its files there, beside the
// data directory the operator chose, and crawled them from there.
func TestCLIDataFlagMovesDefaultProvider(t *testing.T) {
	dir := t.TempDir() // the working directory: ./var would be here
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("log: {level: info}\n"), 0o600)
	data := filepath.Join(dir, "elsewhere")
	run := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, datagateBin, append([]string{"--config", cfg, "--data", data}, args...)...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("datagate %v: %v", args, err)
		}
		return string(out)
	}
	run("demo")
	if got, _ := filepath.Glob(filepath.Join(data, "import", "*", "obs", "obs-00.bin")); len(got) != 1 {
		t.Fatalf("demo files under %s/import: %v", data, got)
	}
	if _, err := os.Stat(filepath.Join(dir, "var")); err == nil {
		t.Fatal("demo wrote into ./var/import")
	}
	if out := run("find", "origin=demo"); strings.Count(out, "\n") != 10 {
		t.Fatalf("find after demo: %q", out)
	}
}

// crawl printed a table of zeros for a provider that does not exist, and
// nothing at all to say that a mistyped --prefix listed no file.
func TestCLICrawlReports(t *testing.T) {
	dataDir := t.TempDir()
	c := cli{t, []string{"--data", dataDir}}
	out, errs, code := c.run("", "crawl", "nosuch")
	if code != 2 || out != "" || !strings.Contains(errs, `unknown provider "nosuch"`) {
		t.Fatalf("crawl of an unknown provider: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	out, errs, code = c.run("", "crawl", "local", "--prefix", "typo")
	if code != 0 || !strings.Contains(out, "listed") || !strings.Contains(errs, `lists no file under "typo"`) {
		t.Fatalf("crawl of an empty prefix: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// Names and metadata with spaces, "%", "&", "+", "=" and non-ASCII letters
// go in and come out as typed, with and without a server; stat and find
// --json printed "&" as \u0026.
func TestCLINamesAsTyped(t *testing.T) {
	for _, served := range []bool{false, true} {
		dataDir := t.TempDir()
		if served {
			startServer(t, dataDir)
		}
		c := cli{t, []string{"--data", dataDir}}
		name := "a b%20é+&x=1.txt"
		src := filepath.Join(t.TempDir(), name)
		os.WriteFile(src, []byte("hi\n"), 0o644)
		id := idRE.FindString(c.ok("", "put", src, "--meta", "note=50% é & x=y", "--meta", "type=obs"))
		st := c.ok("", "stat", id)
		if !strings.Contains(st, `"name": "`+name+`"`) || !strings.Contains(st, `"note": "50% é & x=y"`) {
			t.Fatalf("served %v: stat %s", served, st)
		}
		if out := c.ok("", "find", "note=50% é & x=y", "--json"); !strings.Contains(out, `"name":"`+name+`"`) {
			t.Fatalf("served %v: find --json %q", served, out)
		}
		if out := c.ok("", "find", "note=50% é & x=y"); out != id+" "+name+"\n" {
			t.Fatalf("served %v: find %q", served, out)
		}
		if got := c.ok("", "get", id); got != "hi\n" {
			t.Fatalf("served %v: get %q", served, got)
		}
	}
}

// rm of several ids went no further than the first that failed (one the
// collector removed meanwhile): as rm(1), each failure is reported, the
// others are removed, and the status is the failure's.
func TestCLIRmGoesOn(t *testing.T) {
	dataDir := t.TempDir()
	c := cli{t, []string{"--data", dataDir}}
	src := filepath.Join(t.TempDir(), "a")
	os.WriteFile(src, []byte("a"), 0o644)
	a := idRE.FindString(c.ok("", "put", src))
	b := idRE.FindString(c.ok("", "put", src))
	gone := "01M95N8X9066Q6H1PX4DGP1QY0"
	_, errs, code := c.run("", "rm", a, gone, b)
	if code != 3 || !strings.Contains(errs, "rm "+gone+": no such object") || !strings.Contains(errs, "1 of 3 objects not removed") {
		t.Fatalf("rm: exit %d, %q", code, errs)
	}
	for _, id := range []string{a, b} {
		// Named by the command run (it said "get ID: not exist").
		if _, errs, code := c.run("", "stat", id); code != 3 || !strings.Contains(errs, "stat "+id+": no such object") {
			t.Fatalf("stat %s after rm: exit %d, %q; want 3, no such object", id, code, errs)
		}
	}
}

// put - read standard input (it was "open -: no such file or directory"),
// a pipe was announced as 0 bytes and refused, a directory gave the
// store's "invalid argument: read DIR: is a directory" (exit 1); get -o
// of a directory gave "rename …: file exists".
func TestCLIPutSources(t *testing.T) {
	for _, served := range []bool{false, true} {
		dataDir := t.TempDir()
		if served {
			startServer(t, dataDir)
		}
		c := cli{t, []string{"--data", dataDir}}
		body := strings.Repeat("from a pipe\n", 100000)
		out := c.ok(body, "put", "-", "--name", "p.txt", "--meta", "src=stdin")
		id := idRE.FindString(out)
		if !strings.Contains(out, " p.txt 1200000 bytes ") {
			t.Fatalf("served %v: put -: %q", served, out)
		}
		if got := c.ok("", "get", id); got != body {
			t.Fatalf("served %v: get of what put - stored: %d bytes", served, len(got))
		}
		if out := c.ok(body, "put", "/dev/stdin"); !strings.Contains(out, " stdin 1200000 bytes ") {
			t.Fatalf("served %v: put /dev/stdin: %q", served, out)
		}
		// A name no view can show is stored with a warning (it seemed lost).
		long := strings.Repeat("n", 256)
		if _, errs, code := c.run("x", "put", "-", "--name", long); code != 0 || !strings.Contains(errs, "no view can show it") {
			t.Errorf("served %v: put of a 256-byte name: exit %d, %q", served, code, errs)
		}
		dir := t.TempDir()
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"put", "-"}, "give --name"},
			{[]string{"put", dir}, "put " + dir + ": is a directory"},
			{[]string{"get", id, "-o", dir}, "get -o " + dir + ": is a directory"},
		} {
			if _, errs, code := c.run("x", tc.args...); code != 2 || !strings.Contains(errs, tc.want) {
				t.Errorf("served %v: datagate %v: exit %d, %q; want exit 2 and %q", served, tc.args, code, errs, tc.want)
			}
		}
	}
}

// A second serve (or a mount) on a served data directory was told to "run
// the command while it serves so the CLI goes through its socket", which
// neither can.
func TestCLISecondOwner(t *testing.T) {
	dataDir := t.TempDir()
	startServer(t, dataDir)
	c := cli{t, []string{"--data", dataDir}}
	_, errs, code := c.run("", "serve")
	// The owner is named by its command line (datagate --config … serve).
	if code == 0 || !strings.Contains(errs, "in use") || !regexp.MustCompile(`pid \d+: datagate .*serve\)`).MatchString(errs) || strings.Contains(errs, "socket") || !strings.Contains(errs, "give this server its own") {
		t.Fatalf("second serve: exit %d, %q", code, errs)
	}
}

// A hangup (the terminal of a foreground `datagate mount` closed, its ssh
// session dropped) killed the process by default and left the mount
// point "transport endpoint is not connected"; it now unmounts as on
// SIGINT or SIGTERM.
func TestMountCommandHangup(t *testing.T) {
	needMount(t)
	data, tmp := t.TempDir(), t.TempDir()
	cfg := filepath.Join(tmp, "datagate.yaml")
	os.WriteFile(cfg, []byte("data: "+data+"\n"+fuseViews), 0o600)
	mnt := filepath.Join(tmp, "mnt")
	os.Mkdir(mnt, 0o755)
	m := startMount(t, cfg, mnt)
	m.cmd.Process.Signal(syscall.SIGHUP)
	select {
	case err := <-m.done:
		if err != nil {
			t.Fatalf("mount after SIGHUP: %v\n%s", err, m.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("mount did not end on SIGHUP\n%s", m.stderr)
	}
	waitMounted(t, mnt, false, m.stderr)
	if _, err := os.ReadDir(mnt); err != nil {
		t.Fatalf("mount point after SIGHUP: %v", err)
	}
}

// A get through the server whose content fails after the answer's status
// (here: 10 MB registered with a wrong SHA-256, found wrong when the last
// piece arrives) said only "unexpected EOF", or, when the server had sent
// every byte before it judged them, succeeded with the wrong content. It
// now fails either way, saying where the cause is, and -o leaves no file.
func TestCLIGetCutThroughServer(t *testing.T) {
	dataDir := t.TempDir()
	os.MkdirAll(filepath.Join(dataDir, "import"), 0o755)
	os.WriteFile(filepath.Join(dataDir, "import", "wrong"), bytes.Repeat([]byte("0123456789"), 1_000_000), 0o644)
	startServer(t, dataDir)
	c := cli{t, []string{"--data", dataDir}}
	c.ok(`{"name":"wrong","meta":{"k":"cut"},"location":{"provider":"local","path":"wrong"},"size":10000000,"sha256":"`+strings.Repeat("0", 64)+`"}`+"\n", "register")
	id := idRE.FindString(c.ok("", "find", "k=cut"))
	out := filepath.Join(t.TempDir(), "out")
	_, errs, code := c.run("", "get", id, "-o", out)
	// Cut, or whole when the server sent the last bytes before it judged
	// them (a race on its side): either way an error, never a success.
	if code == 0 || !strings.Contains(errs, "the server's answer ended") && !strings.Contains(errs, "does not match its registered SHA-256") || !strings.Contains(errs, "server's log") {
		t.Fatalf("cut get: exit %d, %q", code, errs)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a cut get -o left its file")
	}
}

// A second SIGTERM (or Ctrl-C) ends serve at once: the first starts the
// graceful shutdown, which waits up to 10 s for answers in flight, and a
// second one was swallowed like the first.
func TestServeSecondSignal(t *testing.T) {
	dataDir := t.TempDir()
	src := filepath.Join(t.TempDir(), "big")
	os.WriteFile(src, bytes.Repeat([]byte("0123456789abcdef"), 4<<20), 0o644) // 64 MiB
	c := cli{t, []string{"--data", dataDir}}
	id := idRE.FindString(c.ok("", "put", src))
	s := startServer(t, dataDir)
	req, _ := http.NewRequest("GET", s.admin+"/api/v1/objects/"+id+"/content", nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.ReadFull(resp.Body, make([]byte, 1024)) // then read no more: the answer stays in flight

	s.cmd.Process.Signal(syscall.SIGTERM)
	waitLog(t, s.stderr, "shutting down")
	start := time.Now()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
			t.Fatalf("serve after a second SIGTERM: %v, want killed by it", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("serve ended %v after the second SIGTERM", d)
		}
	case <-time.After(8 * time.Second):
		t.Fatalf("serve still running 8 s after a second SIGTERM\n%s", s.stderr)
	}
}

// waitLog waits until the log holds want.
func waitLog(t *testing.T, log fmt.Stringer, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(log.String(), want); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log after 10 s\n%s", want, log)
		}
	}
}

// A local provider whose root is mistyped was created empty: every read
// of what was registered there then failed as not found. serve and the
// commands opening the store refuse it, naming the root (exit 2) and
// creating nothing; a store's root and the default provider's are
// created, and the corrected file serves.
func TestCLIMissingProviderRoot(t *testing.T) {
	dir := t.TempDir()
	export, typo := filepath.Join(dir, "export"), filepath.Join(dir, "exprot")
	os.Mkdir(export, 0o755)
	os.WriteFile(filepath.Join(export, "a.grib"), []byte("a"), 0o644)
	cfg := filepath.Join(dir, "datagate.yaml")
	write := func(root string) {
		os.WriteFile(cfg, []byte(fmt.Sprintf(`data: %s
listen: {admin: '127.0.0.1:0'}
providers:
  mars: {type: local, root: %s}
stores:
  - {name: second, type: local, root: %s}
`, filepath.Join(dir, "var"), root, filepath.Join(dir, "second"))), 0o644)
	}
	write(typo)
	c := cli{t, []string{"--config", cfg}}
	for _, args := range [][]string{{"crawl", "mars"}, {"find", "a=b"}, {"serve"}} {
		_, errs, code := c.run("", args...)
		if code != 2 || !strings.Contains(errs, typo) || !strings.Contains(errs, "does not exist") {
			t.Fatalf("%v with a missing provider root: exit %d %q, want 2 naming %s", args, code, errs, typo)
		}
	}
	if _, err := os.Stat(typo); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the mistyped root was created: %v", err)
	}
	write(export)
	if out := c.ok("", "crawl", "mars", "--json"); !strings.Contains(out, `"added":1`) {
		t.Fatalf("crawl of the corrected root: %q", out)
	}
	for _, d := range []string{"second", "var/import"} {
		if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || !fi.IsDir() {
			t.Fatalf("%s not created: %v", d, err)
		}
	}
}

// `get` without a server fetched the content but exited before the
// store's background job recorded its checksums: `stat` then showed it
// registered, without sums, as if never read. It now leaves the state a
// server's fetch leaves.
func TestCLIGetWithoutServerRecordsChecksums(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "var")
	os.MkdirAll(filepath.Join(data, "import"), 0o755)
	content := pattern(64<<20+5, 0x5a)
	os.WriteFile(filepath.Join(data, "import", "big.bin"), content, 0o644)
	c := cli{t, []string{"--data", data}}
	c.ok(`{"name":"big.bin","meta":{"k":"big"},"location":{"provider":"local","path":"big.bin"}}`+"\n", "register")
	id := strings.Fields(c.ok("", "find", "k=big") + " -")[0]
	out := filepath.Join(dir, "out.bin")
	c.ok("", "get", id, "-o", out)
	if got, _ := os.ReadFile(out); !bytes.Equal(got, content) {
		t.Fatal("get wrote other bytes")
	}
	var o struct{ State, SHA256, MD5 string }
	if err := json.Unmarshal([]byte(c.ok("", "stat", id)), &o); err != nil {
		t.Fatal(err)
	}
	if o.State != "cached" || o.SHA256 != sha256Hex(content) || o.MD5 == "" {
		t.Fatalf("after get without a server: %+v, want cached with the content's sums", o)
	}
}
