package s3

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/pathtmpl"
	"github.com/datagate/datagate/views"
)

// An S3 key is the object's path as the client names it; the Tree's
// paths are made of escaped segments (fs/pathtmpl: "%" is "%25", a
// backslash "%5C", a control byte "%XX"). Keys go through treeKey on the
// way in and keyOf on the way out, so "50%.txt" or "a%20b" are keys like
// any other (they failed as malformed escapes) and an object whose name
// holds a "%" is listed under that name.

// treeKey is the Tree form of key (or of a key prefix): every segment
// escaped. A segment the Tree must refuse as S3 sends it ("", "." and
// "..", a NUL, invalid UTF-8) is kept as is so the Tree refuses it, and
// a prefix ending inside a segment still prefixes the escaped keys: the
// escape of a byte does not depend on its neighbours.
func treeKey(key string) string {
	if !strings.ContainsFunc(key, needsEscape) {
		return key
	}
	segs := strings.Split(key, "/")
	for i, s := range segs {
		if s == "" || s == "." || s == ".." || strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) || specialSegment(s) {
			continue
		}
		segs[i] = pathtmpl.EscapeSegment(s)
	}
	return strings.Join(segs, "/")
}

// needsEscape reports a rune EscapeSegment rewrites (outside "/", which
// separates segments).
func needsEscape(r rune) bool {
	return r < 0x20 || r == 0x7f || r == '%' || r == '\\' || r == utf8.RuneError
}

// specialSegment reports the escapes of the values "", "." and "..": no
// key segment can be these, so such a segment (a template value that is
// empty, from registered metadata) stays escaped in keys, both ways, and
// its object can be read, listed and deleted by that key. A key segment
// written "%-" by a client therefore means the empty value.
func specialSegment(s string) bool {
	return s == "%-" || s == "%2E" || s == "%2E%2E"
}

// keyOf is the S3 key of a Tree path under a bucket (the inverse of
// treeKey): each segment unescaped. A segment that is not a canonical
// escape, or whose value no key segment can hold (a "/", a NUL, invalid
// UTF-8: values of metadata, not of uploads), stays as it is.
func keyOf(p string) string {
	if strings.IndexByte(p, '%') < 0 {
		return p
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.IndexByte(s, '%') < 0 {
			continue
		}
		if specialSegment(s) {
			continue
		}
		if u, err := pathtmpl.UnescapeSegment(s); err == nil && !strings.ContainsAny(u, "/\x00") && utf8.ValidString(u) {
			segs[i] = u
		}
	}
	return strings.Join(segs, "/")
}

// objectPath is the Tree path of the object at key in bucket. A listed
// key may be a Tree segment keyOf kept escaped, the value it stands for
// holding what no key segment can (a "/" or a NUL, from registered
// metadata: "x%2Fy" for the value "x/y"). treeKey reads such a segment
// as a name of its own ("x%252Fy", as "50%.txt" is a name), so the key
// listed could not be read, deleted or overwritten. When the key holds
// such a segment and nothing is at its usual path, the path with those
// segments as they are is taken if something is there. A Tree lookup is
// paid only by keys holding such a segment.
func objectPath(ctx context.Context, t *views.Tree, bucket, key string) string {
	p := treePath(bucket, key)
	alt := escapedKey(key)
	if alt == "" {
		return p
	}
	if _, err := t.Stat(ctx, p); fs.KindOf(err) != fs.NotExist {
		return p
	}
	ap := "/" + bucket + "/" + alt
	if _, err := t.Stat(ctx, ap); err == nil {
		return ap
	}
	return p
}

// escapedKey is the Tree form of key that keeps as they are the segments
// keyOf keeps escaped because their value holds a "/", a NUL or invalid
// UTF-8, the others as treeKey has them; "" when key has none.
func escapedKey(key string) string {
	if strings.IndexByte(key, '%') < 0 {
		return ""
	}
	segs := strings.Split(key, "/")
	kept := false
	for i, s := range segs {
		if strings.IndexByte(s, '%') >= 0 && !specialSegment(s) {
			if u, err := pathtmpl.UnescapeSegment(s); err == nil && (strings.ContainsAny(u, "/\x00") || !utf8.ValidString(u)) {
				kept = true
				continue
			}
		}
		segs[i] = treeKey(s)
	}
	if !kept {
		return ""
	}
	return strings.Join(segs, "/")
}
