package pathtmpl

import (
	"errors"
	iofs "io/fs"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		tmpl  string
		keys  []string
		depth int
		rest  bool
	}{
		{"{date}/{type}/{name}", []string{"date", "type", "name"}, 3, false},
		{"fixed", nil, 1, false},
		{"{name}.{ext}", []string{"name", "ext"}, 1, false},
		{"by-date/{date}/run-{run}/{param}_{step}h.grib", []string{"date", "run", "param", "step"}, 4, false},
		{"uploads/{path...}", []string{"path"}, 2, true},
		{"{path...}", []string{"path"}, 1, true},
		{"{a.b-c_9}/{_x}", []string{"a.b-c_9", "_x"}, 2, false},
		{"{{literal}}/{k}", []string{"k"}, 2, false},
		{"{{{k}}}", []string{"k"}, 1, false},
		{"...", nil, 1, false},
		{".x/{k}", []string{"k"}, 2, false},
		{"100%/{k}", []string{"k"}, 2, false},
		{"é/{k}", []string{"k"}, 2, false},
	} {
		tp, err := Parse(tc.tmpl)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.tmpl, err)
			continue
		}
		if tp.String() != tc.tmpl {
			t.Errorf("Parse(%q).String() = %q", tc.tmpl, tp.String())
		}
		if got := tp.Keys(); !slices.Equal(got, tc.keys) {
			t.Errorf("Parse(%q).Keys() = %q, want %q", tc.tmpl, got, tc.keys)
		}
		if n, rest := tp.Depth(); n != tc.depth || rest != tc.rest {
			t.Errorf("Parse(%q).Depth() = %d, %v; want %d, %v", tc.tmpl, n, rest, tc.depth, tc.rest)
		}
	}
}

func TestKeysIsACopy(t *testing.T) {
	tp := MustParse("{a}/{b}")
	tp.Keys()[0] = "x"
	if got := tp.Keys(); got[0] != "a" {
		t.Fatalf("Keys() shares the template's slice: %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		tmpl   string
		offset string // "at offset N"
		why    string
	}{
		{"", "at offset 0", "empty template"},
		{"/a", "at offset 0", "empty segment"},
		{"a/", "at offset 2", "empty segment"},
		{"a//b", "at offset 2", "empty segment"},
		{"./{k}", "at offset 0", `segment "."`},
		{"{k}/..", "at offset 4", `segment ".."`},
		{"{k", "at offset 0", `unbalanced "{"`},
		{"a/{k/b}", "at offset 2", `unbalanced "{"`},
		{"{a{b}}", "at offset 0", `unbalanced "{"`},
		{"k}", "at offset 1", `unbalanced "}"`},
		{"{}", "at offset 0", "invalid key"},
		{"{9a}", "at offset 0", "invalid key"},
		{"{a b}", "at offset 0", "invalid key"},
		{"{-a}", "at offset 0", "invalid key"},
		{"{...}", "at offset 0", "invalid key"},
		{"{a...b}", "at offset 0", `"..." inside key`},
		{"{a}/{a}", "at offset 4", `key "a" appears twice`},
		{"{a}.{a}", "at offset 4", `key "a" appears twice`},
		{"{p...}/x", "at offset 6", "last segment"},
		{"{p...}/{q...}", "at offset 6", "last segment"},
		{"x{p...}", "at offset 1", "whole segment"},
		{"a/{p...}.txt", "at offset 2", "whole segment"},
		{"{a}{b}", "at offset 3", "adjacent"},
		{"x/{a}{b}.c", "at offset 5", "adjacent"},
		{"a\x00b", "at offset 1", "control byte"},
		{"a\tb/{k}", "at offset 1", "control byte"},
		{`a\b`, "at offset 1", "backslash"},
		{"a\xffb", "at offset 1", "invalid UTF-8"},
	} {
		_, err := Parse(tc.tmpl)
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", tc.tmpl)
			continue
		}
		if !errors.Is(err, iofs.ErrInvalid) {
			t.Errorf("Parse(%q): %v does not wrap iofs.ErrInvalid", tc.tmpl, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, "template "+quoteGo(tc.tmpl)) || !strings.Contains(msg, tc.offset) || !strings.Contains(msg, tc.why) {
			t.Errorf("Parse(%q): %q, want the template, %q and %q", tc.tmpl, msg, tc.offset, tc.why)
		}
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("MustParse of a bad template did not panic")
		}
	}()
	MustParse("{")
}

type m = map[string]string

