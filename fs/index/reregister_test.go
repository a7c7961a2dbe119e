package index

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/datagate/datagate/fs"
)

// reregFixture is an index whose deriver files objects at
// "param/name", like a view, and a subscription to its change feed.
type reregFixture struct {
	t   *testing.T
	ctx context.Context
	ix  *Index
	sub *Subscription
}

func newReregFixture(t *testing.T) *reregFixture {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	ix := openTest(t, t.TempDir(), func(o *fs.Object) []Derived {
		return []Derived{{Key: fmt.Appendf(nil, "v/%s/%s", o.Meta["param"], o.Name), Value: o.ID[:]}}
	})
	t.Cleanup(func() { ix.Close() })
	return &reregFixture{t: t, ctx: ctx, ix: ix, sub: ix.Subscribe(64)}
}

// record is what a producer registers at source "p:f.grib".
func record(name, param, etag string) *fs.Object {
	return &fs.Object{ID: gen.New(time.Now()), Name: name, Size: 10, ETag: etag,
		Meta:   map[string]string{"param": param},
		Source: fs.Location{Provider: "p", Path: "f.grib"}, Created: time.Now().UTC()}
}

func (f *reregFixture) register(o *fs.Object, want Outcome) *fs.Object {
	f.t.Helper()
	out, err := f.ix.Register(f.ctx, []*fs.Object{o})
	if err != nil {
		f.t.Fatal(err)
	}
	if out[0] != want {
		f.t.Fatalf("register %s %v: %v, want %v", o.Name, o.Meta, out[0], want)
	}
	got, err := f.ix.Get(f.ctx, o.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return got
}

// paths lists the derived keys: where the object is in the "view".
func (f *reregFixture) paths() string {
	f.t.Helper()
	var b bytes.Buffer
	err := f.ix.DB().View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pDerived}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			fmt.Fprintf(&b, "%s ", it.Item().Key()[1:])
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return b.String()
}

// lastChange returns the last change published so far (nil: none).
func (f *reregFixture) lastChange() *Change {
	var last *Change
	for {
		select {
		case c := <-f.sub.C:
			last = &c
		case <-time.After(100 * time.Millisecond):
			return last
		}
	}
}

