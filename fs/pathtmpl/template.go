package pathtmpl

import (
	"fmt"
	iofs "io/fs"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Template is a parsed path template. It is immutable and safe for
// concurrent use.
type Template struct {
	src  string
	segs []segment
	keys []string // in order of appearance
	rest bool     // the last segment is a {key...} capture
}

// segment is lits[0] keys[0] lits[1] ... keys[n-1] lits[n]; a literal
// segment has no keys and one lit. Parse guarantees that the lits between
// two keys are non-empty and that a rest segment is exactly {key...}.
type segment struct {
	lits []string
	keys []string
	rest bool
}

func (sg *segment) literal() bool { return len(sg.keys) == 0 }

// Parse parses a template. Errors wrap io/fs.ErrInvalid and quote the
// template and the byte offset of the problem.
func Parse(s string) (*Template, error) {
	p := parser{src: s, seen: map[string]bool{}}
	if err := p.parse(); err != nil {
		return nil, err
	}
	t := &Template{src: s, segs: p.segs, keys: p.keys}
	t.rest = t.segs[len(t.segs)-1].rest
	return t, nil
}

// MustParse is Parse for templates known to be valid; it panics otherwise.
func MustParse(s string) *Template {
	t, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return t
}

// String returns the template as it was parsed.
func (t *Template) String() string { return t.src }

// Keys returns the template's keys in order of appearance. The slice is the
// caller's.
func (t *Template) Keys() []string { return slices.Clone(t.keys) }

// Depth returns the number of segments of the paths the template renders.
// When rest is true the last segment is a {key...} capture and n is a
// minimum: the capture spans one segment or more.
func (t *Template) Depth() (n int, rest bool) { return len(t.segs), t.rest }

type parser struct {
	src  string
	segs []segment
	keys []string
	seen map[string]bool
}

func (p *parser) fail(at int, format string, args ...any) error {
	return &tmplError{op: "parse", tmpl: p.src, offset: at, reason: fmt.Sprintf(format, args...)}
}

func (p *parser) parse() error {
	s := p.src
	if s == "" {
		return p.fail(0, "empty template")
	}
	if !utf8.ValidString(s) {
		for i := 0; ; {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return p.fail(i, "invalid UTF-8")
			}
			i += size
		}
	}
	var (
		seg      segment
		lit      strings.Builder
		segStart = 0
		keyAt    = -1 // offset of the segment's last placeholder, if lit is empty since
	)
	endSeg := func(at int) error {
		seg.lits = append(seg.lits, lit.String())
		lit.Reset()
		if seg.literal() {
			switch seg.lits[0] {
			case "":
				return p.fail(at, "empty segment")
			case ".", "..":
				return p.fail(segStart, "segment %q", seg.lits[0])
			}
		}
		p.segs = append(p.segs, seg)
		seg = segment{}
		keyAt = -1
		return nil
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '/':
			if seg.rest {
				return p.fail(i, "{key...} must be the last segment")
			}
			if err := endSeg(i); err != nil {
				return err
			}
			i++
			segStart = i
			continue
		case c == '{' && i+1 < len(s) && s[i+1] == '{', c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte(c)
			i += 2
			continue
		case c == '}':
			return p.fail(i, `unbalanced "}" (write "}}" for a literal one)`)
		case c == '{':
			j := strings.IndexAny(s[i+1:], "{}/")
			if j < 0 || s[i+1+j] != '}' {
				return p.fail(i, `unbalanced "{" (write "{{" for a literal one)`)
			}
			name := s[i+1 : i+1+j]
			rest := false
			if k, ok := strings.CutSuffix(name, "..."); ok {
				name, rest = k, true
			}
			if !validKey(name) {
				return p.fail(i, "invalid key %q (want [A-Za-z_][A-Za-z0-9_.-]* )", name)
			}
			if strings.Contains(name, "...") {
				return p.fail(i, `"..." inside key %q`, name)
			}
			if p.seen[name] {
				return p.fail(i, "key %q appears twice", name)
			}
			p.seen[name] = true
			if keyAt >= 0 && lit.Len() == 0 {
				return p.fail(i, "placeholders at offsets %d and %d are adjacent: put literal text between them", keyAt, i)
			}
			end := i + j + 2
			if rest && (i != segStart || (end < len(s) && s[end] != '/') || len(seg.keys) > 0) {
				return p.fail(i, "{%s...} must be a whole segment", name)
			}
			seg.lits = append(seg.lits, lit.String())
			lit.Reset()
			seg.keys = append(seg.keys, name)
			seg.rest = rest
			p.keys = append(p.keys, name)
			keyAt = i
			i = end
			continue
		case c < 0x20 || c == 0x7f || c == '\\':
			return p.fail(i, "control byte or backslash %q in literal text", c)
		}
		lit.WriteByte(c)
		i++
	}
	return endSeg(len(s))
}

// validKey reports whether k matches [A-Za-z_][A-Za-z0-9_.-]*.
func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
		case i > 0 && ('0' <= c && c <= '9' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// tmplError is every error of the package. It wraps io/fs.ErrInvalid.
type tmplError struct {
	op      string // parse, match, match dir, unescape
	tmpl    string // the template, if any
	path    string // the path matched, if any
	seg     int    // 1-based index of the offending path segment, if any
	segment string // the offending segment, if any
	offset  int    // byte offset in the template (parse) or segment; <0 if none
	reason  string
}

func (e *tmplError) Error() string {
	var b strings.Builder
	b.WriteString("pathtmpl: ")
	switch e.op {
	case "parse":
		fmt.Fprintf(&b, "template %q at offset %d: %s", e.tmpl, e.offset, e.reason)
		return b.String()
	case "unescape":
		fmt.Fprintf(&b, "segment %q", e.segment)
	default:
		what := "path"
		if e.op == "match dir" {
			what = "directory"
		}
		fmt.Fprintf(&b, "%s %q does not match template %q", what, e.path, e.tmpl)
		if e.seg > 0 {
			b.WriteString(": segment ")
			b.WriteString(strconv.Itoa(e.seg))
			if e.segment != "" {
				fmt.Fprintf(&b, " %q", e.segment)
			}
		}
	}
	if e.offset >= 0 && e.segment != "" {
		fmt.Fprintf(&b, " at offset %d", e.offset)
	}
	b.WriteString(": ")
	b.WriteString(e.reason)
	return b.String()
}

func (e *tmplError) Unwrap() error { return iofs.ErrInvalid }