// Render and Match, both ways, on paths where they are inverses.
func TestRenderMatch(t *testing.T) {
	for _, tc := range []struct {
		tmpl string
		meta m
		path string
	}{
		{"{date}/{type}/{name}", m{"date": "2024-01-01", "type": "an", "name": "t2m.grib"}, "2024-01-01/an/t2m.grib"},
		{"fixed/path", m{}, "fixed/path"},
		{"{name}.{ext}", m{"name": "report", "ext": "pdf"}, "report.pdf"},
		{"run-{run}", m{"run": "-12"}, "run--12"},
		{"run-{run}", m{"run": "."}, "run-%2E"},
		{"{param}_{step}h.grib", m{"param": "t2m", "step": "06"}, "t2m_06h.grib"},
		{"{a}", m{"a": ""}, "%-"},
		{"{a}", m{"a": "."}, "%2E"},
		{"{a}/{b}", m{"a": "..", "b": "x/y"}, "%2E%2E/x%2Fy"},
		{"{a}.{b}", m{"a": "", "b": ""}, "%-.%-"},
		{"{a}.{b}", m{"a": ".", "b": "."}, "%2E.%2E"},
		{"{a}.{b}", m{"a": "x%", "b": "\xff"}, "x%25.%FF"},
		{"{a}%{b}", m{"a": "x", "b": "%"}, "x%%25"}, // literal % next to an escape
		{"{a}2{b}", m{"a": "x", "b": "/"}, "x2%2F"}, // separator inside an escape
		{"{a}-{b}", m{"a": "", "b": ""}, "%--%-"},
		{"{k}", m{"k": "é ü+#?"}, "é ü+#?"},
		{"{{x}}/{k}", m{"k": "v"}, "{x}/v"},
		{"uploads/{path...}", m{"path": "a/b/c.txt"}, "uploads/a/b/c.txt"},
		{"uploads/{path...}", m{"path": "one"}, "uploads/one"},
		{"uploads/{path...}", m{"path": ""}, "uploads/%-"},
		{"uploads/{path...}", m{"path": "a//b"}, "uploads/a/%-/b"},
		{"uploads/{path...}", m{"path": "/a/"}, "uploads/%-/a/%-"},
		{"uploads/{path...}", m{"path": "./../x"}, "uploads/%2E/%2E%2E/x"},
		{"uploads/{path...}", m{"path": "50%/x\\y"}, "uploads/50%25/x%5Cy"},
		{"{u}/{p...}", m{"u": "me", "p": "a"}, "me/a"},
	} {
		tp := MustParse(tc.tmpl)
		got, ok := tp.Render(tc.meta)
		if !ok || got != tc.path {
			t.Errorf("%q.Render(%q) = %q, %v; want %q", tc.tmpl, tc.meta, got, ok, tc.path)
		}
		back, err := tp.Match(tc.path)
		if err != nil || !maps.Equal(back, tc.meta) {
			t.Errorf("%q.Match(%q) = %q, %v; want %q", tc.tmpl, tc.path, back, err, tc.meta)
		}
	}
}

func TestRenderIgnoresExtraKeysAndNeedsAllKeys(t *testing.T) {
	tp := MustParse("{a}/{b}")
	if p, ok := tp.Render(m{"a": "1", "b": "2", "c": "3"}); !ok || p != "1/2" {
		t.Errorf("Render with an extra key = %q, %v", p, ok)
	}
	for _, meta := range []m{nil, {}, {"a": "1"}, {"b": "2"}} {
		if p, ok := tp.Render(meta); ok || p != "" {
			t.Errorf("Render(%q) = %q, %v; want \"\", false", meta, p, ok)
		}
	}
}

// The documented rule for segments with several placeholders: left to
// right, each takes the longest canonical text that lets the rest match.
func TestMatchMixedRule(t *testing.T) {
	for _, tc := range []struct {
		tmpl, path string
		want       m
	}{
		{"{name}.{ext}", "a.b.c", m{"name": "a.b", "ext": "c"}},
		{"{name}.{ext}", "archive.tar.gz", m{"name": "archive.tar", "ext": "gz"}},
		{"{name}.{ext}", "a..b", m{"name": "a.", "ext": "b"}},
		{"{name}.{ext}", ".bashrc.x", m{"name": ".bashrc", "ext": "x"}},
		{"{a}-{b}-{c}", "1-2-3-4-5", m{"a": "1-2-3", "b": "4", "c": "5"}},
		{"{date}-{run}", "2024-01-01-12", m{"date": "2024-01-01", "run": "12"}},
		{"x{a}.{b}y", "x1.2.3y", m{"a": "1.2", "b": "3"}},
		// The longest text would end inside an escape or be non-canonical:
		// the next shorter one is taken.
		{"{a}2{b}", "x2%2F", m{"a": "x", "b": "/"}},
		{"{a}2{b}", "%252x", m{"a": "%", "b": "x"}},
		{"{a}.{b}", "%2E.%2E", m{"a": ".", "b": "."}},
		{"{a}.{b}", "%2E%2E.x", m{"a": "..", "b": "x"}},
		{"{a}-{b}", "%--x", m{"a": "", "b": "x"}},
		{"{a}-{b}", "x-%-", m{"a": "x", "b": ""}},
		{"{a}A{b}", "%C3A%A9", m{"a": "\xc3", "b": "\xa9"}},
		{"{a}é{b}", "xéyéz", m{"a": "xéy", "b": "z"}},
	} {
		got, err := MustParse(tc.tmpl).Match(tc.path)
		if err != nil || !maps.Equal(got, tc.want) {
			t.Errorf("%q.Match(%q) = %q, %v; want %q", tc.tmpl, tc.path, got, err, tc.want)
		}
	}
}

