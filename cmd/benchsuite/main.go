// Command benchsuite runs the benchmarks behind the README's figures —
// every front-end's and the core's, each beside the reference it is
// measured against in the same run — and prints one table: area,
// measurement, datagate, reference, ratio, target, result.
//
//	go run ./cmd/benchsuite                # make bench: everything, full sizes
//	go run ./cmd/benchsuite --quick        # make bench-quick: smaller sizes
//	go run ./cmd/benchsuite --only fuse,s3 # some groups or steps
//	go run ./cmd/benchsuite --from DIR     # the table of an earlier run's logs
//
// Each step is a `go test -run '^$' -bench ... -v` whose output is kept in
// the log directory (--out) and parsed: the rows read the metrics the
// benchmarks report (testing.B.ReportMetric). A row whose tool is missing
// says "skipped: no X"; a missed target is not an error, a failed step is
// (exit status 1, after the table).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

type options struct {
	quick   bool
	only    string
	asJSON  bool
	verbose bool
	out     string
	from    string
	list    bool
}

func main() {
	var o options
	flag.BoolVar(&o.quick, "quick", false, "smaller sizes (see the knobs in the README); every row is still printed")
	flag.StringVar(&o.only, "only", "", "comma-separated groups (core, recovery, fuse, sftp, s3, webdav) or step names")
	flag.BoolVar(&o.asJSON, "json", false, "print the machine, the steps and the rows as JSON instead of a table")
	flag.BoolVar(&o.verbose, "v", false, "copy each step's go test output to stderr as it runs")
	flag.StringVar(&o.out, "out", "", "directory for the steps' logs (default: a new temporary directory)")
	flag.StringVar(&o.from, "from", "", "print the table of the logs in this directory instead of running")
	flag.BoolVar(&o.list, "list", false, "print the steps' commands and exit")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchsuite:", err)
		os.Exit(1)
	}
}

// stepRun is what became of one step.
type stepRun struct {
	Name    string  `json:"name"`
	Command string  `json:"command"`
	Seconds float64 `json:"seconds"`
	Status  string  `json:"status"` // ok, or why not
	Log     string  `json:"log"`
}

type report struct {
	Machine machine   `json:"machine"`
	Started time.Time `json:"started"`
	Seconds float64   `json:"seconds"`
	Quick   bool      `json:"quick"`
	Command string    `json:"command"`       // what was run, as a user would type it
	Env     []string  `json:"env,omitempty"` // the size knobs that were set
	Steps   []stepRun `json:"steps"`
	Rows    []line    `json:"rows"`
}

