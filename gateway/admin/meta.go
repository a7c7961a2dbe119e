package admin

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/ingest"
	"github.com/datagate/datagate/views"
)

// reservedNS is the views' metadata namespace: dg.view and dg.dir mark a
// directory made by mkdir (views.MetaDirView). An object given them
// leaves its views and shows as an empty directory instead, so the API
// refuses them from callers, as the CLI and the front-ends do.
const reservedNS = "dg."

// CheckMeta refuses metadata a caller may not set: keys in the dg.
// namespace, and "name", which views, their filters and searches read as
// the object's name (a "name" key was shown nowhere and found by no
// search; PATCH and the front-ends refuse it too). The error is Invalid
// and names the first such key.
func CheckMeta(m map[string]string) error {
	var bad []string
	for k := range m {
		if strings.HasPrefix(k, reservedNS) || k == views.NameKey {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	if bad[0] == views.NameKey {
		return fs.E(fs.Invalid, "metadata", bad[0], errors.New(`"name" is the object's name, not a metadata key: give it as the name`))
	}
	return fs.E(fs.Invalid, "metadata", bad[0], errors.New("the dg. namespace is reserved for datagate's own keys"))
}

// parseParams parses the key=value pairs of the query parameter param
// (q, meta), refusing a key given twice with two values: conditions all hold and an
// object has one value per key, so "q=type=a&q=type=b" silently meant
// type=b alone.
func parseParams(q url.Values, param string) (map[string]string, error) {
	m, err := ParseMeta(q[param])
	if err != nil || len(m) == len(q[param]) {
		return m, err
	}
	for _, p := range q[param] {
		if k, v, _ := strings.Cut(p, "="); m[k] != v {
			return nil, fs.E(fs.Invalid, param, k, errors.New("key given twice with two values: a key has one value (conditions all hold)"))
		}
	}
	return m, nil
}

// callerRecords checks NDJSON records as a caller's: the store's checks,
// and CheckMeta first, so a record with a dg. key is a line error.
type callerRecords struct{ ingest.Registrar }

func (c callerRecords) Check(o *fs.Object) error {
	if err := CheckMeta(o.Meta); err != nil {
		return err
	}
	return c.Registrar.Check(o)
}

// contentDisposition names the content by the object's name, so that
// curl -OJ and a browser's "save as" store it under that name rather than
// "content". It is inline (a browser still shows what it can); the name
// is in filename* (RFC 6266, RFC 8187), which browsers and Go read, and
// in filename as its UTF-8 bytes (quotes, backslashes and control bytes
// replaced by _), which curl -OJ writes as they are.
func contentDisposition(name string) string {
	var plain, ext strings.Builder
	for _, c := range []byte(name) {
		switch {
		case c < 0x20 || c == 0x7f || c == '"' || c == '\\' || c == '/':
			plain.WriteByte('_')
		default:
			plain.WriteByte(c)
		}
	}
	for _, c := range []byte(name) {
		if isAttrChar(c) {
			ext.WriteByte(c)
		} else {
			fmt.Fprintf(&ext, "%%%02X", c)
		}
	}
	return `inline; filename="` + plain.String() + `"; filename*=UTF-8''` + ext.String()
}

// isAttrChar reports the bytes RFC 8187 lets an ext-value carry as they are.
func isAttrChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$&+-.^_`|~", c) >= 0
}
