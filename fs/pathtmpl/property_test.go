package pathtmpl

import (
	"errors"
	iofs "io/fs"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"
)

var propertyTemplates = []string{
	"{a}",
	"{a}/{b}/{c}",
	"x/{a}/y/{b}",
	"run-{a}/{b}.grib",
	"{a}_/pre{b}post",
	"{a}/{p...}",
	"fixed/{p...}",
	"{p...}",
	// Several placeholders per segment: round trips hold on the path side.
	"{a}.{b}",
	"{a}.{b}/{c}-{d}-{e}",
	"{a}%{b}",
	"{a}2{b}",
	"x{a}é{b}y/{p...}",
}

// oneKeyPerSegment reports whether Match(Render(m)) must give m back.
func oneKeyPerSegment(t *Template) bool {
	for _, sg := range t.segs {
		if len(sg.keys) > 1 {
			return false
		}
	}
	return true
}

func restrict(meta map[string]string, keys []string) map[string]string {
	out := map[string]string{}
	for _, k := range keys {
		out[k] = meta[k]
	}
	return out
}

func TestRenderMatchProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, src := range propertyTemplates {
		t.Run(src, func(t *testing.T) {
			checkTemplateProperty(t, r, MustParse(src), 3000)
		})
	}
}

// Randomly generated mixed templates, including separators that look like
// escapes, stress the splitting rule.
func TestRandomTemplatesProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	seps := []string{".", "-", "_", "%", "2", "A", "F", "é", "ab", "%2", "..", "-%"}
	for range 200 {
		var segs []string
		key := 0
		for range 1 + r.IntN(3) {
			var b strings.Builder
			if r.IntN(3) == 0 {
				b.WriteString("p")
			}
			for k := range 1 + r.IntN(3) {
				if k > 0 {
					b.WriteString(seps[r.IntN(len(seps))])
				}
				b.WriteString("{k" + string(rune('a'+key)) + "}")
				key++
			}
			if r.IntN(3) == 0 {
				b.WriteString(".s")
			}
			segs = append(segs, b.String())
		}
		src := strings.Join(segs, "/")
		checkTemplateProperty(t, r, MustParse(src), 200)
	}
}

func checkTemplateProperty(t *testing.T, r *rand.Rand, tp *Template, n int) {
	t.Helper()
	keys := tp.Keys()
	exact := oneKeyPerSegment(tp)
	for range n {
		meta := map[string]string{"unrelated": "x"}
		for _, k := range keys {
			meta[k] = randValue(r)
		}
		p, ok := tp.Render(meta)
		if !ok {
			t.Fatalf("%q.Render(%q) not ok", tp, meta)
		}
		if strings.Contains(p, "//") || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.ContainsRune(p, 0) {
			t.Fatalf("%q.Render(%q) = %q is not a clean path", tp, meta, p)
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("%q.Render(%q) = %q has a %q segment", tp, meta, p, seg)
			}
		}
		got, err := tp.Match(p)
		if err != nil {
			t.Fatalf("%q.Match(Render(%q) = %q): %v", tp, meta, p, err)
		}
		if exact && !maps.Equal(got, restrict(meta, keys)) {
			t.Fatalf("%q.Match(Render(%q) = %q) = %q", tp, meta, p, got)
		}
		if again, ok := tp.Render(got); !ok || again != p {
			t.Fatalf("%q: Render(Match(%q) = %q) = %q, %v", tp, p, got, again, ok)
		}
		checkDirs(t, tp, p, got)
	}
}

// checkDirs checks MatchDir on every directory above path p, which Match
// turned into meta, and Prefix on sub-maps of meta.
func checkDirs(t *testing.T, tp *Template, p string, meta map[string]string) {
	t.Helper()
	depth, rest := tp.Depth()
	segs := strings.Split(p, "/")
	for i := range len(segs) {
		dir := strings.Join(segs[:i], "/")
		fixed, err := tp.MatchDir(dir)
		if err != nil {
			t.Fatalf("%q.MatchDir(%q) (above %q): %v", tp, dir, p, err)
		}
		for k, v := range fixed {
			if meta[k] != v {
				t.Fatalf("%q.MatchDir(%q) fixes %s=%q, Match(%q) gave %q", tp, dir, k, v, p, meta[k])
			}
		}
	}
	if _, err := tp.MatchDir(p); !rest && err == nil {
		t.Fatalf("%q.MatchDir(%q) of a full path succeeded", tp, p)
	}
	// Full metadata pins the object's own directory.
	if got, want := tp.Prefix(meta), strings.Join(segs[:len(segs)-1], "/"); got != want {
		t.Fatalf("%q.Prefix(%q) = %q, want %q", tp, meta, got, want)
	}
	// Fewer keys: still a directory above the path.
	keys := tp.Keys()
	sub := restrict(meta, keys[:len(keys)/2])
	pre := tp.Prefix(sub)
	if pre != "" && !strings.HasPrefix(p, pre+"/") {
		t.Fatalf("%q.Prefix(%q) = %q is not above %q", tp, sub, pre, p)
	}
	if n := strings.Count(pre, "/") + 1; pre != "" && !rest && n >= depth {
		t.Fatalf("%q.Prefix(%q) = %q is too deep", tp, sub, pre)
	}
}

