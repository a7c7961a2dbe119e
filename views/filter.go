package views

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/datagate/datagate/fs/index"
)

// Filter is a parsed view filter: an AND of conditions on metadata. The
// zero Filter (an empty filter text) accepts every object.
//
// Grammar (keywords are case-sensitive, white space is free):
//
//	filter := cond { "and" cond }
//	cond   := key "=" value          equality
//	        | key "!=" value         inequality (true when the key is absent)
//	        | key "in" "(" value { "," value } ")"   one of
//	        | key "~" value          glob: * any run of bytes, ? one character
//	        | key "^=" value         prefix
//	        | "has" "(" key ")"      the key exists (with any value, even "")
//	key    := [A-Za-z_][A-Za-z0-9_.-]*   ("name" is the object's name)
//	value  := a bare word of letters, digits and _ . : + - / * ?
//	        | a "double-quoted" string with \" and \\ escapes
//
// Example: type in (obs, fc) and date ~ "2026-*" and has(param).
type Filter struct {
	src   string
	conds []cond
}

type condOp uint8

const (
	opEq condOp = iota
	opNe
	opIn
	opGlob
	opPrefix
	opHas
)

type cond struct {
	op   condOp
	key  string
	vals []string // opIn: the set; others: one value (none for opHas)
}

// ParseFilter parses a filter. Errors wrap io/fs.ErrInvalid (through the
// caller's fs.E) and give the byte offset.
func ParseFilter(s string) (*Filter, error) {
	f := &Filter{src: s}
	p := &fparser{s: s}
	p.skipSpace()
	if p.eof() {
		return f, nil
	}
	for {
		c, err := p.cond()
		if err != nil {
			return nil, err
		}
		f.conds = append(f.conds, c)
		p.skipSpace()
		if p.eof() {
			return f, nil
		}
		at := p.i
		if w := p.word(); w != "and" {
			return nil, fmt.Errorf("filter %q at offset %d: want \"and\" between conditions, got %q", s, at, w)
		}
	}
}

// String returns the filter as written.
func (f *Filter) String() string {
	if f == nil {
		return ""
	}
	return f.src
}

// Match reports whether an object with metadata get accepts the filter.
func (f *Filter) Match(get func(key string) (string, bool)) bool {
	if f == nil {
		return true
	}
	for i := range f.conds {
		c := &f.conds[i]
		v, ok := get(c.key)
		if !c.eval(v, ok) {
			return false
		}
	}
	return true
}

// MatchPartial is Match for a directory: conditions on keys that get does
// not know are taken as true (a later object could satisfy them), except
// that the known keys must not contradict the filter.
func (f *Filter) MatchPartial(get func(key string) (string, bool)) bool {
	if f == nil {
		return true
	}
	for i := range f.conds {
		c := &f.conds[i]
		if v, ok := get(c.key); ok && !c.eval(v, ok) {
			return false
		}
	}
	return true
}

// Equalities returns the filter's conditions of the form key = value (and
// key in (one value)), which an index lookup can serve.
func (f *Filter) Equalities() []index.Cond {
	if f == nil {
		return nil
	}
	var out []index.Cond
	for _, c := range f.conds {
		if c.op == opEq || (c.op == opIn && len(c.vals) == 1) {
			out = append(out, index.Cond{Key: c.key, Value: c.vals[0]})
		}
	}
	return out
}

func (c *cond) eval(v string, ok bool) bool {
	switch c.op {
	case opHas:
		return ok
	case opNe:
		return !ok || v != c.vals[0]
	}
	if !ok {
		return false
	}
	switch c.op {
	case opEq:
		return v == c.vals[0]
	case opIn:
		return slices.Contains(c.vals, v)
	case opPrefix:
		return strings.HasPrefix(v, c.vals[0])
	case opGlob:
		return glob(c.vals[0], v)
	}
	return false
}

// glob matches v against pattern: * is any run of bytes (slashes too), ?
// one UTF-8 character, everything else itself. Iterative with one
// backtracking point, so it is linear-ish and never explodes.
func glob(pattern, v string) bool {
	p, s := 0, 0
	starP, starS := -1, 0
	for s < len(v) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			starP, starS = p, s
			p++
			continue
		case p < len(pattern) && pattern[p] == '?':
			_, n := utf8.DecodeRuneInString(v[s:])
			p++
			s += n
			continue
		case p < len(pattern) && pattern[p] == v[s]:
			p++
			s++
			continue
		}
		if starP < 0 {
			return false
		}
		_, n := utf8.DecodeRuneInString(v[starS:])
		starS += n
		p, s = starP+1, starS
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

