package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// line is a row evaluated against one run's results: what the table and
// the JSON output show.
type line struct {
	Area        string   `json:"area"`
	Measurement string   `json:"measurement"`
	Datagate    string   `json:"datagate"`
	Reference   string   `json:"reference"`
	Ratio       string   `json:"ratio"`
	Target      string   `json:"target"`
	Result      string   `json:"result"` // met, missed, reported, skipped: …, failed: …, no result
	Value       *float64 `json:"value,omitempty"`
	RefValue    *float64 `json:"reference_value,omitempty"`
	RatioValue  *float64 `json:"ratio_value,omitempty"`
	Unit        string   `json:"unit,omitempty"`
	Step        string   `json:"step"`
}

const (
	resultMet      = "met"
	resultMissed   = "missed"
	resultReported = "reported"
	resultNone     = "no result"
)

// env looks up a variable the way the steps see it: the suite's own
// settings (--quick) over the process environment.
type env func(string) string

// have reports whether a tool is installed: a name on PATH, or a path;
// "root" is whether the suite runs as root (OpenSSH's sshd needs it).
func have(tool string) bool {
	if tool == "root" {
		return os.Geteuid() == 0
	}
	if strings.Contains(tool, "/") {
		_, err := os.Stat(tool)
		return err == nil
	}
	_, err := exec.LookPath(tool)
	return err == nil
}

// evaluate turns rows into lines with the values in res.
func evaluate(rs []row, res *results, getenv env, installed func(string) bool) []line {
	out := make([]line, 0, len(rs))
	for _, r := range rs {
		out = append(out, evaluateRow(r, res, getenv, installed))
	}
	return out
}

func evaluateRow(r row, res *results, getenv env, installed func(string) bool) line {
	l := line{Area: r.area, Measurement: expand(r.what, getenv), Datagate: "–", Reference: "–", Ratio: "–",
		Target: targetText(r), Unit: r.show.unit, Step: r.step}
	for _, t := range r.needs {
		if !installed(t) {
			l.Result = "skipped: " + missing(t)
			return l
		}
	}
	refMissing := ""
	for _, t := range r.refNeeds {
		if !installed(t) {
			refMissing = missing(t)
			break
		}
	}
	get := func(mt *metric) (float64, bool) {
		if mt == nil {
			return 0, false
		}
		return res.value(mt.bench, mt.unit)
	}
	dg, okDG := get(r.dg)
	ref, okRef := get(r.ref)
	if refMissing != "" {
		okRef = false // not measured: whatever the log says is not of this machine
	}
	ratio, okRatio := get(r.ratio)
	switch {
	case !okRatio && okDG && okRef && ref != 0:
		ratio, okRatio = dg/ref, true
	case !okDG && okRatio && okRef && r.dg == nil:
		dg, okDG = ratio*ref, true
	case !okRef && okRatio && okDG && r.ref == nil && ratio != 0:
		ref, okRef = dg/ratio, true
	}
	if okDG {
		v := dg * r.show.scale
		l.Value = &v
		l.Datagate = formatValue(v, r.show.unit)
	}
	if okRef {
		v := ref * r.show.scale
		l.RefValue = &v
		l.Reference = r.refName + ": " + formatValue(v, r.show.unit)
	} else if refMissing != "" {
		l.Reference = r.refName + ": skipped, " + refMissing
	}
	if okRatio && (okRef || r.ref == nil) {
		l.RatioValue = &ratio
		l.Ratio = formatRatio(ratio)
	}
	if !okDG && l.RatioValue == nil {
		l.Result = resultNone
		for _, mt := range []*metric{r.dg, r.ratio, r.ref} {
			if mt == nil {
				continue
			}
			if why, ok := res.why(mt.bench); ok {
				l.Result = why
				break
			}
		}
		return l
	}
	t := r.target
	switch {
	case t == target{}:
		l.Result = resultReported
	case t.onRatio && l.RatioValue == nil:
		l.Result = resultNone
		if refMissing != "" {
			l.Result = "skipped: " + refMissing
		} else if r.ref != nil {
			if why, ok := res.why(r.ref.bench); ok {
				l.Result = why
			}
		}
	case t.onRatio:
		l.Result = verdict(ratio, t)
	default:
		l.Result = verdict(dg*r.show.scale, t)
	}
	return l
}

func missing(tool string) string {
	if tool == "root" {
		return "not root"
	}
	return "no " + filepath.Base(tool)
}

func verdict(v float64, t target) string {
	if (t.atLeast && v >= t.limit) || (!t.atLeast && v <= t.limit) {
		return resultMet
	}
	return resultMissed
}

func targetText(r row) string {
	t := r.target
	if t == (target{}) {
		return "report"
	}
	op := "≤"
	if t.atLeast {
		op = "≥"
	}
	if t.onRatio {
		return fmt.Sprintf("%s %s× %s", op, formatLimit(t.limit), r.refName)
	}
	return op + " " + withUnit(formatLimit(t.limit), r.show.unit)
}

// formatLimit prints a target's figure as the issue states it (0.8, not
// 0.800).
func formatLimit(v float64) string {
	if v >= 1000 {
		return formatCount(v)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// expand fills a row's text with the sizes the steps run with:
// {objects}, {objects/10}, {replicate}, … (see knobs).
func expand(what string, getenv env) string {
	for name, k := range knobs {
		n := k.def
		if v, err := strconv.Atoi(getenv(k.env)); err == nil && v > 0 {
			n = v
		}
		what = strings.ReplaceAll(what, "{"+name+"/10}", formatCount(float64((n+9)/10)))
		if k.unit == "MiB" {
			what = strings.ReplaceAll(what, "{"+name+"}", formatMiB(n))
		} else {
			what = strings.ReplaceAll(what, "{"+name+"}", formatCount(float64(n)))
		}
	}
	return what
}

func formatMiB(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return strconv.Itoa(n/1024) + " GiB"
	}
	return strconv.Itoa(n) + " MiB"
}

// formatValue prints v with about three significant digits (thousands
// separated) and its unit.
func formatValue(v float64, unit string) string { return withUnit(formatNumber(v), unit) }

func withUnit(s, unit string) string {
	switch {
	case unit == "":
		return s
	case strings.HasPrefix(unit, "/") || unit == "×":
		return s + unit
	}
	return s + " " + unit
}

func formatRatio(v float64) string {
	if v != 0 && math.Abs(v) < 0.01 {
		return "< 0.01×"
	}
	return formatNumber(v) + "×"
}

func formatNumber(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1000:
		return formatCount(v)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1 || a == 0:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	decimals := 2 - int(math.Floor(math.Log10(a)))
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

// formatCount prints a rounded integer with thousands separators.
func formatCount(v float64) string {
	s := strconv.FormatInt(int64(math.Round(math.Abs(v))), 10)
	var b strings.Builder
	if v < 0 {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// writeMarkdown prints the lines as one Markdown table, as the README
// shows it.
func writeMarkdown(w io.Writer, lines []line) error {
	var b strings.Builder
	b.WriteString("| area | measurement | datagate | reference | ratio | target | result |\n|---|---|---|---|---|---|---|\n")
	for _, l := range lines {
		cells := []string{l.Area, l.Measurement, l.Datagate, l.Reference, l.Ratio, l.Target, l.Result}
		for i, c := range cells {
			cells[i] = strings.ReplaceAll(c, "|", `\|`)
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
