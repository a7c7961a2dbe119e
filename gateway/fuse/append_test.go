package fuse

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datagate/datagate/views"
)

// TestAppendersAndReaders runs processes' worth of appenders (each line
// one open, write, close, as echo >> does) and readers (whole reads, and
// tail -f's reads past the end of an open file) on one file for a while.
// Every read sees whole lines, and the file ends with every line once.
// Before readers followed in-place writes, a 10 s run of this on a mount
// read 390 damaged lines: appends landed over earlier ones.
func TestAppendersAndReaders(t *testing.T) {
	e := newEnv(t, map[string]views.Rights{"by-type": views.All}, Options{})
	if err := os.Mkdir(e.path("fc"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := e.path("fc/log")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^w\d+-\d+ x+$`)
	var (
		mu       sync.Mutex
		appended []string
		damaged  []string
	)
	check := func(who string, b []byte) {
		if len(b) == 0 {
			return
		}
		lines := strings.Split(string(b), "\n")
		why := ""
		if last := lines[len(lines)-1]; last != "" {
			why = fmt.Sprintf("a cut last line %q", last[:min(len(last), 40)])
		}
		for i, l := range lines[:len(lines)-1] {
			if why == "" && !line.MatchString(l) {
				why = fmt.Sprintf("line %d of %d: %q", i+1, len(lines)-1, l[:min(len(l), 40)])
			}
		}
		if why != "" {
			mu.Lock()
			damaged = append(damaged, fmt.Sprintf("%s read %d bytes, %s", who, len(b), why))
			mu.Unlock()
		}
	}
	end := time.Now().Add(2 * time.Second)
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := 1; time.Now().Before(end); i++ {
				l := fmt.Sprintf("w%d-%d %s", w, i, strings.Repeat("x", 1+(i*37+w)%150))
				if err := appendLine(p, l); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				appended = append(appended, l)
				mu.Unlock()
			}
		})
	}
	for r := range 3 {
		wg.Go(func() {
			buf := make([]byte, 64<<10)
			for time.Now().Before(end) {
				if r == 0 {
					b, err := os.ReadFile(p)
					if err != nil {
						t.Error(err)
						return
					}
					check("whole", b)
					continue
				}
				f, err := os.Open(p)
				if err != nil {
					t.Error(err)
					return
				}
				var got bytes.Buffer
				for range 5 {
					f.Stat()
					n, _ := f.Read(buf)
					got.Write(buf[:n])
					time.Sleep(5 * time.Millisecond)
				}
				f.Close()
				check("tail", got.Bytes())
			}
		})
	}
	wg.Wait()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	check("final", b)
	if len(damaged) > 0 {
		t.Fatalf("%d reads with damaged lines, first: %s", len(damaged), damaged[0])
	}
	got := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	sort.Strings(got)
	sort.Strings(appended)
	if strings.Join(got, "\n") != strings.Join(appended, "\n") {
		t.Fatalf("the file holds %d lines, %d were appended", len(got), len(appended))
	}
	t.Logf("%d lines appended", len(appended))
}

// TestAppendersAndRenames appends lines (open, write, close) while the
// file is renamed away every 100 ms, as log rotation does: every line
// ends up in exactly one of the files. A close racing the rename used to
// push to the old name once the object had moved away: a second object
// with all the lines so far, listed again at the next rotation.
func TestAppendersAndRenames(t *testing.T) {
	e := newEnv(t, map[string]views.Rights{"by-type": views.All}, Options{})
	if err := os.Mkdir(e.path("fc"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := e.path("fc/log")
	var (
		mu       sync.Mutex
		appended []string
	)
	end := time.Now().Add(1500 * time.Millisecond)
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := 1; time.Now().Before(end); i++ {
				l := fmt.Sprintf("w%d-%d", w, i)
				if err := appendLine(p, l); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				appended = append(appended, l)
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		for n := 1; time.Now().Before(end); n++ {
			time.Sleep(100 * time.Millisecond)
			if err := os.Rename(p, fmt.Sprintf("%s.%d", p, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	var got []string
	ents, err := os.ReadDir(e.path("fc"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range ents {
		b, err := os.ReadFile(e.path("fc/" + ent.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
	}
	sort.Strings(got)
	sort.Strings(appended)
	if strings.Join(got, "\n") != strings.Join(appended, "\n") {
		t.Fatalf("%d files hold %d lines; %d lines were appended", len(ents), len(got), len(appended))
	}
	t.Logf("%d lines in %d files", len(got), len(ents))
}

// appendLine appends l and a newline to the file at p, as echo >> does:
// open (creating it), one write, close.
func appendLine(p, l string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(l + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// TestRewritesBesideReaderLoops rewrites a file (O_TRUNC) while readers
// open and read it in a loop (cat in a loop, a web server): no rewrite
// fails. A rewrite beside readers goes to a new inode and the kernel
// retries its open there once; a reader opening that inode first used to
// send it away again, and the open failed ESTALE (about 1 in 1,000).
func TestRewritesBesideReaderLoops(t *testing.T) {
	e := newEnv(t, map[string]views.Rights{"by-type": views.All}, Options{})
	if err := os.Mkdir(e.path("fc"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := e.path("fc/page")
	if err := os.WriteFile(p, []byte("v0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for time.Now().Before(end) {
				b, err := os.ReadFile(p)
				if err != nil {
					t.Error(err)
					return
				}
				if s := string(b); s != "" && s != "v0\n" && s != "v1\n" {
					t.Errorf("read %q", s)
					return
				}
			}
		})
	}
	rewrites, failed := 0, 0
	for time.Now().Before(end) {
		if err := os.WriteFile(p, []byte("v1\n"), 0o644); err != nil {
			if failed++; failed == 1 {
				t.Error(err)
			}
			continue
		}
		rewrites++
	}
	wg.Wait()
	if failed > 0 {
		t.Fatalf("%d of %d rewrites failed", failed, rewrites+failed)
	}
	t.Logf("%d rewrites", rewrites)
}