func TestMatchErrors(t *testing.T) {
	for _, tc := range []struct {
		tmpl, path, why string
	}{
		{"{a}/{b}", "", "empty path"},
		{"{a}/{b}", "/x/y", "leading slash"},
		{"{a}/{b}", "x/y/", "trailing slash"},
		{"{a}/{b}", "x//y", "segment 2: empty segment"},
		{"{a}/{b}", "x", "fewer segments"},
		{"{a}/{b}", "x/y/z", "more segments"},
		{"{a}/{b}", "./y", `segment 1 "." at offset 0: segment is .`},
		{"{a}/{b}", "x/..", `segment 2 ".."`},
		{"{a}/{b}", "x/50%", `segment 2 "50%" at offset 2: malformed escape`},
		{"{a}/{b}", "x/%41", "needs none"},
		{"{a}/{b}", "x/a\\b", "backslash"},
		{"{a}/{b}", "x/\xff", "invalid UTF-8"},
		{"fixed/{b}", "other/y", `segment 1 "other": want "fixed"`},
		{"{a}.grib", "x.nc", "want suffix \".grib\""},
		{"run-{r}", "rn-1", "want prefix \"run-\""},
		{"run-{r}", "run-", "empty value"},
		{"run-{r}", "run-%2e", "malformed escape"},
		{"run-{r}", "run-%2Ex", "needs none"}, // %2E is only a whole value
		{"{a}.{b}", "ab", "no split"},
		{"{a}.{b}", "a.", "no split"},
		{"{a}.{b}", ".b", "no split"},
		{"{a}.{b}", "..b", "no split"}, // "." is not a value
		{"{a}.{b}", "x%.y", "no split"},
		{"{a}.{b}.{c}", "a.b", "no split"},
		{"uploads/{p...}", "uploads", "no segment for the {p...} capture"},
		{"uploads/{p...}", "uploads/a//b", "segment 3: empty segment"},
		{"uploads/{p...}", "uploads/a/../b", `segment 3 ".."`},
		{"uploads/{p...}", "uploads/a/b/%zz", `segment 4 "%zz" at offset 0: malformed`},
		{"uploads/{p...}", "down/a", `want "uploads"`},
		{"uploads/{p...}", "uploads/a%2Fb", `segment 2 "a%2Fb" at offset 1: escaped "/"`},
	} {
		_, err := MustParse(tc.tmpl).Match(tc.path)
		if err == nil {
			t.Errorf("%q.Match(%q) succeeded, want an error", tc.tmpl, tc.path)
			continue
		}
		if !errors.Is(err, iofs.ErrInvalid) {
			t.Errorf("%q.Match(%q): %v does not wrap iofs.ErrInvalid", tc.tmpl, tc.path, err)
		}
		msg := err.Error()
		want := "path " + quoteGo(tc.path) + " does not match template " + quoteGo(tc.tmpl)
		if !strings.Contains(msg, want) || !strings.Contains(msg, tc.why) {
			t.Errorf("%q.Match(%q): %q, want %q and %q", tc.tmpl, tc.path, msg, want, tc.why)
		}
	}
}