func run(ctx context.Context, o options, stdout, stderr io.Writer) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	selected, err := selectSteps(o.only)
	if err != nil {
		return err
	}
	getenv := stepEnv(o.quick)
	if o.list {
		for _, s := range selected {
			fmt.Fprintf(stdout, "%-15s %s%s\n", s.name, envPrefix(s, o.quick), shellJoin(s.command(o.quick)))
		}
		return nil
	}
	rep := report{Started: time.Now().UTC(), Quick: o.quick, Command: o.command()}
	if o.from == "" {
		rep.Machine = describeMachine(root) // --from: the logs' machine is not known
	}
	for _, k := range sortedKnobs() {
		used := os.Getenv(k.env) != ""
		for _, s := range selected {
			_, inQuick := s.quick[k.env]
			used = used || (o.quick && inQuick)
		}
		if v := getenv(k.env); v != "" && used {
			rep.Env = append(rep.Env, k.env+"="+v)
		}
	}
	dir := o.from
	if dir == "" {
		if dir, err = logDir(o.out); err != nil {
			return err
		}
		rep.Steps = runSteps(ctx, root, dir, selected, o, stderr)
	} else {
		for _, s := range selected {
			if _, err := os.Stat(filepath.Join(dir, s.name+".log")); err != nil && o.only == "" {
				continue // not run then
			}
			rep.Steps = append(rep.Steps, stepRun{Name: s.name, Command: shellJoin(s.command(o.quick)), Status: "ok", Log: filepath.Join(dir, s.name+".log")})
		}
	}
	if o.from == "" {
		rep.Seconds = time.Since(rep.Started).Seconds()
	}
	if o.from == "" {
		rep.Machine.LoadTo = loadAverage()
	}

	failed := 0
	byStep := map[string]*results{}
	for i := range rep.Steps {
		sr := &rep.Steps[i]
		res := newResults()
		f, err := os.Open(sr.Log)
		if err == nil {
			err = res.parse(f)
			f.Close()
		}
		if err != nil && sr.Status == "ok" {
			sr.Status = err.Error()
		}
		byStep[sr.Name] = res
		if sr.Status != "ok" {
			failed++
		}
	}
	for _, r := range rows {
		res, ok := byStep[r.step]
		if !ok {
			continue
		}
		// The sizes the step ran with, as its log says (--from reads
		// logs of another run).
		stepGetenv := func(name string) string {
			if v, ok := res.env[name]; ok {
				return v
			}
			if o.from != "" {
				return ""
			}
			return getenv(name)
		}
		l := evaluateRow(r, res, stepGetenv, have)
		if l.Result == resultNone {
			for _, sr := range rep.Steps {
				if sr.Name == r.step && sr.Status != "ok" {
					l.Result = "failed: " + sr.Status
					if res.trouble != "" {
						l.Result = "failed: " + res.trouble
					}
				}
			}
		}
		rep.Rows = append(rep.Rows, l)
	}

	if o.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		writeHeader(stdout, rep, dir)
		if err := writeMarkdown(stdout, rep.Rows); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d steps failed; their logs are in %s", failed, len(rep.Steps), dir)
	}
	return nil
}

func writeHeader(w io.Writer, rep report, dir string) {
	cmd := rep.Command
	if rep.Seconds == 0 {
		fmt.Fprintf(w, "Table of the logs in %s (commands at the top of each).\n\n", dir)
		return
	}
	fmt.Fprintf(w, "Measured %s by `%s` in %s on %s.\n", rep.Started.Format("2006-01-02 15:04 MST"), cmd,
		time.Duration(rep.Seconds*float64(time.Second)).Round(time.Second), rep.Machine)
	if len(rep.Env) > 0 {
		fmt.Fprintf(w, "Sizes set: %s.", strings.Join(rep.Env, " "))
		if rep.Quick {
			fmt.Fprint(w, " The targets are for the full sizes: read met/missed as indicative.")
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Logs: %s\n\n", dir)
}

// command is how the run was asked for.
func (o options) command() string {
	switch {
	case o.only == "" && o.quick:
		return "make bench-quick"
	case o.only == "":
		return "make bench"
	case o.quick:
		return "go run ./cmd/benchsuite --quick --only " + o.only
	}
	return "go run ./cmd/benchsuite --only " + o.only
}

// command is the go test invocation of a step.
func (s step) command(quick bool) []string {
	args := []string{"go", "test", s.pkg, "-run", "^$", "-bench", s.bench, "-v", "-timeout", s.timeout}
	bt := s.benchtime
	if quick && s.quickBenchtime != "" {
		bt = s.quickBenchtime
	}
	if bt != "" {
		args = append(args, "-benchtime", bt)
	}
	return args
}

// envPrefix shows the size variables a step runs with, for --list.
func envPrefix(s step, quick bool) string {
	getenv := stepEnv(quick)
	var b strings.Builder
	for _, k := range sortedKnobs() {
		if _, used := s.quick[k.env]; !used && os.Getenv(k.env) == "" {
			continue
		}
		if v := getenv(k.env); v != "" {
			b.WriteString(k.env + "=" + v + " ")
		}
	}
	return b.String()
}

func sortedKnobs() []knob {
	ks := make([]knob, 0, len(knobs))
	for _, k := range knobs {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i].env < ks[j].env })
	return ks
}

// stepEnv is the value of a variable for the steps: the process's own,
// else in quick mode the smaller size every step that reads it uses.
func stepEnv(quick bool) env {
	return func(name string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		if quick {
			for _, s := range steps {
				if v, ok := s.quick[name]; ok {
					return v
				}
			}
		}
		return ""
	}
}

