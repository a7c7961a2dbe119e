package pathtmpl

import (
	"strings"
)

// Render returns the path of an object with metadata meta: the template
// with each placeholder replaced by its escaped value, and a {key...}
// value split on "/" and each part escaped. ok is false, and path "", when
// meta lacks a key the template needs; other keys of meta are ignored.
func (t *Template) Render(meta map[string]string) (path string, ok bool) {
	// One map lookup per key, kept on the stack for the usual few keys.
	var buf [8]string
	vals := buf[:0]
	n := len(t.segs) - 1 // slashes
	for i := range t.segs {
		sg := &t.segs[i]
		for j, k := range sg.keys {
			v, ok := meta[k]
			if !ok {
				return "", false
			}
			vals = append(vals, v)
			if sg.rest {
				n += restLen(v)
			} else {
				n += escapedLen(v)
			}
			n += len(sg.lits[j])
		}
		n += len(sg.lits[len(sg.lits)-1])
	}
	var b strings.Builder
	b.Grow(n)
	for i := range t.segs {
		if i > 0 {
			b.WriteByte('/')
		}
		sg := &t.segs[i]
		for j := range sg.keys {
			b.WriteString(sg.lits[j])
			if sg.rest {
				writeRest(&b, vals[0])
			} else {
				writeEscaped(&b, vals[0])
			}
			vals = vals[1:]
		}
		b.WriteString(sg.lits[len(sg.lits)-1])
	}
	return b.String(), true
}

// restLen is the rendered length of a {key...} value.
func restLen(v string) int {
	n := 0
	for {
		i := strings.IndexByte(v, '/')
		if i < 0 {
			return n + escapedLen(v)
		}
		n += escapedLen(v[:i]) + 1
		v = v[i+1:]
	}
}

func writeRest(b *strings.Builder, v string) {
	for {
		i := strings.IndexByte(v, '/')
		if i < 0 {
			writeEscaped(b, v)
			return
		}
		writeEscaped(b, v[:i])
		b.WriteByte('/')
		v = v[i+1:]
	}
}

// Prefix returns the leading directory segments that meta fully
// determines: rendered segment by segment from the left while meta holds
// every key of the segment, never including the last segment, which names
// the object itself. For a {key...} capture present in meta, all of its
// parts but the last are directories too. Every path Render gives for a
// metadata map that agrees with meta lies under the returned directory
// ("" for the root), which makes it the prefix to list a sub-tree by.
func (t *Template) Prefix(meta map[string]string) string {
	var b strings.Builder
	for i := range t.segs {
		sg := &t.segs[i]
		last := i == len(t.segs)-1
		if last && !sg.rest {
			break
		}
		if sg.rest {
			v, ok := meta[sg.keys[0]]
			j := strings.LastIndexByte(v, '/')
			if !ok || j < 0 {
				break
			}
			if i > 0 {
				b.WriteByte('/')
			}
			writeRest(&b, v[:j])
			break
		}
		full := true
		for _, k := range sg.keys {
			if _, ok := meta[k]; !ok {
				full = false
				break
			}
		}
		if !full {
			break
		}
		if i > 0 {
			b.WriteByte('/')
		}
		for j, k := range sg.keys {
			b.WriteString(sg.lits[j])
			writeEscaped(&b, meta[k])
		}
		b.WriteString(sg.lits[len(sg.lits)-1])
	}
	return b.String()
}

// Match returns the metadata that path implies: one entry per key of the
// template. path is a clean, slash-separated relative path (no leading or
// trailing slash, no empty, "." or ".." segment). Literal text must match
// exactly and each placeholder's text must be a canonical escaped value
// (see UnescapeSegment); segments with several placeholders are split as
// the package doc describes. A path that does not fit gives an error
// wrapping io/fs.ErrInvalid that names the template and the path. Values
// that needed no unescaping share path's memory.
func (t *Template) Match(path string) (map[string]string, error) {
	if err := t.checkPath("match", path); err != nil {
		return nil, err
	}
	meta := make(map[string]string, len(t.keys))
	if err := t.match("match", path, meta, false); err != nil {
		return nil, err
	}
	return meta, nil
}