func TestMatchDir(t *testing.T) {
	for _, tc := range []struct {
		tmpl, dir string
		want      m // nil: an error
	}{
		{"{date}/{type}/{name}", "", m{}},
		{"{date}/{type}/{name}", "2024-01-01", m{"date": "2024-01-01"}},
		{"{date}/{type}/{name}", "2024-01-01/an", m{"date": "2024-01-01", "type": "an"}},
		{"{date}/{type}/{name}", "2024-01-01/an/x", nil}, // an object, not a directory
		{"{date}/{type}/{name}", "a/b/c/d", nil},
		{"{date}/{type}/{name}", "%2E/x", m{"date": ".", "type": "x"}},
		{"{date}/{type}/{name}", "a%/x", nil},
		{"{date}/{type}/{name}", "/a", nil},
		{"{date}/{type}/{name}", "a/", nil},
		{"by-date/{d}-{r}/{name}", "by-date", m{}},
		{"by-date/{d}-{r}/{name}", "by-type", nil},
		{"by-date/{d}-{r}/{name}", "by-date/2024-01-01-00", m{"d": "2024-01-01", "r": "00"}},
		{"{name}", "x", nil},
		{"uploads/{p...}", "uploads", m{}},
		{"uploads/{p...}", "uploads/a", m{}},
		{"uploads/{p...}", "uploads/a/%-/b", m{}},
		{"uploads/{p...}", "uploads/a/%zz", nil},
		{"uploads/{p...}", "uploads/%2F", nil},
		{"{u}/{p...}", "me/a/b", m{"u": "me"}},
	} {
		got, err := MustParse(tc.tmpl).MatchDir(tc.dir)
		if tc.want == nil {
			if err == nil {
				t.Errorf("%q.MatchDir(%q) = %q, want an error", tc.tmpl, tc.dir, got)
			} else if !errors.Is(err, iofs.ErrInvalid) || !strings.Contains(err.Error(), "directory "+quoteGo(tc.dir)+" does not match template "+quoteGo(tc.tmpl)) {
				t.Errorf("%q.MatchDir(%q): %v, want an ErrInvalid naming the directory and template", tc.tmpl, tc.dir, err)
			}
			continue
		}
		if err != nil || !maps.Equal(got, tc.want) {
			t.Errorf("%q.MatchDir(%q) = %q, %v; want %q", tc.tmpl, tc.dir, got, err, tc.want)
		}
	}
}

func TestPrefix(t *testing.T) {
	for _, tc := range []struct {
		tmpl string
		meta m
		want string
	}{
		{"{date}/{type}/{name}", m{}, ""},
		{"{date}/{type}/{name}", m{"date": "d"}, "d"},
		{"{date}/{type}/{name}", m{"date": "d", "type": "an"}, "d/an"},
		{"{date}/{type}/{name}", m{"date": "d", "type": "an", "name": "n"}, "d/an"},
		{"{date}/{type}/{name}", m{"type": "an"}, ""},
		{"{date}/{type}/{name}", m{"date": "a/b", "type": ""}, "a%2Fb/%-"},
		{"by-date/{d}-{r}/{name}", m{}, "by-date"},
		{"by-date/{d}-{r}/{name}", m{"d": "x"}, "by-date"},
		{"by-date/{d}-{r}/{name}", m{"d": "x", "r": "00"}, "by-date/x-00"},
		{"fixed/dir/{name}", m{}, "fixed/dir"},
		{"{name}", m{"name": "x"}, ""},
		{"uploads/{p...}", m{}, "uploads"},
		{"uploads/{p...}", m{"p": "f"}, "uploads"},
		{"uploads/{p...}", m{"p": "a/b/f"}, "uploads/a/b"},
		{"uploads/{p...}", m{"p": "/f"}, "uploads/%-"},
		{"{p...}", m{"p": "a/f"}, "a"},
		{"{u}/{p...}", m{"p": "a/f"}, ""}, // u unknown: nothing below it is fixed
	} {
		tp := MustParse(tc.tmpl)
		got := tp.Prefix(tc.meta)
		if got != tc.want {
			t.Errorf("%q.Prefix(%q) = %q, want %q", tc.tmpl, tc.meta, got, tc.want)
		}
		// The prefix is a directory MatchDir accepts, fixing no key
		// that contradicts meta.
		fixed, err := tp.MatchDir(got)
		if err != nil {
			t.Errorf("%q.MatchDir(Prefix %q): %v", tc.tmpl, got, err)
		}
		for k, v := range fixed {
			if mv, ok := tc.meta[k]; !ok || mv != v {
				t.Errorf("%q: MatchDir(Prefix %q) fixes %s=%q, meta has %q", tc.tmpl, got, k, v, tc.meta)
			}
		}
	}
}

// Values that need no unescaping share the path; the result is the caller's.
func TestMatchResultIsFresh(t *testing.T) {
	tp := MustParse("{a}/{b}")
	m1, _ := tp.Match("x/y")
	m1["a"] = "changed"
	m2, _ := tp.Match("x/y")
	if m2["a"] != "x" {
		t.Fatalf("second Match sees the first caller's change: %q", m2)
	}
}

func quoteGo(s string) string { return strconv.Quote(s) }
