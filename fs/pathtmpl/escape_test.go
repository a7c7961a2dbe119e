package pathtmpl

import (
	"errors"
	iofs "io/fs"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/quick"
	"unicode/utf8"
)

func TestEscapeSegment(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "%-"},
		{".", "%2E"},
		{"..", "%2E%2E"},
		{"...", "..."},
		{".hidden", ".hidden"},
		{"a.b", "a.b"},
		{"plain", "plain"},
		{"with space+plus#?&=", "with space+plus#?&="},
		{"a/b", "a%2Fb"},
		{"100%", "100%25"},
		{"%-", "%25-"},
		{"%2E", "%252E"},
		{`back\slash`, "back%5Cslash"},
		{"nul\x00", "nul%00"},
		{"tab\tnl\n", "tab%09nl%0A"},
		{"del\x7f", "del%7F"},
		{"é", "é"},
		{"日本語/テキスト", "日本語%2Fテキスト"},
		{"\U0001F600", "\U0001F600"},
		{"\uFFFD", "\uFFFD"},                 // a valid U+FFFD stays literal
		{"\xff", "%FF"},                      // invalid byte
		{"\xc3", "%C3"},                      // truncated sequence
		{"\xc3\xa9\xc3", "é%C3"},             // valid then truncated
		{"\xe2\x82", "%E2%82"},               // truncated 3-byte sequence
		{"\xed\xa0\x80", "%ED%A0%80"},        // surrogate: invalid UTF-8
		{"\xc0\xaf", "%C0%AF"},               // overlong
		{"\xf4\x90\x80\x80", "%F4%90%80%80"}, // beyond U+10FFFF
		{"\u0085", "\u0085"},                 // a C1 control is valid UTF-8: literal
	} {
		got := EscapeSegment(tc.in)
		if got != tc.want {
			t.Errorf("EscapeSegment(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if n := escapedLen(tc.in); n != len(got) {
			t.Errorf("escapedLen(%q) = %d, want %d", tc.in, n, len(got))
		}
		back, err := UnescapeSegment(got)
		if err != nil || back != tc.in {
			t.Errorf("UnescapeSegment(%q) = %q, %v; want %q", got, back, err, tc.in)
		}
	}
}

func TestUnescapeSegmentRejects(t *testing.T) {
	for _, tc := range []struct{ in, why string }{
		{"", "empty"},
		{".", "segment is ."},
		{"..", "segment is .."},
		{"a/b", `literal "/"`},
		{"/", `literal "/"`},
		{"a\x00", "NUL"},
		{"a\tb", "control"},
		{"a\x7f", "control"},
		{`a\b`, "backslash"},
		{"%", "malformed"},
		{"%2", "malformed"},
		{"a%", "malformed"},
		{"%zz", "malformed"},
		{"%2f", "malformed"}, // lower-case hex
		{"%g0", "malformed"},
		{"50%.txt", "malformed"},
		{"%41", "needs none"},
		{"a%2E", "needs none"}, // %2E only as the whole segment
		{"%2E%2E%2E", "needs none"},
		{"%2Ex", "needs none"},
		{"%20", "needs none"},
		{"x%-", "whole segment"},
		{"%-%-", "whole segment"},
		{"%-x", "whole segment"},
		{"%C3%A9", "valid UTF-8"},
		{"a%E2%82%AC", "valid UTF-8"},
		{"%F0%9F%98%80", "valid UTF-8"},
		{"\xff", "invalid UTF-8"},
		{"a\xc3", "invalid UTF-8"},
	} {
		v, err := UnescapeSegment(tc.in)
		if err == nil {
			t.Errorf("UnescapeSegment(%q) = %q, want an error", tc.in, v)
			continue
		}
		if !errors.Is(err, iofs.ErrInvalid) {
			t.Errorf("UnescapeSegment(%q): %v does not wrap iofs.ErrInvalid", tc.in, err)
		}
		if !strings.Contains(err.Error(), tc.why) || !strings.Contains(err.Error(), "pathtmpl: segment ") {
			t.Errorf("UnescapeSegment(%q): %q, want it to mention the segment and %q", tc.in, err, tc.why)
		}
	}
}

