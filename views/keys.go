package views

import (
	"encoding/binary"
	"errors"
	"strings"
	"time"

	"github.com/datagate/datagate/fs"
)

// Path index layout (derived keys, see the package doc):
//
//	file:   'v' view 0x00 seg1 0x01 seg2 0x01 ... segN 0x00 id(16)
//	marker: 'v' view 0x00 seg1 0x01 ... segN 0x01 0x00 id(16)
//
// Escaped segments and template literals never hold a byte below 0x20, so
// 0x00 ends a name that is a file and 0x01 one that is a directory: a
// directory's entries are the keys under 'v' view 0x00 dir 0x01, in name
// order, a file X and a directory X are adjacent, and a marker (a file
// with an empty name) is the first key of its directory.
const (
	keyView  = 'v'
	sepEnd   = 0x00 // ends a file name (then the id) and the view name
	sepDir   = 0x01 // between directory segments
	afterDir = 0x02 // seek target just past a whole name's file and subtree
	idLen    = 16
)

// viewBase is 'v' view 0x00: the prefix of the view's root directory.
func viewBase(view string) []byte {
	b := make([]byte, 0, len(view)+2+64)
	b = append(b, keyView)
	b = append(b, view...)
	return append(b, sepEnd)
}

// appendPath appends a '/'-separated path with sepDir separators.
func appendPath(b []byte, p string) []byte {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '/' {
			c = sepDir
		}
		b = append(b, c)
	}
	return b
}

// dirPrefix is the prefix of the keys of dir's entries ("" = the root).
func dirPrefix(view, dir string) []byte {
	b := viewBase(view)
	if dir == "" {
		return b
	}
	b = appendPath(b, dir)
	return append(b, sepDir)
}

// fileKeyPrefix is the prefix of the keys of the objects at path p.
func fileKeyPrefix(view, p string) []byte {
	return append(appendPath(viewBase(view), p), sepEnd)
}

func fileKey(view, p string, id fs.ID) []byte {
	return append(fileKeyPrefix(view, p), id[:]...)
}

func markerKey(view, dir string, id fs.ID) []byte {
	return append(append(dirPrefix(view, dir), sepEnd), id[:]...)
}

// keyPath decodes the view-relative path and id of a key under base
// (viewBase). marker reports a directory marker, whose path is its
// directory's.
func keyPath(base, k []byte) (p string, id fs.ID, marker bool, ok bool) {
	if len(k) < len(base)+1+idLen {
		return "", id, false, false
	}
	body := k[len(base) : len(k)-idLen]
	copy(id[:], k[len(k)-idLen:])
	if body[len(body)-1] != sepEnd {
		return "", id, false, false
	}
	body = body[:len(body)-1]
	if len(body) > 0 && body[len(body)-1] == sepDir {
		marker = true
		body = body[:len(body)-1]
	}
	var b strings.Builder
	b.Grow(len(body))
	for _, c := range body {
		if c == sepDir {
			c = '/'
		}
		b.WriteByte(c)
	}
	return b.String(), id, marker, true
}

// entry is what a path index value records: what a listing shows, so
// that listing a directory loads no object.
type entry struct {
	marker  bool
	state   fs.State
	size    int64 // -1: unknown
	modTime time.Time
	etag    string // the object's ETag, so S3 listings need no object
}

// Value versions: v1 lacks the ETag (indexes written before it; fsck
// --repair rewrites them), v2 ends with a length-prefixed ETag.
const (
	valueV1 = 1
	valueV2 = 2
)

func encodeEntry(e entry) []byte {
	b := make([]byte, 0, 3+3*binary.MaxVarintLen64+len(e.etag))
	var flags byte
	if e.marker {
		flags |= 1
	}
	b = append(b, valueV2, flags, byte(e.state))
	b = binary.AppendVarint(b, e.size)
	var ns int64
	if !e.modTime.IsZero() {
		ns = e.modTime.UnixNano()
	}
	b = binary.AppendVarint(b, ns)
	b = binary.AppendUvarint(b, uint64(len(e.etag)))
	return append(b, e.etag...)
}

var errBadValue = errors.New("views: corrupt path index value")

func decodeEntry(v []byte) (entry, error) {
	if len(v) < 3 || (v[0] != valueV1 && v[0] != valueV2) {
		return entry{}, errBadValue
	}
	ver := v[0]
	e := entry{marker: v[1]&1 != 0, state: fs.State(v[2])}
	v = v[3:]
	size, n := binary.Varint(v)
	if n <= 0 {
		return entry{}, errBadValue
	}
	v = v[n:]
	ns, m := binary.Varint(v)
	if m <= 0 {
		return entry{}, errBadValue
	}
	v = v[m:]
	e.size = size
	if ns != 0 {
		e.modTime = time.Unix(0, ns).UTC()
	}
	if ver == valueV2 {
		l, k := binary.Uvarint(v)
		if k <= 0 || uint64(len(v)-k) < l {
			return entry{}, errBadValue
		}
		if l > 0 {
			e.etag = string(v[k : k+int(l)])
		}
	}
	return e, nil
}

func entryOf(o *fs.Object, marker bool) entry {
	e := entry{marker: marker, state: o.State, size: o.Size, modTime: o.ModTime}
	if !marker {
		e.etag = o.ETag
	}
	return e
}