type fparser struct {
	s string
	i int
}

func (p *fparser) eof() bool { return p.i >= len(p.s) }

func (p *fparser) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *fparser) fail(at int, format string, args ...any) error {
	return fmt.Errorf("filter %q at offset %d: %s", p.s, at, fmt.Sprintf(format, args...))
}

func isKeyByte(c byte, first bool) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
		return true
	case !first && ('0' <= c && c <= '9' || c == '.' || c == '-'):
		return true
	}
	return false
}

func isBareByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("_.:+-/*?", c) >= 0
}

// word reads a key-like word (may be empty).
func (p *fparser) word() string {
	p.skipSpace()
	j := p.i
	for j < len(p.s) && isKeyByte(p.s[j], j == p.i) {
		j++
	}
	w := p.s[p.i:j]
	p.i = j
	return w
}

func (p *fparser) expect(tok string) error {
	p.skipSpace()
	if !strings.HasPrefix(p.s[p.i:], tok) {
		got := "end of filter"
		if !p.eof() {
			r, _ := utf8.DecodeRuneInString(p.s[p.i:])
			got = fmt.Sprintf("%q", r)
		}
		return p.fail(p.i, "want %q, got %s", tok, got)
	}
	p.i += len(tok)
	return nil
}

func (p *fparser) value() (string, error) {
	p.skipSpace()
	if p.eof() {
		return "", p.fail(p.i, "want a value, got end of filter")
	}
	if p.s[p.i] == '"' {
		start := p.i
		p.i++
		var b strings.Builder
		for p.i < len(p.s) {
			c := p.s[p.i]
			switch {
			case c == '"':
				p.i++
				return b.String(), nil
			case c == '\\' && p.i+1 < len(p.s) && (p.s[p.i+1] == '"' || p.s[p.i+1] == '\\'):
				b.WriteByte(p.s[p.i+1])
				p.i += 2
			case c == '\\':
				return "", p.fail(p.i, `bad escape (only \" and \\)`)
			case c == 0:
				return "", p.fail(p.i, "NUL byte in a value")
			default:
				b.WriteByte(c)
				p.i++
			}
		}
		return "", p.fail(start, "unterminated string")
	}
	j := p.i
	for j < len(p.s) && isBareByte(p.s[j]) {
		j++
	}
	if j == p.i {
		return "", p.fail(p.i, "want a value (a bare word or a \"quoted string\"), got %q", p.s[p.i])
	}
	v := p.s[p.i:j]
	p.i = j
	return v, nil
}

func (p *fparser) cond() (cond, error) {
	at := p.i
	key := p.word()
	if key == "" {
		p.skipSpace()
		if p.eof() {
			return cond{}, p.fail(p.i, "want a condition, got end of filter")
		}
		return cond{}, p.fail(p.i, "want a metadata key, got %q", p.s[p.i])
	}
	p.skipSpace()
	if key == "has" && !p.eof() && p.s[p.i] == '(' {
		p.i++
		k := p.word()
		if k == "" {
			return cond{}, p.fail(p.i, "want a key inside has()")
		}
		if err := p.expect(")"); err != nil {
			return cond{}, err
		}
		return cond{op: opHas, key: k}, nil
	}
	if key == "and" {
		return cond{}, p.fail(at, `"and" without a condition before it`)
	}
	opAt := p.i
	var op condOp
	switch {
	case strings.HasPrefix(p.s[p.i:], "!="):
		op, p.i = opNe, p.i+2
	case strings.HasPrefix(p.s[p.i:], "^="):
		op, p.i = opPrefix, p.i+2
	case strings.HasPrefix(p.s[p.i:], "="):
		op, p.i = opEq, p.i+1
	case strings.HasPrefix(p.s[p.i:], "~"):
		op, p.i = opGlob, p.i+1
	default:
		if w := p.word(); w == "in" {
			if err := p.expect("("); err != nil {
				return cond{}, err
			}
			c := cond{op: opIn, key: key}
			for {
				v, err := p.value()
				if err != nil {
					return cond{}, err
				}
				c.vals = append(c.vals, v)
				p.skipSpace()
				if !p.eof() && p.s[p.i] == ',' {
					p.i++
					continue
				}
				if err := p.expect(")"); err != nil {
					return cond{}, err
				}
				return c, nil
			}
		}
		return cond{}, p.fail(opAt, "want an operator (=, !=, ~, ^=, in) after key %q", key)
	}
	v, err := p.value()
	if err != nil {
		return cond{}, err
	}
	return cond{op: op, key: key, vals: []string{v}}, nil
}
