// Package pathtmpl parses, renders and matches datagate's path templates:
// the one mapping between an object's metadata and a path. The crawler
// matches provider paths to learn metadata (--path-template
// '{date}/{type}/{name}'); a view renders each object's metadata into its
// virtual path and matches an upload's path back into metadata.
//
// # Templates
//
// A template is slash-separated segments. A segment is literal text, a
// placeholder {key}, or a mix of both such as {name}.{ext} or run-{run}.
// Keys match [A-Za-z_][A-Za-z0-9_.-]* and appear at most once. The last
// segment may be a rest capture {key...}, standing for one segment or more:
// uploads/{path...}. Write {{ and }} for literal braces.
//
// Parse rejects, naming the template and the byte offset: an empty
// template, empty segments (a leading, trailing or doubled slash), literal
// segments "." and "..", unbalanced braces, invalid or repeated keys, a
// rest capture that is not the whole last segment, two placeholders with no
// literal text between them ({a}{b} could never be told apart), and
// literal text with a control byte, a backslash or invalid UTF-8.
//
// # Escaping
//
// A metadata value becomes one path segment (EscapeSegment) and back
// (UnescapeSegment) by these rules, and no others:
//
//   - The bytes %, /, \, NUL and the other control bytes (below 0x20, and
//     0x7f) are written %XX, with upper-case hex digits.
//   - Bytes that are not part of valid UTF-8 are written %XX too, so paths
//     are always valid UTF-8 while values may be any bytes.
//   - Everything else stays as it is: UTF-8 text, spaces, +, #, ?, ...
//   - The value "." is written %2E and ".." is written %2E%2E, so that no
//     value reads as a relative path element.
//   - The empty value is written %- (a - never follows % otherwise).
//
// The mapping is one to one: UnescapeSegment accepts only what
// EscapeSegment produces. Lower-case hex, an escape of a byte that needs
// none (%41 for A, %C3%A9 for é), a bare %, a literal /, NUL, control byte
// or backslash, invalid UTF-8, "", "." and ".." are errors, so one object
// never has two names and a name never means two objects. A provider file
// whose name is not a canonical escaped value (say "50%.txt") does not
// match a template: callers such as the crawler have to report or skip it.
//
// A rest capture's value is split on "/" and each part escaped, so "a//b"
// renders as a/%-/b, and matching joins the unescaped parts with "/". A
// part never holds a "/", so %2F is not accepted in a rest capture.
//
// # Matching
//
// Match takes a clean relative path (no leading or trailing slash, no
// empty, "." or ".." segment); literal text must be equal, and each
// placeholder's text must be a canonical escaped value. For every path
// that Match accepts, Render of its result gives the path back; for every
// template whose segments hold at most one placeholder each, Match of
// Render(meta) gives meta back, restricted to the template's keys.
//
// A segment with several placeholders is ambiguous when a value contains
// the literal text that separates them: {name}.{ext} renders name "a.b",
// ext "c" and name "a", ext "b.c" both as a.b.c. Matching resolves it
// left to right: each placeholder takes the LONGEST text that is a
// canonical escaped value and still lets the rest of the segment match, as
// the regular expression ^(.+)\.(.+)$ would. So a.b.c matches as name
// "a.b", ext "c", and archive.tar.gz as name "archive.tar", ext "gz".
// Keep separators out of all but the first value (or use one placeholder
// per segment) when metadata must survive a round trip exactly.
//
// MatchDir matches a directory (a path with fewer segments than the
// template) into the keys its segments fix, and Prefix renders the
// directory that a partial metadata map pins down, to list a sub-tree.
//
// # Errors and cost
//
// Every error wraps io/fs.ErrInvalid (so fs.KindOf classifies it as
// Invalid) and names the template and the path or segment concerned.
// Templates are immutable and safe for concurrent use. Render makes one
// allocation; Match makes the result map, plus one string per value that
// needed unescaping (other values share the path's memory).
package pathtmpl
