package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY returns a pseudo-terminal's two ends: what a program writes to
// the second is read from the first.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Skipf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("open pts: %v", err)
	}
	return m, s
}

// withStderr runs fn with os.Stderr replaced by f.
func withStderr(f *os.File, fn func()) {
	saved := os.Stderr
	os.Stderr = f
	defer func() { os.Stderr = saved }()
	fn()
}

// On a terminal, put and register draw a progress bar on stderr; stdout
// keeps only the result. Elsewhere stderr gets no bar, and --json makes
// the result one JSON value.
func TestProgressOnTerminalOnly(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "var")
	src := filepath.Join(dir, "big.bin")
	if err := os.WriteFile(src, bytes.Repeat([]byte("datagate"), 4<<20), 0o644); err != nil { // 32 MiB
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(data, "import"), 0o755)
	os.WriteFile(filepath.Join(data, "import", "f.bin"), bytes.Repeat([]byte("0123456789"), 20), 0o644)
	nd := filepath.Join(dir, "records.ndjson")
	var records strings.Builder
	for i := range 200 {
		fmt.Fprintf(&records, `{"name":"r%d","meta":{"n":"%d"},"location":{"provider":"local","path":"f.bin","offset":%d,"length":1}}`+"\n", i, i, i)
	}
	os.WriteFile(nd, []byte(records.String()), 0o644)

	master, tty := openPTY(t)
	defer master.Close()
	drawn := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(master) // ends with EIO once tty is closed
		drawn <- string(b)
	}()
	var putOut, regOut string
	withStderr(tty, func() {
		var err error
		if putOut, err = runCmd(t, "", "--data", data, "put", src); err != nil {
			t.Fatal(putOut, err)
		}
		if regOut, err = runCmd(t, "", "--data", data, "register", nd); err != nil {
			t.Fatal(regOut, err)
		}
	})
	tty.Close()
	bar := <-drawn
	for _, want := range []string{"put big.bin", "32 MiB", "100%", "register"} {
		if !strings.Contains(bar, want) {
			t.Errorf("the terminal shows no %q:\n%q", want, bar)
		}
	}
	if f := strings.Fields(putOut); len(f) != 5 || f[2] != "33554432" || strings.Contains(putOut, "%") {
		t.Errorf("put's stdout: %q", putOut)
	}
	if regOut != "200 added, 0 updated, 0 unchanged\n" {
		t.Errorf("register's stdout: %q", regOut)
	}

	// Not a terminal: nothing drawn, and --json gives one value.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	piped := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(r)
		piped <- string(b)
	}()
	withStderr(w, func() {
		if putOut, err = runCmd(t, "", "--data", data, "put", "--json", "--name", "again.bin", src); err != nil {
			t.Fatal(putOut, err)
		}
		if regOut, err = runCmd(t, "", "--data", data, "register", "--json", nd); err != nil {
			t.Fatal(regOut, err)
		}
	})
	w.Close()
	if s := <-piped; strings.Contains(s, "%") || strings.Contains(s, "again.bin") {
		t.Errorf("a progress bar on a pipe: %q", s)
	}
	var o struct {
		Name string `json:"name"`
		Size int64  `json:"size"`
	}
	if err := json.Unmarshal([]byte(putOut), &o); err != nil || o.Name != "again.bin" || o.Size != 32<<20 {
		t.Errorf("put --json: %q (%v)", putOut, err)
	}
	var res struct{ Added, Unchanged int }
	if err := json.Unmarshal([]byte(regOut), &res); err != nil || res.Unchanged != 200 {
		t.Errorf("register --json: %q (%v)", regOut, err)
	}
}
