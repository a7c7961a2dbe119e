package main

import (
	"bufio"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// results is what one or more `go test -bench -v` outputs said: the
// metrics of every benchmark that finished, and why the others did not.
type results struct {
	// metrics[bench][unit] holds one value per run (-count, or the same
	// benchmark in two steps); rows read their median.
	metrics map[string]map[string][]float64
	skipped map[string]string // benchmark → reason (first line of its log)
	failed  map[string]string // benchmark → reason
	// env holds the VAR=value assignments of the "# VAR=value go test …"
	// line the suite writes at the top of each log: the sizes it ran with.
	env map[string]string
	// trouble is what ended the whole go test early, when it did: a
	// build error, a panic, a timeout.
	trouble string
}

func newResults() *results {
	return &results{metrics: map[string]map[string][]float64{}, skipped: map[string]string{}, failed: map[string]string{}, env: map[string]string{}}
}

// A result line as printed by testing.B with -v: the name (spaces of
// sub-benchmark names already turned into '_'), the GOMAXPROCS suffix when
// it is not 1, the iteration count, then tab-separated "value unit" pairs.
var resultLine = regexp.MustCompile(`^(Benchmark\S+)\s+(\d+)((?:\t\s*[-+0-9.eE]+ \S+)+)\s*$`)

// procsSuffix is the "-N" testing adds to a name when GOMAXPROCS is not 1.
var procsSuffix = regexp.MustCompile(`-\d+$`)

// fileLine is the "name_test.go:123: " prefix of a benchmark's log entry.
var fileLine = regexp.MustCompile(`^ {4}(?: {4})*\S+\.go:\d+: `)

// shorten keeps a reason short enough for a table cell.
func shorten(s string) string {
	if r := []rune(s); len(r) > 120 {
		return string(r[:117]) + "…"
	}
	return s
}

// parse reads the output of `go test -run '^$' -bench ... -v` and adds
// what it finds to r. Lines it does not know (the benchmarks' own prints,
// "=== RUN", "ok", build errors) are ignored: a row whose benchmark has
// no result says so itself.
func (r *results) parse(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	// With -v a benchmark's log entries ("    file_test.go:12: text",
	// continued by deeper-indented lines) come after its name and before
	// the "--- SKIP: X" or "--- FAIL: X" that ends it. The last entry
	// says why, unless it introduces a dump ("server log:") that a
	// cleanup added after the failure.
	lastLog := ""
	first, buildErr := true, false
	for sc.Scan() {
		line := sc.Text()
		if cmd, ok := strings.CutPrefix(line, "# "); ok {
			if first {
				for _, f := range strings.Fields(cmd) {
					k, v, ok := strings.Cut(f, "=")
					if !ok || strings.HasPrefix(k, "-") {
						break
					}
					r.env[k] = v
				}
			} else {
				buildErr = true // "# package" heads the compiler's errors
			}
			first = false
			continue
		}
		first = false
		if r.trouble == "" {
			switch {
			case buildErr && strings.TrimSpace(line) != "":
				r.trouble = "build failed: " + shorten(line)
			case strings.HasPrefix(line, "panic: "), strings.HasPrefix(line, "fatal error: "):
				r.trouble = shorten(line)
			}
		}
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(line, "    ") && !strings.HasPrefix(trimmed, "--- ") {
			if fileLine.MatchString(line) {
				if text := fileLine.ReplaceAllString(line, ""); !strings.HasSuffix(text, ":") || lastLog == "" {
					lastLog = shorten(text)
				}
			}
			continue
		}
		if strings.HasPrefix(line, "Benchmark") && !strings.ContainsAny(line, " \t") {
			lastLog = "" // a benchmark starts
			continue
		}
		for _, p := range []struct {
			prefix string
			into   map[string]string
		}{{"--- SKIP: ", r.skipped}, {"--- FAIL: ", r.failed}} {
			if rest, ok := strings.CutPrefix(trimmed, p.prefix); ok && rest != "" {
				name := benchName(strings.Fields(rest)[0])
				if p.into[name] == "" {
					p.into[name] = lastLog
				}
			}
		}
		m := resultLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name := benchName(m[1])
		units := r.metrics[name]
		if units == nil {
			units = map[string][]float64{}
			r.metrics[name] = units
		}
		for _, f := range strings.Split(strings.Trim(m[3], "\t "), "\t") {
			vu := strings.Fields(f)
			if len(vu) != 2 {
				continue
			}
			if v, err := strconv.ParseFloat(vu[0], 64); err == nil {
				units[vu[1]] = append(units[vu[1]], v)
			}
		}
		if n, err := strconv.ParseFloat(m[2], 64); err == nil {
			units["iterations"] = append(units["iterations"], n)
		}
	}
	return sc.Err()
}

// benchName drops the GOMAXPROCS suffix. A sub-benchmark whose own name
// ends in "-<digits>" loses that too; none of ours does.
func benchName(s string) string { return procsSuffix.ReplaceAllString(s, "") }

// lookup finds the benchmark a row names: the exact name, or with a
// trailing '*' the first name (in sorted order) that starts with it —
// sub-benchmarks named after servers ("OpenSSH_sshd_+_sftp-server").
func (r *results) lookup(bench string) (string, bool) {
	if p, ok := strings.CutSuffix(bench, "*"); ok {
		var names []string
		for n := range r.metrics {
			if strings.HasPrefix(n, p) {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			return "", false
		}
		sort.Strings(names)
		return names[0], true
	}
	_, ok := r.metrics[bench]
	return bench, ok
}

// value is the median of the values a benchmark reported in unit.
func (r *results) value(bench, unit string) (float64, bool) {
	name, ok := r.lookup(bench)
	if !ok {
		return 0, false
	}
	vs := r.metrics[name][unit]
	if len(vs) == 0 {
		return 0, false
	}
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2], true
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2, true
}

// why tells why a benchmark has no result: its skip or failure reason,
// or that of a parent benchmark ("BenchmarkS3Server" for
// "BenchmarkS3Server/GetBig").
func (r *results) why(bench string) (string, bool) {
	name := strings.TrimSuffix(bench, "*")
	for {
		for _, p := range []struct {
			m      map[string]string
			prefix string
		}{{r.failed, "failed"}, {r.skipped, "skipped"}} {
			for n, reason := range p.m {
				if n == name || (strings.HasSuffix(bench, "*") && strings.HasPrefix(n, name)) {
					if reason == "" {
						return p.prefix, true
					}
					return p.prefix + ": " + reason, true
				}
			}
		}
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			return "", false
		}
		name = name[:i]
	}
}