// A producer's corrected record moves the object, keeping its content; a
// re-registration of the record registered last leaves a renamed object
// where the user put it, even when the content changed.
func TestReregisterCorrectionsAndRenames(t *testing.T) {
	f := newReregFixture(t)
	o := f.register(record("f.grib", "t2m", "e1"), Added)
	f.lastChange()
	// The content was fetched meanwhile: state, copies and checksums.
	sum := bytes.Repeat([]byte{7}, 32)
	if _, err := f.ix.Update(f.ctx, o.ID, func(o *fs.Object) error {
		o.State, o.Stores, o.SHA256 = fs.StateStored, []string{"s1"}, sum
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.register(record("f.grib", "t2m", "e1"), Unchanged)

	// The producer corrects the param: the object moves, its content stays.
	got := f.register(record("f.grib", "2t", "e1"), Updated)
	if got.Meta["param"] != "2t" || got.Version != 0 || got.State != fs.StateStored ||
		len(got.Stores) != 1 || !bytes.Equal(got.SHA256, sum) {
		t.Fatalf("after a corrected record: %+v", got)
	}
	if p := f.paths(); p != "v/2t/f.grib " {
		t.Fatalf("paths after the correction: %q", p)
	}
	if c := f.lastChange(); c == nil || c.Old == nil || c.Old.Meta["param"] != "t2m" || c.New.Meta["param"] != "2t" {
		t.Fatalf("change feed after the correction: %+v", c)
	}
	f.register(record("f.grib", "2t", "e1"), Unchanged)

	// A user renames it (a FUSE mv); re-crawls of the same record leave it.
	if _, err := f.ix.Update(f.ctx, o.ID, func(o *fs.Object) error {
		o.Name, o.Meta = "mine.grib", map[string]string{"param": "moved"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.lastChange()
	got = f.register(record("f.grib", "2t", "e1"), Unchanged)
	if got.Name != "mine.grib" || got.Meta["param"] != "moved" {
		t.Fatalf("a re-crawl undid a rename: %+v", got)
	}
	if c := f.lastChange(); c != nil {
		t.Fatalf("an unchanged re-registration published %+v", c)
	}
	// The content changes: a new version, the rename stays.
	got = f.register(record("f.grib", "2t", "e2"), Updated)
	if got.Name != "mine.grib" || got.Meta["param"] != "moved" || got.Version != 1 ||
		got.State != fs.StateRegistered || got.Stores != nil || got.ETag != "e2" {
		t.Fatalf("after a content change: %+v", got)
	}
	if p := f.paths(); p != "v/moved/mine.grib " {
		t.Fatalf("paths after the content change: %q", p)
	}
	// Both change: the record wins.
	got = f.register(record("g.grib", "msl", "e3"), Updated)
	if got.Name != "g.grib" || got.Meta["param"] != "msl" || got.Version != 2 || got.ETag != "e3" {
		t.Fatalf("after a changed record and content: %+v", got)
	}
	if p := f.paths(); p != "v/msl/g.grib " {
		t.Fatalf("paths: %q", p)
	}
	f.register(record("g.grib", "msl", "e3"), Unchanged)
}

// An object catalogued before fingerprints were kept (renamed, or with a
// record now corrected: one cannot tell) keeps its fields when a record
// describes it otherwise, and records nothing; a record describing it
// as it is records the fingerprint, after which a correction applies.
func TestReregisterLegacyObject(t *testing.T) {
	f := newReregFixture(t)
	legacy := record("renamed.grib", "moved", "e1")
	if err := f.ix.Insert(f.ctx, legacy); err != nil { // no fingerprint
		t.Fatal(err)
	}
	f.lastChange()
	got := f.register(record("f.grib", "t2m", "e1"), Unchanged)
	if got.Name != "renamed.grib" || got.Meta["param"] != "moved" || got.Fingerprint != 0 {
		t.Fatalf("a legacy object described otherwise: %+v", got)
	}
	got = f.register(record("renamed.grib", "moved", "e1"), Unchanged)
	if got.Fingerprint == 0 {
		t.Fatalf("a legacy object described as it is: no fingerprint recorded: %+v", got)
	}
	if c := f.lastChange(); c != nil {
		t.Fatalf("recording a fingerprint published %+v", c)
	}
	got = f.register(record("f.grib", "2t", "e1"), Updated)
	if got.Name != "f.grib" || got.Meta["param"] != "2t" {
		t.Fatalf("a correction once the fingerprint is known: %+v", got)
	}

	// A legacy object whose content changed: a new version, fields kept.
	old := record("kept.grib", "moved", "e1")
	old.Source.Path = "g.grib"
	if err := f.ix.Insert(f.ctx, old); err != nil {
		t.Fatal(err)
	}
	r := record("g.grib", "t2m", "e2")
	r.Source.Path = "g.grib"
	got = f.register(r, Updated)
	if got.Name != "kept.grib" || got.Meta["param"] != "moved" || got.Version != 1 || got.ETag != "e2" || got.Fingerprint != 0 {
		t.Fatalf("legacy object described otherwise, content changed: %+v", got)
	}
	r = record("kept.grib", "moved", "e3")
	r.Source.Path = "g.grib"
	got = f.register(r, Updated)
	if got.Version != 2 || got.Fingerprint == 0 {
		t.Fatalf("legacy object described as it is, content changed: %+v", got)
	}
}

// A record's fingerprint is its own, as given: the index does not
// replace it (the store sets it before filling in a default expiry).
func TestReregisterKeepsGivenFingerprint(t *testing.T) {
	f := newReregFixture(t)
	r := record("f.grib", "t2m", "e1")
	r.Fingerprint = Fingerprint(r)
	r.Expires = time.Now().Add(time.Hour).UTC() // from retention
	f.register(r, Added)
	r = record("f.grib", "t2m", "e1")
	r.Fingerprint = Fingerprint(r)
	r.Expires = time.Now().Add(2 * time.Hour).UTC()
	f.register(r, Unchanged)
}

func TestFingerprint(t *testing.T) {
	base := func() *fs.Object {
		return &fs.Object{Name: "a", ContentType: "x/y", Meta: map[string]string{"k": "v", "l": "w"},
			Expires: time.Unix(100, 0), Size: 5, ETag: "e", State: fs.StateCached, Version: 3}
	}
	fp := Fingerprint(base())
	for i, change := range []func(o *fs.Object){
		func(o *fs.Object) { o.Name = "b" },
		func(o *fs.Object) { o.ContentType = "" },
		func(o *fs.Object) { o.Meta["k"] = "v2" },
		func(o *fs.Object) { o.Meta["m"] = "" },
		func(o *fs.Object) { delete(o.Meta, "l") },
		func(o *fs.Object) { o.Meta = map[string]string{"k": "vl", "": "w"} },
		func(o *fs.Object) { o.Meta = map[string]string{"kv": "", "l": "w"} },
		func(o *fs.Object) { o.Expires = time.Time{} },
		func(o *fs.Object) { o.Expires = time.Unix(100, 1) },
	} {
		o := base()
		change(o)
		if Fingerprint(o) == fp {
			t.Errorf("change %d keeps the fingerprint", i)
		}
	}
	for i, change := range []func(o *fs.Object){
		func(o *fs.Object) { o.Size, o.ETag, o.State, o.Version = 6, "f", 0, 4 },
		func(o *fs.Object) { o.Expires = o.Expires.In(time.FixedZone("x", 3600)) },
	} {
		o := base()
		change(o)
		if Fingerprint(o) != fp {
			t.Errorf("non-descriptive change %d changes the fingerprint", i)
		}
	}
}

// The fingerprint is added at the end of a record, only when set: records
// without it keep their bytes and decode with 0; a record cut inside it
// is corrupt.
func TestCodecFingerprint(t *testing.T) {
	o := record("f", "t2m", "e")
	plain := encodeObject(nil, o)
	o.Fingerprint = 0x0102030405060708
	with := encodeObject(nil, o)
	if !bytes.Equal(with[:len(plain)], plain) || !bytes.Equal(with[len(plain):], binary.BigEndian.AppendUint64(nil, o.Fingerprint)) {
		t.Fatalf("fingerprint not appended: %x / %x", plain, with)
	}
	if got, err := decodeObject(plain); err != nil || got.Fingerprint != 0 {
		t.Fatalf("record without a fingerprint: %v %v", got, err)
	}
	if got, err := decodeObject(with); err != nil || got.Fingerprint != o.Fingerprint {
		t.Fatalf("record with a fingerprint: %v %v", got, err)
	}
	if _, err := decodeObject(with[:len(with)-3]); err == nil {
		t.Fatal("a record cut inside its fingerprint decoded")
	}
}

// BenchmarkFingerprint: the cost Register adds per record (a record of
// the Register1M benchmark's shape).
func BenchmarkFingerprint(b *testing.B) {
	o := &fs.Object{Name: "file-123.grib", ContentType: "application/x-grib",
		Meta: map[string]string{"date": "2026-11-22", "type": "fc", "param": "t2m", "step": "12"}}
	b.ReportAllocs()
	for b.Loop() {
		Fingerprint(o)
	}
}
