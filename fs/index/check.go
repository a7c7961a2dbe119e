package index

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"

	"github.com/dgraph-io/badger/v4"

	"github.com/datagate/datagate/fs"
)

// ProblemKind classifies what Check finds.
type ProblemKind uint8

const (
	// BadRecord: an object record that does not decode, or whose id
	// disagrees with its key. Never repaired: the record is the only
	// description of the object (and of pushed content) there is.
	BadRecord ProblemKind = iota + 1
	// MissingKey: an object lacks one of the secondary or derived keys it
	// implies. Repair rewrites the object's keys.
	MissingKey
	// DanglingKey: a metadata posting, source key, expiry key or derived
	// key that no object implies. Repair deletes it.
	DanglingKey
	// UnknownKey: a key in the index's prefixes that has no valid shape.
	// Repair deletes it.
	UnknownKey
)

func (k ProblemKind) String() string {
	switch k {
	case BadRecord:
		return "bad record"
	case MissingKey:
		return "missing key"
	case DanglingKey:
		return "dangling key"
	case UnknownKey:
		return "malformed key"
	}
	return "problem"
}

// Problem is one inconsistency found by Check.
type Problem struct {
	Kind     ProblemKind
	ID       fs.ID  // the object concerned, when known
	Key      []byte // the raw Badger key concerned (a copy)
	Detail   string
	Repaired bool
}

func (p Problem) String() string {
	s := p.Kind.String()
	if p.ID != (fs.ID{}) {
		s += " " + p.ID.String()
	}
	return s + ": " + p.Detail + " (key " + FormatKey(p.Key) + ")"
}

// FormatKey shows a raw index key with its printable bytes as text.
func FormatKey(k []byte) string {
	var b bytes.Buffer
	for _, c := range k {
		if c >= 0x20 && c < 0x7f && c != '\\' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "\\x%02x", c)
		}
	}
	return b.String()
}

// CheckOptions configure Check.
type CheckOptions struct {
	// Repair fixes what can be fixed (see ProblemKind) as it goes.
	Repair bool
	// Progress, if set, is called now and then with the keys examined.
	Progress func(keys int64)
}