func TestUnescapeSegmentAccepts(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"%-", ""},
		{"%2E", "."},
		{"%2E%2E", ".."},
		{"a%25b", "a%b"},
		{"%C3", "\xc3"},
		{"%C3A", "\xc3A"},
		{"%E2%82", "\xe2\x82"},
		{"%E2%82x%AC", "\xe2\x82x\xac"},
		{"é%A9", "é\xa9"}, // a literal rune then a stray continuation byte
		{"%80%80", "\x80\x80"},
		{"%ED%A0%80", "\xed\xa0\x80"},
	} {
		got, err := UnescapeSegment(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("UnescapeSegment(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// checkEscaped asserts the invariants of an escaped segment and its round trip.
func checkEscaped(t *testing.T, v string) {
	t.Helper()
	s := EscapeSegment(v)
	switch {
	case s == "" || s == "." || s == "..":
		t.Fatalf("EscapeSegment(%q) = %q", v, s)
	case strings.ContainsAny(s, "/\\\x00"):
		t.Fatalf("EscapeSegment(%q) = %q holds a slash, backslash or NUL", v, s)
	case !utf8.ValidString(s):
		t.Fatalf("EscapeSegment(%q) = %q is not valid UTF-8", v, s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			t.Fatalf("EscapeSegment(%q) = %q holds control byte %#x", v, s, s[i])
		}
	}
	if n := escapedLen(v); n != len(s) {
		t.Fatalf("escapedLen(%q) = %d, len(EscapeSegment) = %d", v, n, len(s))
	}
	back, err := UnescapeSegment(s)
	if err != nil || back != v {
		t.Fatalf("UnescapeSegment(EscapeSegment(%q) = %q) = %q, %v", v, s, back, err)
	}
}

func TestEscapeRoundTripQuick(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		checkEscaped(t, randValue(r))
	}
	// testing/quick's strings are random valid UTF-8; add random bytes too.
	if err := quick.Check(func(s string, b []byte) bool {
		checkEscaped(t, s)
		checkEscaped(t, string(b))
		return true
	}, &quick.Config{MaxCount: 5000}); err != nil {
		t.Fatal(err)
	}
}

// An unescaped segment always escapes back to itself: one name per value.
func TestUnescapeCanonicalQuick(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	accepted := 0
	for range 50000 {
		s := randSegmentText(r)
		v, err := UnescapeSegment(s)
		if err != nil {
			continue
		}
		accepted++
		if e := EscapeSegment(v); e != s {
			t.Fatalf("UnescapeSegment(%q) = %q, which escapes to %q", s, v, e)
		}
	}
	if accepted < 5000 {
		t.Fatalf("only %d of 50000 random segments were canonical: the generator is too noisy", accepted)
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", ".", "..", "a/b", "%", "%-", "\x00", "\xff", "é", "\xe2\x82", "\xed\xa0\x80", "a\\b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		checkEscaped(t, v)
	})
}

// FuzzUnescape checks the other direction: what UnescapeSegment accepts is
// exactly what EscapeSegment produces.
func FuzzUnescape(f *testing.F) {
	for _, s := range []string{"%-", "%2E", "%2E%2E", "%C3%A9", "%C3", "a%25", "%41", "x%-", "é%A9", "%E2%82%AC"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := UnescapeSegment(s)
		if err != nil {
			if !errors.Is(err, iofs.ErrInvalid) {
				t.Fatalf("UnescapeSegment(%q): %v does not wrap iofs.ErrInvalid", s, err)
			}
			return
		}
		if e := EscapeSegment(v); e != s {
			t.Fatalf("UnescapeSegment(%q) = %q, which escapes to %q", s, v, e)
		}
	})
}

// randValue returns metadata values rich in the cases escaping must handle.
func randValue(r *rand.Rand) string {
	switch r.IntN(12) {
	case 0:
		return ""
	case 1:
		return "."
	case 2:
		return ".."
	case 3: // long unicode
		var b strings.Builder
		for range 50 + r.IntN(200) {
			b.WriteRune(rune(0x80 + r.IntN(0x10FFFF-0x80)))
		}
		return b.String()
	}
	const pieces = "ab.%/\\-_ +\x00\x01\x1f\x7f"
	var b strings.Builder
	for range r.IntN(12) {
		switch r.IntN(10) {
		case 0:
			b.WriteByte(byte(r.IntN(256))) // any byte, often invalid UTF-8
		case 1:
			b.WriteString([]string{"é", "日本", "\U0001F600", "\uFFFD", "\u0085"}[r.IntN(5)])
		case 2:
			b.WriteString([]string{"\xc3", "\xe2\x82", "\xed\xa0\x80", "\xf0\x9f\x98"}[r.IntN(4)])
		case 3:
			b.WriteString([]string{"%-", "%2E", "..", "%25", "%C3%A9"}[r.IntN(5)])
		default:
			b.WriteByte(pieces[r.IntN(len(pieces))])
		}
	}
	return b.String()
}

// randSegmentText returns strings that look like escaped segments, valid
// or nearly so.
func randSegmentText(r *rand.Rand) string {
	switch r.IntN(20) {
	case 0:
		return "%-"
	case 1:
		return "%2E%2E"
	}
	var b strings.Builder
	for range 1 + r.IntN(8) {
		switch r.IntN(8) {
		case 0, 1:
			b.WriteByte('%')
			b.WriteByte(upperHex[r.IntN(16)])
			b.WriteByte(upperHex[r.IntN(16)])
		case 2:
			b.WriteString([]string{"%C3", "%A9", "%E2", "%82", "%AC", "%F0", "%9F", "%ED", "%A0"}[r.IntN(9)])
		case 3:
			b.WriteString([]string{"é", ".", "\xff", "%", "%-", "%2e"}[r.IntN(6)])
		default:
			b.WriteByte("abz.-_ +~"[r.IntN(9)])
		}
	}
	return b.String()
}
