package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/datagate/datagate/fs"
)

// Objects are encoded by hand: a version byte, then fields in a fixed order
// as uvarints and length-prefixed bytes. Decoding sits on every lookup and
// listing, so it must be fast and allocation-light; reflection-based codecs
// (msgpack, gob, JSON) cost several times more, and protobuf would bring a
// code generator into the build for eleven fields. The leading version byte
// lets a later format be read alongside this one.
//
// A field is added compatibly at the end, written only when it is set:
// records without it keep their bytes, a decoder that does not know it
// ignores what follows the fields it knows, and one that does reads the
// field's zero value when the record ends before it. The registration
// fingerprint (fs.Object.Fingerprint) was added so: 8 bytes, big-endian.
const codecV1 = 1

var errCorrupt = errors.New("index: corrupt object record")

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }
func appendVarint(b []byte, v int64) []byte   { return binary.AppendVarint(b, v) }

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendString(b []byte, v string) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return appendVarint(b, 0)
	}
	return appendVarint(b, t.UnixNano())
}

// encodeObject appends the encoding of o to b. Metadata is written in key
// order so equal objects encode to equal bytes.
func encodeObject(b []byte, o *fs.Object) []byte {
	b = append(b, codecV1)
	b = append(b, o.ID[:]...)
	b = appendString(b, o.Name)
	b = appendVarint(b, o.Size)
	b = appendTime(b, o.ModTime)
	b = appendString(b, o.ContentType)
	keys := make([]string, 0, len(o.Meta))
	for k := range o.Meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = appendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, o.Meta[k])
	}
	b = appendBytes(b, o.MD5)
	b = appendBytes(b, o.SHA256)
	b = appendString(b, o.ETag)
	b = appendTime(b, o.Expires)
	b = appendString(b, o.Source.Provider)
	b = appendString(b, o.Source.Path)
	b = appendVarint(b, o.Source.Offset)
	b = appendVarint(b, o.Source.Length)
	b = append(b, byte(o.State))
	b = appendUvarint(b, uint64(len(o.Stores)))
	for _, s := range o.Stores {
		b = appendString(b, s)
	}
	b = appendUvarint(b, uint64(o.Version))
	b = appendTime(b, o.Created)
	if o.Fingerprint != 0 {
		b = binary.BigEndian.AppendUint64(b, o.Fingerprint)
	}
	return b
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) raw(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errCorrupt
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	v := d.raw(d.uvarint())
	if len(v) == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}

func (d *decoder) string() string { return string(d.raw(d.uvarint())) }

func (d *decoder) time() time.Time {
	ns := d.varint()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func (d *decoder) byte() byte {
	v := d.raw(1)
	if v == nil {
		return 0
	}
	return v[0]
}

// decodeObject decodes a record; the result shares nothing with b.
func decodeObject(b []byte) (*fs.Object, error) {
	if len(b) == 0 || b[0] != codecV1 {
		return nil, fmt.Errorf("%w: unknown format", errCorrupt)
	}
	d := decoder{b: b[1:]}
	o := &fs.Object{}
	copy(o.ID[:], d.raw(16))
	o.Name = d.string()
	o.Size = d.varint()
	o.ModTime = d.time()
	o.ContentType = d.string()
	if n := d.uvarint(); n > 0 && d.err == nil {
		if n > uint64(len(d.b)) {
			return nil, errCorrupt
		}
		o.Meta = make(map[string]string, n)
		for i := uint64(0); i < n && d.err == nil; i++ {
			k := d.string()
			o.Meta[k] = d.string()
		}
	}
	o.MD5 = d.bytes()
	o.SHA256 = d.bytes()
	o.ETag = d.string()
	o.Expires = d.time()
	o.Source.Provider = d.string()
	o.Source.Path = d.string()
	o.Source.Offset = d.varint()
	o.Source.Length = d.varint()
	o.State = fs.State(d.byte())
	if n := d.uvarint(); n > 0 && d.err == nil {
		if n > uint64(len(d.b)) {
			return nil, errCorrupt
		}
		o.Stores = make([]string, n)
		for i := range o.Stores {
			o.Stores[i] = d.string()
		}
	}
	o.Version = uint32(d.uvarint())
	o.Created = d.time()
	if d.err == nil && len(d.b) > 0 {
		if v := d.raw(8); v != nil {
			o.Fingerprint = binary.BigEndian.Uint64(v)
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	return o, nil
}