// MatchDir returns the keys a directory fixes: dir has fewer segments than
// the template's paths ("" is the root and fixes nothing), and each of its
// segments is matched as Match would. Under a {key...} capture a directory
// may be deeper than the template; the segments from the capture on must
// be valid escaped values, but fix no key, since the capture's value is
// only known with the object's own name.
func (t *Template) MatchDir(dir string) (map[string]string, error) {
	if dir == "" {
		return map[string]string{}, nil
	}
	if err := t.checkPath("match dir", dir); err != nil {
		return nil, err
	}
	meta := make(map[string]string, len(t.keys))
	if err := t.match("match dir", dir, meta, true); err != nil {
		return nil, err
	}
	return meta, nil
}

// checkPath rejects paths that are not clean and relative.
func (t *Template) checkPath(op, path string) error {
	fail := func(why string) error {
		return &tmplError{op: op, tmpl: t.src, path: path, offset: -1, reason: why}
	}
	switch {
	case path == "":
		return fail("empty path")
	case path[0] == '/':
		return fail("leading slash")
	case path[len(path)-1] == '/':
		return fail("trailing slash")
	}
	return nil
}

// match fills meta from path, segment by segment. dir says path is a
// directory: it must stop before the template's last segment, unless that
// is a rest capture.
func (t *Template) match(op, path string, meta map[string]string, dir bool) error {
	fail := func(seg int, segment string, offset int, why string) error {
		return &tmplError{op: op, tmpl: t.src, path: path, seg: seg, segment: segment, offset: offset, reason: why}
	}
	rest := path
	for i := 0; ; i++ {
		if i == len(t.segs) {
			return fail(0, "", -1, "more segments than the template")
		}
		sg := &t.segs[i]
		if sg.rest {
			v, bad, at, why := matchRest(rest)
			if why != "" {
				return fail(i+1+bad, rest0(rest, bad), at, why)
			}
			if !dir {
				meta[sg.keys[0]] = v
			}
			return nil
		}
		if dir && i == len(t.segs)-1 {
			return fail(0, "", -1, "too deep for a directory: it names an object")
		}
		seg, more, found := strings.Cut(rest, "/")
		if seg == "" {
			return fail(i+1, "", -1, "empty segment")
		}
		if at, why := sg.matchInto(seg, meta); why != "" {
			return fail(i+1, seg, at, why)
		}
		if !found {
			switch {
			case dir || i+1 == len(t.segs):
				return nil
			case i+2 == len(t.segs) && t.rest:
				return fail(0, "", -1, "no segment for the {"+t.segs[i+1].keys[0]+"...} capture")
			}
			return fail(0, "", -1, "fewer segments than the template")
		}
		rest = more
	}
}

// rest0 returns the n-th (0-based) segment of s.
func rest0(s string, n int) string {
	for range n {
		_, s, _ = strings.Cut(s, "/")
	}
	seg, _, _ := strings.Cut(s, "/")
	return seg
}

// matchRest decodes the segments of a {key...} capture: each must be a
// canonical escaped value without %2F; the value is their decoded parts joined by "/".
// On failure it returns the 0-based index of the bad segment in s, an
// offset in it (or -1) and the reason.
func matchRest(s string) (v string, bad, at int, why string) {
	hasEsc := false
	for i, p := 0, s; ; i++ {
		part, more, found := strings.Cut(p, "/")
		if part == "" {
			return "", i, -1, "empty segment"
		}
		if at, why := checkCanonical(part); why != "" {
			return "", i, at, why
		}
		// Render splits the value on "/", so a part never holds one:
		// %2F here would be a second name for the same value.
		if at := strings.Index(part, "%2F"); at >= 0 {
			return "", i, at, `escaped "/" in a {key...} capture (a "/" in its value is a separator)`
		}
		hasEsc = hasEsc || strings.IndexByte(part, '%') >= 0
		if !found {
			break
		}
		p = more
	}
	if !hasEsc {
		return s, 0, 0, "" // parts decode to themselves: the path is the value
	}
	var b strings.Builder
	b.Grow(len(s))
	for p := s; ; {
		part, more, found := strings.Cut(p, "/")
		b.WriteString(decode(part))
		if !found {
			break
		}
		b.WriteByte('/')
		p = more
	}
	return b.String(), 0, 0, ""
}