func selectSteps(only string) ([]step, error) {
	if only == "" {
		return steps, nil
	}
	want := map[string]bool{}
	for _, w := range strings.Split(only, ",") {
		if w = strings.TrimSpace(w); w != "" {
			want[w] = true
		}
	}
	var out []step
	for _, s := range steps {
		if want[s.name] || want[s.group] {
			out = append(out, s)
			delete(want, s.name)
		}
	}
	for _, s := range steps {
		delete(want, s.group)
	}
	if len(want) > 0 {
		var names []string
		for w := range want {
			names = append(names, w)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("no step or group %s (try --list)", strings.Join(names, ", "))
	}
	return out, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the module (no go.mod above the working directory)")
		}
		dir = parent
	}
}

func logDir(out string) (string, error) {
	if out == "" {
		return os.MkdirTemp("", "datagate-bench-")
	}
	return out, os.MkdirAll(out, 0o755)
}

// runSteps runs the steps one after the other (they would skew each
// other's figures side by side), showing progress on a terminal and one
// key=value line per step otherwise.
func runSteps(ctx context.Context, root, dir string, ss []step, o options, stderr io.Writer) []stepRun {
	var bar *progressbar.ProgressBar
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) && !o.verbose {
		bar = progressbar.NewOptions(len(ss), progressbar.OptionSetWriter(stderr), progressbar.OptionShowCount(),
			progressbar.OptionSetElapsedTime(true), progressbar.OptionSetPredictTime(false),
			progressbar.OptionSetWidth(20), progressbar.OptionThrottle(500*time.Millisecond))
	}
	var out []stepRun
	for i, s := range ss {
		if ctx.Err() != nil {
			break
		}
		args := s.command(o.quick)
		sr := stepRun{Name: s.name, Command: envPrefix(s, o.quick) + shellJoin(args), Log: filepath.Join(dir, s.name+".log")}
		start := time.Now()
		stopTicker := func() {}
		if bar != nil {
			stopTicker = tick(bar, func() string {
				return fmt.Sprintf("%s (%s)", s.name, time.Since(start).Round(time.Second))
			})
		}
		sr.Status = runStep(ctx, root, s, args, o, sr.Log, stderr)
		sr.Seconds = time.Since(start).Seconds()
		stopTicker()
		if bar != nil {
			bar.Add(1)
			if sr.Status != "ok" {
				bar.Clear()
				fmt.Fprintf(stderr, "%s: %s (%s)\n", s.name, sr.Status, sr.Log)
			}
		} else {
			fmt.Fprintf(stderr, "step=%s n=%d/%d status=%q seconds=%.0f log=%s\n", s.name, i+1, len(ss), sr.Status, sr.Seconds, sr.Log)
		}
		out = append(out, sr)
	}
	if bar != nil {
		bar.Finish()
		fmt.Fprintln(stderr)
	}
	return out
}

// tick redraws the bar's description every second until stopped, so a
// ten-minute step shows it is alive.
func tick(bar *progressbar.ProgressBar, desc func() string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			bar.Describe(desc())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// runStep runs one go test in its own process group, so that an interrupt
// also ends the servers the benchmark started, and returns "ok" or what
// went wrong.
func runStep(ctx context.Context, root string, s step, args []string, o options, logPath string, stderr io.Writer) string {
	f, err := os.Create(logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	fmt.Fprintf(f, "# %s%s\n", envPrefix(s, o.quick), shellJoin(args))
	var w io.Writer = f
	if o.verbose {
		w = io.MultiWriter(f, stderr)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = w, w
	cmd.Env = os.Environ()
	getenv := stepEnv(o.quick)
	for name := range s.quick {
		if o.quick && os.Getenv(name) == "" {
			cmd.Env = append(cmd.Env, name+"="+getenv(name))
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	err = cmd.Run()
	switch {
	case ctx.Err() != nil:
		return "interrupted"
	case err != nil:
		return err.Error()
	}
	return "ok"
}

// shellJoin prints a command so that it can be pasted into a shell.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./=:-") == "" {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}
