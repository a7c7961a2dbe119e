package pathtmpl

import (
	"strings"
	"unicode/utf8"
)

// The three values whose escaped form is not derived byte by byte.
const (
	escEmpty  = "%-"
	escDot    = "%2E"
	escDotDot = "%2E%2E"
)

const upperHex = "0123456789ABCDEF"

// mustEscape reports the ASCII bytes a value may not carry literally.
// Bytes >= 0x80 are decided by UTF-8 validity instead.
var mustEscape = func() (t [utf8.RuneSelf]bool) {
	for b := range 0x20 {
		t[b] = true
	}
	t[0x7f], t['%'], t['/'], t['\\'] = true, true, true, true
	return t
}()

// EscapeSegment returns the path segment that stands for the metadata value
// v (see the package doc for the rules). The result is never "", "." or
// "..", holds no "/", NUL or control byte, is valid UTF-8, and
// UnescapeSegment turns it back into v. A value that needs no escaping is
// returned as is, without allocating.
func EscapeSegment(v string) string {
	switch v {
	case "":
		return escEmpty
	case ".":
		return escDot
	case "..":
		return escDotDot
	}
	n := escapedLen(v)
	if n == len(v) {
		return v
	}
	var b strings.Builder
	b.Grow(n)
	writeEscaped(&b, v)
	return b.String()
}

// escapedLen is len(EscapeSegment(v)).
func escapedLen(v string) int {
	switch v {
	case "":
		return len(escEmpty)
	case ".":
		return len(escDot)
	case "..":
		return len(escDotDot)
	}
	n := 0
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			if mustEscape[c] {
				n += 3
			} else {
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError && size == 1 {
			n += 3
		} else {
			n += size
		}
		i += size
	}
	return n
}

// writeEscaped writes EscapeSegment(v) to b.
func writeEscaped(b *strings.Builder, v string) {
	switch v {
	case "":
		b.WriteString(escEmpty)
		return
	case ".":
		b.WriteString(escDot)
		return
	case "..":
		b.WriteString(escDotDot)
		return
	}
	start := 0 // v[start:i] is pending literal text
	for i := 0; i < len(v); {
		c := v[i]
		size := 1
		esc := false
		if c < utf8.RuneSelf {
			esc = mustEscape[c]
		} else {
			var r rune
			r, size = utf8.DecodeRuneInString(v[i:])
			esc = r == utf8.RuneError && size == 1
		}
		if esc {
			b.WriteString(v[start:i])
			b.WriteByte('%')
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&0xf])
			start = i + 1
		}
		i += size
	}
	b.WriteString(v[start:])
}

// UnescapeSegment returns the metadata value the path segment s stands for.
// It accepts exactly the strings EscapeSegment produces, so every value has
// one path and every accepted path one value: a malformed escape, lower-case
// hex, an escape of a byte that needs none (such as %41), a literal "/",
// NUL, control byte, backslash or invalid UTF-8, and "", "." and ".." are
// all rejected with an error wrapping io/fs.ErrInvalid. A segment without
// escapes is returned as is, without allocating.
func UnescapeSegment(s string) (string, error) {
	if at, why := checkCanonical(s); why != "" {
		return "", &tmplError{op: "unescape", segment: s, offset: at, reason: why}
	}
	return decode(s), nil
}

// checkCanonical reports where and why s is not an EscapeSegment output;
// why is "" when it is one.
func checkCanonical(s string) (at int, why string) {
	switch s {
	case escEmpty:
		return 0, ""
	case escDot, escDotDot:
		return 0, ""
	case "":
		return 0, "empty segment"
	case ".", "..":
		return 0, "segment is " + s
	}
	at, _, why = scan(s)
	return at, why
}

// decode unescapes a canonical segment.
func decode(s string) string {
	switch s {
	case escEmpty:
		return ""
	case escDot:
		return "."
	case escDotDot:
		return ".."
	}
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) - 2) // at least one escape shrinks by 2
	for i >= 0 {
		b.WriteString(s[:i])
		b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
		s = s[i+3:]
		i = strings.IndexByte(s, '%')
	}
	b.WriteString(s)
	return b.String()
}

// scan walks s as a sequence of tokens (a literal character or a %XX
// escape) and finds the first one that EscapeSegment would not have
// produced in the middle of a value. It returns the offset of that token,
// the offset just after it (every prefix of s that extends to end or
// further is not canonical, every prefix ending on a token boundary before
// end is, apart from the whole-segment forms "", ".", "..", "%-", "%2E" and
// "%2E%2E"), and the reason. A clean s gives (-1, len(s)+1, "").
//
// An escaped byte >= 0x80 is canonical unless it starts a run of escapes
// that decodes to a valid multi-byte UTF-8 sequence: EscapeSegment leaves
// valid UTF-8 literal. Continuation bytes can only arrive as escapes (a
// literal one is invalid UTF-8 on its own), so looking ahead over escapes
// alone is enough.
func scan(s string) (at, end int, why string) {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '%':
			if i+1 < len(s) && s[i+1] == '-' {
				return i, i + 2, `"%-" is only valid as a whole segment`
			}
			b, ok := escapeAt(s, i)
			if !ok {
				return i, i + 1, "malformed escape (want % and two upper-case hex digits)"
			}
			if b < utf8.RuneSelf {
				if !mustEscape[b] {
					return i, i + 3, "escape of a byte that needs none"
				}
				i += 3
				continue
			}
			if n := escapedRuneLen(s, i, b); n > 1 {
				return i, i + 3*n, "escaped valid UTF-8 (must be literal)"
			}
			i += 3
		case c < utf8.RuneSelf:
			if mustEscape[c] {
				switch c {
				case '/':
					return i, i + 1, `literal "/"`
				case 0:
					return i, i + 1, "literal NUL"
				}
				return i, i + 1, "unescaped control byte or backslash"
			}
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return i, i + 1, "invalid UTF-8"
			}
			i += size
		}
	}
	return -1, len(s) + 1, ""
}

// escapeAt decodes the well-formed escape %XX at s[i].
func escapeAt(s string, i int) (byte, bool) {
	if i+2 >= len(s) || s[i] != '%' {
		return 0, false
	}
	hi, lo := s[i+1], s[i+2]
	if !isUpperHex(hi) || !isUpperHex(lo) {
		return 0, false
	}
	return unhex(hi)<<4 | unhex(lo), true
}

// escapedRuneLen returns the length of the UTF-8 sequence that the run of
// escapes starting at s[i] (whose byte is lead) decodes to; 1 if invalid.
func escapedRuneLen(s string, i int, lead byte) int {
	if lead < 0xC2 || lead > 0xF4 { // never starts a valid sequence
		return 1
	}
	var buf [utf8.UTFMax]byte
	buf[0] = lead
	n := 1
	for j := i + 3; n < utf8.UTFMax; j += 3 {
		b, ok := escapeAt(s, j)
		if !ok {
			break
		}
		buf[n] = b
		n++
	}
	_, size := utf8.DecodeRune(buf[:n])
	return size
}

func isUpperHex(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'A' + 10
}
