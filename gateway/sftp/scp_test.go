package sftp

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// runSCP runs the remote half of scp with all of the client's input sent
// at once, and returns what the server wrote and its exit status.
func runSCP(t *testing.T, conn *gossh.Client, cmd string, input string) (string, int) {
	t.Helper()
	s, err := conn.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out bytes.Buffer
	s.Stdout, s.Stdin = &out, strings.NewReader(input)
	err = s.Run(cmd)
	var ee *gossh.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee):
		return out.String(), ee.ExitStatus()
	}
	t.Fatalf("%s: %v", cmd, err)
	return "", -1
}

func TestLegacySCPBadInput(t *testing.T) {
	e := newTestEnv(t, nil)
	c, conn := e.client(t)
	dir := "/by-date/2026-01-01/obs"
	put(t, c, dir+"/existing", []byte("old"))
	for _, tc := range []struct {
		name, input, visible string
	}{
		{"slash in name", "C0644 3 a/b\nabc\x00", "a"},
		{"dot dot", "C0644 3 ..\nabc\x00", ""},
		{"dot", "D0755 0 .\nE\n", ""},
		{"control character", "C0644 3 a\x01b\nabc\x00", "a\x01b"},
		{"newline in name", "C0644 3 nl\nx\nabc\x00", "nl"},
		{"size larger than the data", "C0644 10 short\nabc", "short"},
		{"size smaller than the data", "C0644 2 long\nabc\x00", "long"},
		{"negative size", "C0644 -1 neg\n", "neg"},
		{"enormous size", "C0644 99999999999999999999 huge\n", "huge"},
		{"bad mode", "C06x4 3 mode\nabc\x00", "mode"},
		{"unknown line", "X\n", ""},
		{"directory without -r", "D0755 0 sub\nE\n", "sub"},
		{"overwrite through a lying size", "C0644 1 existing\nnew\x00", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := runSCP(t, conn, "scp -t "+dir, tc.input)
			if code != 1 {
				t.Fatalf("exit %d, output %q", code, out)
			}
			if !strings.HasPrefix(out, "\x00") || !strings.Contains(out, "\x02scp: ") {
				t.Fatalf("no fatal error line: %q", out)
			}
			if tc.visible != "" {
				if _, err := c.Stat(dir + "/" + tc.visible); err == nil {
					t.Fatalf("%s became visible", tc.visible)
				}
			}
			if got := string(get(t, c, dir+"/existing")); got != "old" {
				t.Fatalf("existing file is now %q", got)
			}
		})
	}
}

func TestLegacySCPRoundTrip(t *testing.T) {
	e := newTestEnv(t, nil)
	c, conn := e.client(t)
	// Sink: a file with times, then a directory tree.
	in := "T1600000000 0 1600000001 0\n" +
		"D0755 0 2026-06-06\nD0755 0 fc\nC0600 5 f1\nhello\x00E\nE\n"
	out, code := runSCP(t, conn, "scp -r -p -t /by-date", in)
	if code != 0 {
		t.Fatalf("sink: exit %d %q", code, out)
	}
	if out != strings.Repeat("\x00", 1+1+1+1+2+1+1) {
		t.Fatalf("sink answers %q", out)
	}
	if got := string(get(t, c, "/by-type/fc/2026-06-06/f1")); got != "hello" {
		t.Fatalf("f1: %q", got)
	}
	out, code = runSCP(t, conn, "scp -t /by-date/2026-06-06/fc", "T1600000000 0 1600000001 0\nC0644 3 good\nabc\x00")
	if code != 0 {
		t.Fatalf("sink file: exit %d %q", code, out)
	}
	fi, err := c.Stat("/by-date/2026-06-06/fc/good")
	if err != nil || !fi.ModTime().Equal(time.Unix(1600000000, 0)) {
		t.Fatalf("stat good: %v %v", fi, err)
	}

	// A refused file is a warning (status 1 line), and the transfer goes on.
	out, code = runSCP(t, conn, "scp -t /by-date", "C0644 3 toplevel\nabc\x00")
	if code != 1 || !strings.HasPrefix(out, "\x00\x00\x01scp: ") {
		t.Fatalf("refused file: exit %d %q", code, out)
	}

	// Source: one file, with -p.
	out, code = runSCP(t, conn, "scp -p -f /by-type/fc/2026-06-06/good", "\x00\x00\x00\x00")
	if want := "T1600000000 0 1600000000 0\nC0644 3 good\nabc\x00"; code != 0 || out != want {
		t.Fatalf("source: exit %d %q, want %q", code, out, want)
	}
	// Recursive.
	out, code = runSCP(t, conn, "scp -r -f /by-date/2026-06-06", strings.Repeat("\x00", 10))
	if want := "D0755 0 2026-06-06\nD0755 0 fc\nC0644 5 f1\nhello\x00C0644 3 good\nabc\x00E\nE\n"; code != 0 || out != want {
		t.Fatalf("source -r: exit %d %q, want %q", code, out, want)
	}
	// A directory without -r, and a path outside the views: warnings.
	out, code = runSCP(t, conn, "scp -f /by-date/2026-06-06 /secret/x", "\x00")
	if code != 1 || strings.Count(out, "\x01scp: ") != 2 || !strings.Contains(out, "No such file") {
		t.Fatalf("source errors: exit %d %q", code, out)
	}
	// A client that refuses a file (status 1) gets the next one.
	out, code = runSCP(t, conn, "scp -f /by-date/2026-06-06/fc/f1 /by-date/2026-06-06/fc/good", "\x00\x01no room\n\x00\x00\x00")
	if code != 1 || !strings.HasSuffix(out, "C0644 3 good\nabc\x00") {
		t.Fatalf("client warning: exit %d %q", code, out)
	}
	// Bad arguments.
	if out, code := runSCP(t, conn, "scp -t -f /x", ""); code != 1 {
		t.Fatalf("-t -f: exit %d %q", code, out)
	}
}