// Check walks the whole index and reports every inconsistency between the
// object records and their secondary keys: each record decodes; each
// object has every key it implies (metadata postings, source, expiry,
// derived); each secondary key is implied by an existing object. It is the
// one full scan in the index, for the operator's fsck: run it on a store
// nobody else writes to, or repairs may race with writers.
//
// Derived keys cannot be traced back to their object (their layout is the
// deriver's), so they are checked against a set of 64-bit hashes of every
// object's derived keys and values: memory is 8 bytes (plus map overhead)
// per derived key, and a hash collision can only hide a problem.
func (ix *Index) Check(ctx context.Context, opts CheckOptions, report func(Problem)) error {
	seed := maphash.MakeSeed()
	derived := make(map[uint64]struct{})
	var examined int64
	tick := func() {
		examined++
		if opts.Progress != nil && examined%10000 == 0 {
			opts.Progress(examined)
		}
	}
	var fixes fixer
	fixes.ix = ix
	emit := func(p Problem) error {
		if opts.Repair && p.Kind != BadRecord {
			if err := fixes.add(ctx, p); err != nil {
				return err
			}
			p.Repaired = true
		}
		report(p)
		return nil
	}
	// Pass 1: records, and the keys each implies.
	err := ix.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pObject}, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			tick()
			item := it.Item()
			key := item.KeyCopy(nil)
			var id fs.ID
			if len(key) != 17 {
				if err := emit(Problem{Kind: UnknownKey, Key: key, Detail: "object key of the wrong length"}); err != nil {
					return err
				}
				continue
			}
			copy(id[:], key[1:])
			var o *fs.Object
			err := item.Value(func(v []byte) error {
				var derr error
				o, derr = decodeObject(v)
				return derr
			})
			if err == nil && o.ID != id {
				err = fmt.Errorf("record holds id %s", o.ID)
			}
			if err != nil {
				if err := emit(Problem{Kind: BadRecord, ID: id, Key: key, Detail: err.Error()}); err != nil {
					return err
				}
				continue
			}
			var missing []string
			need := func(k []byte, what string) error {
				_, err := txn.Get(k)
				if errors.Is(err, badger.ErrKeyNotFound) {
					missing = append(missing, what)
					return nil
				}
				return err
			}
			for k, v := range o.Meta {
				if err := need(append(metaPrefix(k, v), id[:]...), "metadata "+k); err != nil {
					return err
				}
			}
			if !o.Source.IsZero() {
				if err := need(sourceKey(o.Source), "source"); err != nil {
					return err
				}
			}
			if !o.Expires.IsZero() {
				if err := need(expiryKey(o.Expires, id), "expiry"); err != nil {
					return err
				}
			}
			for _, d := range ix.derive(o) {
				dk := derivedKey(d.Key)
				derived[hashKV(seed, dk, d.Value)] = struct{}{}
				item, err := txn.Get(dk)
				if errors.Is(err, badger.ErrKeyNotFound) {
					missing = append(missing, "derived "+FormatKey(d.Key))
					continue
				}
				if err != nil {
					return err
				}
				if v, err := item.ValueCopy(nil); err != nil {
					return err
				} else if !bytes.Equal(v, d.Value) {
					missing = append(missing, "derived "+FormatKey(d.Key)+" (wrong value)")
				}
			}
			if len(missing) > 0 {
				if err := emit(Problem{Kind: MissingKey, ID: id, Key: key, Detail: fmt.Sprintf("lacks %v", missing)}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fs.E(fs.Other, "check index", "", err)
	}
	if err := fixes.flush(ctx); err != nil {
		return err
	}
	// Pass 2: every secondary key must be implied by an existing object.
	err = ix.db.View(func(txn *badger.Txn) error {
		for _, p := range []byte{pMeta, pSource, pExpiry, pDerived} {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{p}, PrefetchValues: p == pSource || p == pDerived})
			for it.Rewind(); it.Valid(); it.Next() {
				if err := ctx.Err(); err != nil {
					it.Close()
					return err
				}
				tick()
				item := it.Item()
				key := item.KeyCopy(nil)
				var val []byte
				if p == pSource || p == pDerived {
					var err error
					if val, err = item.ValueCopy(nil); err != nil {
						it.Close()
						return err
					}
				}
				prob := ix.checkSecondary(txn, key, val, seed, derived)
				if prob != nil {
					if err := emit(*prob); err != nil {
						it.Close()
						return err
					}
				}
			}
			it.Close()
		}
		return nil
	})
	if err != nil {
		return fs.E(fs.Other, "check index", "", err)
	}
	if err := fixes.flush(ctx); err != nil {
		return err
	}
	if opts.Progress != nil {
		opts.Progress(examined)
	}
	return nil
}

func hashKV(seed maphash.Seed, k, v []byte) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	binary.Write(&h, binary.BigEndian, uint32(len(k)))
	h.Write(k)
	h.Write(v)
	return h.Sum64()
}

