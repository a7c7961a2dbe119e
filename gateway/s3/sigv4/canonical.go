package sigv4

import (
	"bytes"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// appendCanonicalURI appends the path, each segment URI-encoded once, not
// normalised: S3 signs the key as it is.
func appendCanonicalURI(b []byte, r *http.Request) []byte {
	if r.URL.RawPath == "" {
		// Path's default encoding round-trips: encode it.
		p := r.URL.Path
		if p == "" {
			return append(b, '/')
		}
		return appendEncoded(b, p, false)
	}
	// The client escaped something the default would not (e.g. %2F
	// inside a key): decode segment by segment so an escaped slash stays
	// escaped.
	raw := r.URL.RawPath
	first := true
	for {
		seg, rest, more := strings.Cut(raw, "/")
		if !first {
			b = append(b, '/')
		}
		first = false
		b = appendEncoded(b, unescape(seg, false), true)
		if !more {
			return b
		}
		raw = rest
	}
}

// appendEncoded appends s URI-encoded the AWS way: everything but the
// RFC 3986 unreserved characters as %XX (uppercase); '/' kept unless
// encodeSlash.
func appendEncoded(b []byte, s string, encodeSlash bool) []byte {
	const hexUpper = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' || c == '/' && !encodeSlash {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hexUpper[c>>4], hexUpper[c&15])
	}
	return b
}

// unescape decodes %XX (and '+' as space when plus). Malformed escapes
// are kept literally: the signature then simply does not match.
func unescape(s string, plus bool) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '%' || plus && s[i] == '+' {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%' && i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		case c == '+' && plus:
			b = append(b, ' ')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func ishex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

type queryParam struct{ key, value string }

// parseQuery decodes a raw query into its parameters, in order.
func parseQuery(raw string) ([]queryParam, error) {
	if raw == "" {
		return nil, nil
	}
	q := make([]queryParam, 0, 8)
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if kv == "" {
			continue
		}
		if strings.IndexByte(kv, ';') >= 0 {
			return nil, errStr("semicolons are not allowed in the query")
		}
		k, val, _ := strings.Cut(kv, "=")
		q = append(q, queryParam{unescape(k, true), unescape(val, true)})
		if len(q) > 1000 {
			return nil, errStr("too many query parameters")
		}
	}
	return q, nil
}

type errStr string

func (e errStr) Error() string { return string(e) }

// queryHas reports whether the raw query has a parameter named key
// (unescaped names only: the X-Amz-* names need no escaping).
func queryHas(raw, key string) bool {
	for raw != "" {
		i := strings.Index(raw, key)
		if i < 0 {
			return false
		}
		if (i == 0 || raw[i-1] == '&') && (i+len(key) == len(raw) || raw[i+len(key)] == '=' || raw[i+len(key)] == '&') {
			return true
		}
		raw = raw[i+len(key):]
	}
	return false
}

// appendCanonicalQuery appends the canonical query string of the parsed
// parameters q: decoded, re-encoded the AWS way, sorted by name then
// value; for a presigned request without X-Amz-Signature.
func appendCanonicalQuery(b []byte, q []queryParam, presigned bool) []byte {
	if len(q) == 0 {
		return b
	}
	sc := scratchPool.Get().(*queryScratch)
	defer scratchPool.Put(sc)
	// Encode every parameter into one buffer and sort offsets into it.
	enc, spans := sc.enc[:0], sc.spans[:0]
	for _, p := range q {
		if presigned && p.key == "X-Amz-Signature" {
			continue
		}
		k0 := len(enc)
		enc = appendEncoded(enc, p.key, true)
		k1 := len(enc)
		enc = appendEncoded(enc, p.value, true)
		spans = append(spans, span{k0, k1, len(enc)})
	}
	slices.SortFunc(spans, func(a, c span) int {
		if x := bytes.Compare(enc[a.k0:a.k1], enc[c.k0:c.k1]); x != 0 {
			return x
		}
		return bytes.Compare(enc[a.k1:a.v1], enc[c.k1:c.v1])
	})
	for i, s := range spans {
		if i > 0 {
			b = append(b, '&')
		}
		b = append(b, enc[s.k0:s.k1]...)
		b = append(b, '=')
		b = append(b, enc[s.k1:s.v1]...)
	}
	if cap(enc) <= 64<<10 {
		sc.enc, sc.spans = enc, spans
	}
	return b
}

// span locates one encoded parameter in queryScratch.enc: key
// enc[k0:k1], value enc[k1:v1].
type span struct{ k0, k1, v1 int }

// queryScratch is appendCanonicalQuery's working memory, pooled so a
// verification does not allocate it.
type queryScratch struct {
	enc   []byte
	spans []span
}

var scratchPool = sync.Pool{New: func() any { return &queryScratch{enc: make([]byte, 0, 1024), spans: make([]span, 0, 16)} }}

// appendCanonicalHeaders appends "name:value\n" for each signed header:
// values trimmed, inner runs of spaces collapsed, repeated headers joined
// with ',' in the order received.
func appendCanonicalHeaders(b []byte, r *http.Request, signedHeaders string) []byte {
	sh := signedHeaders
	for sh != "" {
		var name string
		name, sh, _ = strings.Cut(sh, ";")
		b = append(b, name...)
		b = append(b, ':')
		switch name {
		case "host":
			b = appendTrimmed(b, r.Host)
		case "content-length":
			if vs := r.Header.Values("Content-Length"); len(vs) > 0 {
				b = appendValues(b, vs)
			} else if r.ContentLength >= 0 {
				b = strconv.AppendInt(b, r.ContentLength, 10)
			}
		case "transfer-encoding":
			if vs := r.Header.Values("Transfer-Encoding"); len(vs) > 0 {
				b = appendValues(b, vs)
			} else {
				b = appendValues(b, r.TransferEncoding)
			}
		default:
			b = appendValues(b, headerValues(r.Header, name))
		}
		b = append(b, '\n')
	}
	return b
}

// headerValues finds a header by its lowercase name without allocating
// in the common case of a canonically keyed map.
func headerValues(h http.Header, lower string) []string {
	var buf [64]byte
	if len(lower) <= len(buf) {
		k := buf[:len(lower)]
		upper := true
		for i := 0; i < len(lower); i++ {
			c := lower[i]
			if upper && c >= 'a' && c <= 'z' {
				c -= 'a' - 'A'
			}
			k[i] = c
			upper = c == '-'
		}
		if vs, ok := h[string(k)]; ok {
			return vs
		}
	}
	for k, vs := range h {
		if strings.EqualFold(k, lower) {
			return vs
		}
	}
	return nil
}

func appendValues(b []byte, vs []string) []byte {
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendTrimmed(b, v)
	}
	return b
}

// appendTrimmed appends v without leading and trailing whitespace and with
// every run of spaces inside collapsed to one.
func appendTrimmed(b []byte, v string) []byte {
	v = strings.TrimSpace(v)
	space := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' || c == '\t' {
			space = true
			continue
		}
		if space {
			b = append(b, ' ')
			space = false
		}
		b = append(b, c)
	}
	return b
}
