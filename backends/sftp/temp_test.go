package sftp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	iofs "io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/datagate/datagate/backends"
)

// crashEnv carries the Config of TestCrashedPutHelper's provider.
const crashEnv = "DATAGATE_SFTP_CRASHED_PUT"

// TestCrashedPutHelper is the process TestSweepTemp kills with SIGKILL in
// the middle of a Put: it writes 1 MiB of "AB/crashed" and waits.
func TestCrashedPutHelper(t *testing.T) {
	env := os.Getenv(crashEnv)
	if env == "" {
		t.Skip("run by TestSweepTemp")
	}
	var cfg Config
	if err := json.Unmarshal([]byte(env), &cfg); err != nil {
		t.Fatal(err)
	}
	p, err := New("crash", cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Put(context.Background(), "AB/crashed", io.MultiReader(bytes.NewReader(make([]byte, 1<<20)), &pausedReader{resume: make(chan struct{})}), -1)
	t.Fatal("Put returned: it should have been killed")
}

// pausedReader blocks until resume is closed, then reads r (nothing if
// nil).
type pausedReader struct {
	resume chan struct{}
	r      io.Reader
}

func (p *pausedReader) Read(b []byte) (int, error) {
	<-p.resume
	if p.r == nil {
		return 0, io.EOF
	}
	return p.r.Read(b)
}

// steadyReader gives 1 MiB every 200 ms until stop is closed: a copy in
// progress that keeps writing.
type steadyReader struct {
	stop chan struct{}
	n    int64
}

func (s *steadyReader) Read(b []byte) (int, error) {
	select {
	case <-s.stop:
		return 0, io.EOF
	case <-time.After(200 * time.Millisecond):
	}
	n := min(len(b), 1<<20)
	clear(b[:n])
	s.n += int64(n)
	return n, nil
}

// temps lists the temporary directory's files and their sizes.
func temps(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	m := make(map[string]int64)
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			m[e.Name()] = fi.Size()
		}
	}
	return m
}