// matchInto matches one path segment and stores the values it gives. On
// failure it returns an offset in seg (or -1) and the reason.
func (sg *segment) matchInto(seg string, meta map[string]string) (at int, why string) {
	if sg.literal() {
		if seg != sg.lits[0] {
			return -1, "want " + quote(sg.lits[0])
		}
		return -1, ""
	}
	pre, suf := sg.lits[0], sg.lits[len(sg.lits)-1]
	if !strings.HasPrefix(seg, pre) {
		return 0, "want prefix " + quote(pre)
	}
	if !strings.HasSuffix(seg, suf) || len(seg) < len(pre)+len(suf) {
		return -1, "want suffix " + quote(suf)
	}
	body := seg[len(pre) : len(seg)-len(suf)]
	if len(sg.keys) == 1 {
		if body == "" {
			return len(pre), "empty value (write %- for an empty one)"
		}
		if at, why := checkCanonical(body); why != "" {
			return len(pre) + max(at, 0), why
		}
		meta[sg.keys[0]] = decode(body)
		return -1, ""
	}
	ends := make([]int, len(sg.keys)) // ends[k]: end of key k's text in body
	m := splitter{sg: sg, body: body, ends: ends}
	if !m.split(0, 0) {
		return -1, "no split of the text between " + quote(pre) + " and " + quote(suf) + " into escaped values"
	}
	start := 0
	for k, key := range sg.keys {
		meta[key] = decode(body[start:ends[k]])
		start = ends[k] + len(sg.lits[k+1])
	}
	return -1, ""
}

func quote(s string) string { return `"` + s + `"` }

// splitter finds where a segment's placeholders end: left to right, each
// placeholder takes the longest text that is a canonical escaped value and
// lets the rest of the segment match. failed memoises (key, start) pairs
// that cannot lead to a match, which bounds the search to
// O(keys × len(body)²) however the literals repeat.
type splitter struct {
	sg     *segment
	body   string
	ends   []int
	failed []bool // [k*(len(body)+1)+p], allocated on the first failure
}

// split reports whether keys k.. can match body[p:], recording their ends.
func (m *splitter) split(k, p int) bool {
	memo := k*(len(m.body)+1) + p
	if m.failed != nil && m.failed[memo] {
		return false
	}
	s := m.body[p:]
	_, bad, _ := scan(s)
	ok := func(e int) bool { // is s[:e] a canonical escaped value?
		if e <= 0 {
			return false
		}
		switch piece := s[:e]; piece {
		case escEmpty, escDot, escDotDot:
			return true
		case ".", "..":
			return false
		}
		// Inside an escape is not a token boundary: "%X|X" or "%|-".
		if s[e-1] == '%' || e >= 2 && s[e-2] == '%' && s[e-1] != '-' {
			return false
		}
		return e < bad
	}
	if k == len(m.ends)-1 {
		if ok(len(s)) {
			m.ends[k] = len(m.body)
			return true
		}
	} else {
		sep := m.sg.lits[k+1]
		for hi := len(s); ; {
			j := strings.LastIndex(s[:hi], sep)
			if j <= 0 {
				break
			}
			if ok(j) && m.split(k+1, p+j+len(sep)) {
				m.ends[k] = p + j
				return true
			}
			hi = j + len(sep) - 1
		}
	}
	if m.failed == nil {
		m.failed = make([]bool, len(m.ends)*(len(m.body)+1))
	}
	m.failed[memo] = true
	return false
}