// Arbitrary text that Match accepts renders back to itself: one path per
// metadata map.
func TestMatchPathSideProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, src := range propertyTemplates {
		tp := MustParse(src)
		accepted := 0
		for range 5000 {
			p := randPathFor(r, tp)
			meta, err := tp.Match(p)
			if err != nil {
				continue
			}
			accepted++
			if again, ok := tp.Render(meta); !ok || again != p {
				t.Fatalf("%q: Render(Match(%q) = %q) = %q, %v", src, p, meta, again, ok)
			}
		}
		if accepted == 0 {
			t.Errorf("%q: no random path matched: the generator misses the template", src)
		}
	}
}

// randPathFor fills the template's placeholders with random escaped-looking
// text, valid or not.
func randPathFor(r *rand.Rand, tp *Template) string {
	var b strings.Builder
	for i, sg := range tp.segs {
		if i > 0 {
			b.WriteByte('/')
		}
		for j := range sg.keys {
			b.WriteString(sg.lits[j])
			parts := 1
			if sg.rest {
				parts += r.IntN(3)
			}
			for q := range parts {
				if q > 0 {
					b.WriteByte('/')
				}
				b.WriteString(randSegmentText(r))
			}
		}
		b.WriteString(sg.lits[len(sg.lits)-1])
	}
	return b.String()
}

// The splitter agrees with a brute-force reading of the documented rule:
// among all splits into canonical escaped values, the first placeholder
// takes the longest text, then the second, and so on.
func TestSplitterMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, src := range []string{"{a}.{b}", "{a}-{b}-{c}", "{a}%{b}", "{a}2{b}", "{a}A{b}.{c}", "{a}%2{b}", "{a}..{b}"} {
		sg := &MustParse(src).segs[0]
		found := 0
		for range 20000 {
			var b strings.Builder
			for k := range 1 + r.IntN(4) {
				if k > 0 && r.IntN(2) == 0 {
					b.WriteString(sg.lits[1+r.IntN(len(sg.lits)-2)])
				}
				b.WriteString(randSegmentText(r))
			}
			seg := b.String()
			got := map[string]string{}
			_, why := sg.matchInto(seg, got)
			want := bruteSplit(sg, seg)
			if (why == "") != (want != nil) || want != nil && !maps.Equal(got, want) {
				t.Fatalf("%q on %q: splitter %q (%s), brute force %q", src, seg, got, why, want)
			}
			if want != nil {
				found++
			}
		}
		if found < 100 {
			t.Errorf("%q: only %d random segments split: the generator misses", src, found)
		}
	}
}

func bruteSplit(sg *segment, body string) map[string]string {
	var ends []int
	var try func(k, p int) bool
	try = func(k, p int) bool {
		if k == len(sg.keys)-1 {
			if _, err := UnescapeSegment(body[p:]); err != nil {
				return false
			}
			ends = append(ends, len(body))
			return true
		}
		sep := sg.lits[k+1]
		for e := len(body) - len(sep); e > p; e-- {
			if !strings.HasPrefix(body[e:], sep) {
				continue
			}
			if _, err := UnescapeSegment(body[p:e]); err != nil {
				continue
			}
			ends = append(ends, e)
			if try(k+1, e+len(sep)) {
				return true
			}
			ends = ends[:len(ends)-1]
		}
		return false
	}
	if !try(0, 0) {
		return nil
	}
	out := map[string]string{}
	start := 0
	for k, key := range sg.keys {
		out[key], _ = UnescapeSegment(body[start:ends[k]])
		start = ends[k] + len(sg.lits[k+1])
	}
	return out
}

// FuzzMatch feeds arbitrary paths to Match: no panic, errors wrap
// iofs.ErrInvalid, accepted paths render back to themselves, and mixed
// segments split as the brute-force reading of the rule does.
func FuzzMatch(f *testing.F) {
	for _, s := range []string{"a.b.c", "x/y", "uploads/a/%-/b", "%2E.%2E", "x2%2F", "a%%25", "", "/", "a//b"} {
		f.Add(s)
	}
	tps := make([]*Template, len(propertyTemplates))
	for i, src := range propertyTemplates {
		tps[i] = MustParse(src)
	}
	mixed := MustParse("{a}-{b}.{c}")
	f.Fuzz(func(t *testing.T, p string) {
		for _, tp := range tps {
			for i, match := range []func(string) (map[string]string, error){tp.Match, tp.MatchDir} {
				meta, err := match(p)
				if err != nil {
					if !errors.Is(err, iofs.ErrInvalid) {
						t.Fatalf("%q on %q: %v does not wrap iofs.ErrInvalid", tp, p, err)
					}
					continue
				}
				if i == 0 {
					if again, ok := tp.Render(meta); !ok || again != p {
						t.Fatalf("%q: Render(Match(%q) = %q) = %q, %v", tp, p, meta, again, ok)
					}
				}
			}
		}
		if strings.Contains(p, "/") {
			return
		}
		got := map[string]string{}
		_, why := mixed.segs[0].matchInto(p, got)
		want := bruteSplit(&mixed.segs[0], p)
		if (why == "") != (want != nil) || want != nil && !maps.Equal(got, want) {
			t.Fatalf("%q: splitter %q (%s), brute force %q", p, got, why, want)
		}
	})
}