// newTemp waits for a temporary file not in known to reach size bytes and
// returns its name.
func newTemp(t *testing.T, dir string, known map[string]int64, size int64) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for name, n := range temps(t, dir) {
			if _, ok := known[name]; !ok && n >= size {
				known[name] = n
				return name
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no new temporary file of %d bytes in %s: %v", size, dir, temps(t, dir))
	return ""
}

// TestSweepTemp: a Put whose process is killed (kill -9) leaves its
// temporary file on the server. SweepTemp removes it once older than the
// age bound, along with another server's copy paused longer than that,
// and leaves a copy in progress that keeps writing and this provider's
// own paused copy, which then complete.
func TestSweepTemp(t *testing.T) {
	f := newFixture(t, "store", nil)
	cfg := f.passwordConfig()
	cfg.Root = "store"
	dir := filepath.Join(f.dir, "store", tempDir)
	ctx := testCtx(t, 90*time.Second)
	p := newProvider(t, cfg)
	q := newProvider(t, cfg) // another server sharing the store
	if n, b, err := p.SweepTemp(ctx, time.Second); n != 0 || b != 0 || err != nil {
		t.Fatalf("SweepTemp before any Put: %d %d %v", n, b, err)
	}

	// The crash.
	env, _ := json.Marshal(cfg)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashedPutHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+string(env))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	known := map[string]int64{}
	crashed := newTemp(t, dir, known, 1<<20)
	cmd.Process.Kill()
	if err := cmd.Wait(); err == nil || cmd.ProcessState.ExitCode() != -1 {
		t.Fatalf("helper was not killed: %v\n%s", err, out.String())
	}

	// Copies in progress: one of q writing steadily, and one of p and one
	// of q that wrote 1 MiB and pause.
	type result struct {
		name string
		err  error
	}
	results := make(chan result, 3)
	put := func(w *Provider, name string, r io.Reader) {
		go func() { results <- result{name, w.Put(ctx, name, r, -1)} }()
	}
	stop := make(chan struct{})
	steady := &steadyReader{stop: stop}
	put(q, "AB/steady", steady)
	steadyTemp := newTemp(t, dir, known, 1)
	resumeP, resumeQ := make(chan struct{}), make(chan struct{})
	put(p, "AB/paused-here", io.MultiReader(bytes.NewReader(bytes.Repeat([]byte("p"), 1<<20)), &pausedReader{resumeP, bytes.NewReader([]byte("end"))}))
	pausedHere := newTemp(t, dir, known, 1<<20)
	put(q, "AB/paused-there", io.MultiReader(bytes.NewReader(make([]byte, 1<<20)), &pausedReader{resumeQ, nil}))
	pausedThere := newTemp(t, dir, known, 1<<20)

	// Too young for an hour's bound.
	if n, _, err := p.SweepTemp(ctx, time.Hour); n != 0 || err != nil {
		t.Fatalf("SweepTemp(1h): removed %d, %v", n, err)
	}
	// File times are whole seconds: past 3 s, the crashed file and the
	// paused ones are surely older than 2 s, the steady one surely not.
	age := 2 * time.Second
	time.Sleep(3*time.Second + 100*time.Millisecond)
	n, b, err := p.SweepTemp(ctx, age)
	if err != nil || n != 2 || b != 2<<20 {
		t.Errorf("SweepTemp(%v): removed %d files, %d bytes, %v; want 2, %d", age, n, b, err, 2<<20)
	}
	left := temps(t, dir)
	for _, name := range []string{crashed, pausedThere} {
		if _, ok := left[name]; ok {
			t.Errorf("%s left", name)
		}
	}
	for _, name := range []string{steadyTemp, pausedHere} {
		if _, ok := left[name]; !ok {
			t.Errorf("%s removed", name)
		}
	}

	close(stop)
	close(resumeP)
	close(resumeQ)
	errs := map[string]error{}
	for range 3 {
		r := <-results
		errs[r.name] = r.err
	}
	if errs["AB/steady"] != nil || errs["AB/paused-here"] != nil {
		t.Errorf("copies in progress failed: %v", errs)
	}
	if errs["AB/paused-there"] == nil {
		t.Error("the copy whose temporary file was swept succeeded")
	}
	if got := readAll(t, ctx, p, "AB/paused-here", 0, -1); !bytes.Equal(got, append(bytes.Repeat([]byte("p"), 1<<20), "end"...)) {
		t.Errorf("AB/paused-here: %d bytes", len(got))
	}
	if e, err := p.Stat(ctx, "AB/steady"); err != nil || e.Size != steady.n {
		t.Errorf("AB/steady: %+v %v, want %d bytes", e, err, steady.n)
	}
	var names []string
	if err := p.List(ctx, "", func(e backends.Entry) error { names = append(names, e.Path); return nil }); err != nil {
		t.Fatal(err)
	}
	if slices.Sort(names); !slices.Equal(names, []string{"AB/paused-here", "AB/steady"}) {
		t.Errorf("List: %q", names)
	}
	if err := p.Put(ctx, tempDir+"/x", bytes.NewReader(nil), 0); !errors.Is(err, iofs.ErrInvalid) {
		t.Errorf("Put into the temporary directory: %v, want ErrInvalid", err)
	}
	p.Close()
	q.Close()
	noTemps(t, f.dir)
}

// TestSweepTempAfterCut: a Put whose connection goes silent mid-write
// fails on the watchdog, and its removal of the temporary file cannot
// reach the server either: the file stays until a sweep.
func TestSweepTempAfterCut(t *testing.T) {
	f := newFixture(t, "", nil)
	cfg := f.passwordConfig()
	cfg.Timeout = time.Second
	p := newProvider(t, cfg)
	ctx := testCtx(t, 60*time.Second)
	dir := filepath.Join(f.dir, tempDir)
	resume := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- p.Put(ctx, "AB/cut", io.MultiReader(bytes.NewReader(make([]byte, 1<<20)), &pausedReader{resume, bytes.NewReader(make([]byte, 1<<20))}), -1)
	}()
	name := newTemp(t, dir, map[string]int64{}, 1<<20)
	f.srv.Stall(true)
	close(resume)
	if err := <-done; !errors.Is(err, backends.ErrUnavailable) {
		t.Fatalf("Put across a silent connection: %v, want ErrUnavailable", err)
	}
	f.srv.Stall(false)
	if _, ok := temps(t, dir)[name]; !ok {
		t.Fatalf("the temporary file is gone already (%v): the test cannot tell the sweep works", temps(t, dir))
	}
	// Writes the server had received before the stall land after it, at a
	// time the test cannot see: sweep until the file is older than 1 s.
	for {
		n, b, err := p.SweepTemp(ctx, time.Second)
		if err != nil || n > 1 || (n == 1 && b < 1<<20) {
			t.Fatalf("SweepTemp: removed %d files, %d bytes, %v; want 1 of at least %d", n, b, err, 1<<20)
		}
		if n == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the temporary file was not swept: %v", temps(t, dir))
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.Close()
	noTemps(t, f.dir)
}
