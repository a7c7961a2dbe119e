package views

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/datagate/datagate/fs"
)

// cleanPath checks a path given by a client, once, for every operation:
// an optional leading "/", segments separated by single slashes, and a
// trailing "/" that marks the path as a directory (reported in dir, and
// allowed only where a directory is meant). "" and "/" are the root.
// Refused, as Invalid: ".", "..", empty segments, NUL, invalid UTF-8,
// segments over MaxName bytes, paths over MaxPath bytes. Nothing is
// rewritten: a path that is not clean is an error, never silently fixed,
// so one name always means one file.
func cleanPath(op, p string) (segs []string, dir bool, err error) {
	fail := func(why string) ([]string, bool, error) {
		return nil, false, fs.E(fs.Invalid, op, quoteIfOdd(p), errors.New(why))
	}
	switch {
	case len(p) > MaxPath:
		return fail(fmt.Sprintf("path longer than %d bytes", MaxPath))
	case strings.IndexByte(p, 0) >= 0:
		return fail("NUL byte in path")
	case !utf8.ValidString(p):
		return fail("path is not valid UTF-8")
	}
	rest := strings.TrimPrefix(p, "/")
	if rest == "" {
		return nil, true, nil
	}
	if r, ok := strings.CutSuffix(rest, "/"); ok {
		rest, dir = r, true
	}
	segs = strings.Split(rest, "/")
	for _, s := range segs {
		switch {
		case s == "":
			return fail("empty path segment")
		case s == "." || s == "..":
			return fail(fmt.Sprintf("path segment %q", s))
		case len(s) > MaxName:
			return fail(fmt.Sprintf("name longer than %d bytes", MaxName))
		}
	}
	return segs, dir, nil
}

// quoteIfOdd quotes a path holding bytes a log line should not carry raw.
func quoteIfOdd(p string) string {
	if len(p) > 200 {
		p = p[:200] + "…"
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] == 0x7f || p[i] >= 0x80 {
			if !utf8.ValidString(p) || p[i] < 0x80 {
				return fmt.Sprintf("%q", p)
			}
		}
	}
	return p
}
