package views

import (
	"strings"
	"testing"
)

func TestFilter(t *testing.T) {
	meta := map[string]string{"type": "obs", "date": "2026-01-02", "param": "", "name": "x"}
	get := func(k string) (string, bool) { v, ok := meta[k]; return v, ok }
	cases := []struct {
		f    string
		want bool
	}{
		{"", true},
		{"type = obs", true},
		{"type=fc", false},
		{"type != fc", true},
		{"missing != x", true},
		{"type in (obs, fc)", true},
		{"type in (an, fc)", false},
		{`date ~ "2026-*"`, true},
		{"date ~ 2026-??-02", true},
		{"date ~ 2025*", false},
		{"date ^= 2026-01", true},
		{"date ^= 2026-02", false},
		{"has(param)", true},
		{"has(nope)", false},
		{"missing = x", false},
		{`type in (obs, fc) and date ~ "2026-*" and has(param)`, true},
		{`type in (obs, fc) and date ~ "2025-*"`, false},
		{`name = "x"`, true},
		{`type = "o\"bs"`, false},
	}
	for _, c := range cases {
		f, err := ParseFilter(c.f)
		if err != nil {
			t.Fatalf("%q: %v", c.f, err)
		}
		if got := f.Match(get); got != c.want {
			t.Errorf("%q: got %v want %v", c.f, got, c.want)
		}
	}
	for _, bad := range []string{"type", "type =", "= obs", "type in obs", "type in (obs", "type = obs or b = c",
		"has(", "has()", `type = "open`, "type = obs and", "and type = obs", `type = "a\x"`, "type == obs"} {
		if _, err := ParseFilter(bad); err == nil {
			t.Errorf("%q parsed", bad)
		} else if !strings.Contains(err.Error(), "offset") {
			t.Errorf("%q: error without offset: %v", bad, err)
		}
	}
	// Parse errors through a view name the view.
	_, err := NewView("by-type", Def{Path: "{type}/{name}", Filter: "type in (obs"})
	if err == nil || !strings.Contains(err.Error(), "by-type") {
		t.Fatalf("view error does not name the view: %v", err)
	}
}

func TestGlob(t *testing.T) {
	cases := []struct {
		p, v string
		want bool
	}{
		{"*", "", true}, {"a*", "abc", true}, {"*c", "abc", true}, {"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbY", false}, {"?", "é", true}, {"??", "é", false}, {"a/*", "a/b/c", true},
		{"*a*a*a*a*b", strings.Repeat("a", 50), false},
	}
	for _, c := range cases {
		if got := glob(c.p, c.v); got != c.want {
			t.Errorf("glob(%q, %q) = %v", c.p, c.v, got)
		}
	}
}

func TestNewViewRefuses(t *testing.T) {
	for name, d := range map[string]Def{
		"":             {Path: "{a}"},
		"bad/name":     {Path: "{a}"},
		"no-path":      {},
		"bad-template": {Path: "{a}/../{b}"},
		"reserved":     {Path: "{dg.dir}/{name}"},
		"set-in-path":  {Path: "{a}/{name}", Set: map[string]string{"a": "1"}},
		"set-name":     {Path: "{a}/{name}", Set: map[string]string{"name": "1"}},
		"set-vs-filt":  {Path: "{a}/{name}", Filter: "origin = x", Set: map[string]string{"origin": "y"}},
	} {
		if _, err := NewView(name, d); err == nil {
			t.Errorf("view %q %+v accepted", name, d)
		} else if name != "" && !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name view %q: %v", name, err)
		}
	}
	r, err := ParseRights("rwd")
	if err != nil || r != All || r.String() != "rwd" {
		t.Fatalf("rights: %v %v", r, err)
	}
	for _, bad := range []string{"rx", "rr", "W"} {
		if _, err := ParseRights(bad); err == nil {
			t.Errorf("rights %q accepted", bad)
		}
	}
}
