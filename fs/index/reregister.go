package index

import (
	"bytes"
	"maps"

	"github.com/dgraph-io/badger/v4"

	"github.com/datagate/datagate/fs"
)

// Re-registration: a record whose source is already registered.
//
// What a record says falls in two parts. Its source fields (size, mtime,
// etag, checksums) describe the content: when they differ, the content
// changed and gets a new version. Its descriptive fields (name,
// metadata, content type, expiry) place the object in the views — and
// users move objects through the front-ends (a FUSE mv, a WebDAV MOVE,
// an admin PATCH), which changes those fields. A scheduled crawl
// re-registers the same records every few minutes and must not move such
// an object back; a producer who corrects a record (another param, a
// corrected path template) must see the correction applied. Comparing
// the record with the object as it is now cannot tell the two apart, so
// the object keeps the fingerprint of the descriptive fields it was
// last registered with (fs.Object.Fingerprint), and a record is compared
// with that:
//
//   - same fingerprint, same source: Unchanged, nothing is written;
//   - another fingerprint, same source: Updated, the descriptive fields
//     are the record's (the object moves in the views); the content, its
//     version, state, copies and checksums stay;
//   - another source: Updated, a new version whose content state is
//     reset; the descriptive fields are the record's when the
//     fingerprint differs, and stay as they are (renames included) when
//     it is the same, but for the expiry, the record's (new content
//     starts a new retention, as before fingerprints were kept).
//
// Objects registered before fingerprints were kept have none (0). When a
// record describes one otherwise than it is now, one cannot tell whether
// a user renamed it or the record is a correction; moving renamed
// objects back on the first scheduled crawl after an upgrade would be
// the worse mistake, so such a record leaves the object's descriptive
// fields as they are and records nothing (Unchanged, or a new version
// of the content when the source changed, the expiry the record's). A
// record that describes it as it is (same name, metadata and content
// type; the expiry is not compared, as retention gives a new one each
// time) records its fingerprint: one write, Unchanged. So a correction
// reaches a legacy object once it was re-registered as it was — which
// the scheduled crawls of an unchanged `acquire:` entry do by
// themselves — and a renamed legacy object keeps its place for good.

// Fingerprint returns the fingerprint of o's descriptive fields: name,
// metadata, content type and expiry, as set (never 0). Callers that fill
// in derived fields before Register (a default expiry from retention)
// set o.Fingerprint from the record as given first, so that the
// derived values, which change with the time of registration, do not
// make every re-registration look like a correction.
func Fingerprint(o *fs.Object) uint64 {
	h := fnvString(fnvOffset, o.Name)
	h = fnvString(h, o.ContentType)
	var exp uint64
	if !o.Expires.IsZero() {
		exp = uint64(o.Expires.UnixNano())
	}
	h = fnvUint(h, exp)
	// Map order is random: sum the pairs' mixed hashes rather than sort.
	var meta uint64
	for k, v := range o.Meta {
		meta += mix64(fnvString(fnvString(fnvOffset, k), v))
	}
	h = fnvUint(fnvUint(h, uint64(len(o.Meta))), meta)
	if h = mix64(h); h == 0 {
		h = 1
	}
	return h
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvUint(h, v uint64) uint64 {
	for range 8 {
		h = (h ^ (v & 0xff)) * fnvPrime
		v >>= 8
	}
	return h
}

// fnvString hashes s after its length, so that ("ab","c") and ("a","bc")
// differ.
func fnvString(h uint64, s string) uint64 {
	h = fnvUint(h, uint64(len(s)))
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return h
}

// mix64 is SplitMix64's finaliser: FNV's low bits mix poorly, and the
// metadata pairs are summed.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// sameSource reports whether a re-registration describes the content old
// already has (fields the new record leaves unset are not compared).
func sameSource(old, new *fs.Object) bool {
	if new.Size >= 0 && new.Size != old.Size {
		return false
	}
	if !new.ModTime.IsZero() && !new.ModTime.Equal(old.ModTime) {
		return false
	}
	if new.ETag != "" && new.ETag != old.ETag {
		return false
	}
	if len(new.SHA256) > 0 && !bytes.Equal(new.SHA256, old.SHA256) {
		return false
	}
	if len(new.MD5) > 0 && !bytes.Equal(new.MD5, old.MD5) {
		return false
	}
	return true
}

// reregister applies record o (its Fingerprint set) to old, the object
// registered at its source, in txn, as the comment above says. It sets
// o's ID, and its Version when the content got a new one (the store
// drops the previous version's cache then), and leaves its other fields
// as the record gave them (a transaction that conflicts runs
// again with the same records). It returns the change to publish, if
// any.
func (ix *Index) reregister(txn *badger.Txn, old, o *fs.Object) (Outcome, *Change, error) {
	fp := o.Fingerprint
	o.ID = old.ID
	same := sameSource(old, o)
	var n *fs.Object
	switch {
	case same && old.Fingerprint == fp:
		return Unchanged, nil, nil
	case same && old.Fingerprint == 0:
		if !describesAsIs(o, old) {
			return Unchanged, nil, nil
		}
		n = old.Clone()
		n.Fingerprint = fp
		return Unchanged, nil, txn.Set(objectKey(n.ID), encodeObject(nil, n))
	case same:
		n = old.Clone()
		n.Name, n.Meta, n.ContentType, n.Expires = o.Name, maps.Clone(o.Meta), o.ContentType, o.Expires
		n.Fingerprint = fp
	default:
		n = o.Clone()
		n.Version = old.Version + 1
		o.Version = n.Version
		n.State = fs.StateRegistered
		n.Stores = nil
		switch {
		case old.Fingerprint == 0 && !describesAsIs(o, old):
			n.Fingerprint = 0 // still unknown
			fallthrough
		case old.Fingerprint == fp || old.Fingerprint == 0:
			n.Name, n.Meta, n.ContentType = old.Name, maps.Clone(old.Meta), old.ContentType
		}
	}
	if err := ix.replaceKeys(txn, old, n); err != nil {
		return 0, nil, err
	}
	return Updated, &Change{Op: OpPut, Old: old, New: n}, nil
}

// describesAsIs reports whether record o gives old's name, metadata and
// content type (for objects without a fingerprint).
func describesAsIs(o, old *fs.Object) bool {
	return o.Name == old.Name && o.ContentType == old.ContentType && maps.Equal(o.Meta, old.Meta)
}