// checkSecondary judges one secondary key; nil means it is sound.
func (ix *Index) checkSecondary(txn *badger.Txn, key, val []byte, seed maphash.Seed, derived map[uint64]struct{}) *Problem {
	dangling := func(id fs.ID, detail string) *Problem {
		return &Problem{Kind: DanglingKey, ID: id, Key: key, Detail: detail}
	}
	owner := func(id fs.ID) (*fs.Object, *Problem) {
		o, err := getObject(txn, id)
		if err != nil {
			return nil, dangling(id, "no readable object with this id")
		}
		return o, nil
	}
	switch key[0] {
	case pMeta:
		// key 0 value 0 id: the key holds no NUL, the value none either.
		if len(key) < 1+2+16 {
			return &Problem{Kind: UnknownKey, Key: key, Detail: "metadata posting too short"}
		}
		var id fs.ID
		copy(id[:], key[len(key)-16:])
		body := key[1 : len(key)-16]
		k, v, ok := bytes.Cut(body, []byte{0})
		if !ok || len(v) == 0 || v[len(v)-1] != 0 {
			return &Problem{Kind: UnknownKey, ID: id, Key: key, Detail: "malformed metadata posting"}
		}
		v = v[:len(v)-1]
		o, p := owner(id)
		if p != nil {
			return p
		}
		if got, ok := o.Meta[string(k)]; !ok || got != string(v) {
			return dangling(id, fmt.Sprintf("posting %s=%q, but the object has %s=%q", k, v, k, got))
		}
	case pSource:
		if len(val) != 16 {
			return &Problem{Kind: UnknownKey, Key: key, Detail: "source key without a 16-byte id"}
		}
		var id fs.ID
		copy(id[:], val)
		o, p := owner(id)
		if p != nil {
			return p
		}
		if !bytes.Equal(sourceKey(o.Source), key) {
			return dangling(id, fmt.Sprintf("source key, but the object's source is %s:%s", o.Source.Provider, o.Source.Path))
		}
	case pExpiry:
		if len(key) != 25 {
			return &Problem{Kind: UnknownKey, Key: key, Detail: "expiry key of the wrong length"}
		}
		var id fs.ID
		copy(id[:], key[9:])
		o, p := owner(id)
		if p != nil {
			return p
		}
		if o.Expires.IsZero() || !bytes.Equal(expiryKey(o.Expires, id), key) {
			return dangling(id, fmt.Sprintf("expiry key, but the object expires at %v", o.Expires))
		}
	case pDerived:
		if _, ok := derived[hashKV(seed, key, val)]; !ok {
			detail := "derived key no object implies"
			if len(val) > 0 {
				detail += " (value " + hex.EncodeToString(val[:min(len(val), 32)]) + ")"
			}
			return &Problem{Kind: DanglingKey, Key: key, Detail: detail}
		}
	}
	return nil
}

// fixer batches repairs into bounded transactions.
type fixer struct {
	ix      *Index
	deletes [][]byte
	rekey   []fs.ID
}

func (f *fixer) add(ctx context.Context, p Problem) error {
	switch p.Kind {
	case MissingKey:
		f.rekey = append(f.rekey, p.ID)
	case DanglingKey, UnknownKey:
		f.deletes = append(f.deletes, p.Key)
	}
	if len(f.deletes)+len(f.rekey) >= 1000 {
		return f.flush(ctx)
	}
	return nil
}

// flush applies the pending repairs. A missing key is repaired by writing
// every key of the object's current record again (idempotent).
func (f *fixer) flush(ctx context.Context) error {
	if len(f.deletes)+len(f.rekey) == 0 {
		return nil
	}
	err := f.ix.update(ctx, "repair index", durable, func(txn *badger.Txn) ([]Change, error) {
		for _, k := range f.deletes {
			if err := txn.Delete(k); err != nil {
				return nil, err
			}
		}
		for _, id := range f.rekey {
			o, err := getObject(txn, id)
			if fs.KindOf(err) == fs.NotExist {
				continue
			}
			if err != nil {
				return nil, err
			}
			if err := f.ix.putKeys(txn, o); err != nil {
				return nil, err
			}
		}
		return nil, nil
	})
	f.deletes, f.rekey = f.deletes[:0], f.rekey[:0]
	return err
}

// Walk calls fn for every object in id order, starting after after (zero:
// from the first). It is a full scan, for operator commands (verify,
// fsck); request paths use Find. Records that do not decode are skipped
// (Check reports them). Returning ErrStop ends the walk without error.
func (ix *Index) Walk(ctx context.Context, after fs.ID, fn func(*fs.Object) error) error {
	err := ix.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pObject}, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		start := objectKey(after)
		for it.Seek(start); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			item := it.Item()
			if after != (fs.ID{}) && bytes.Equal(item.Key(), start) {
				continue
			}
			var o *fs.Object
			if err := item.Value(func(v []byte) error {
				var derr error
				o, derr = decodeObject(v)
				return derr
			}); err != nil {
				continue
			}
			if err := fn(o); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, ErrStop) {
		return nil
	}
	return err
}
