package index

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/datagate/datagate/fs"
)

var gen = fs.NewIDGen()

func newObj(name string, meta map[string]string) *fs.Object {
	return &fs.Object{ID: gen.New(time.Now()), Name: name, Size: 10, Meta: meta,
		ModTime: time.Unix(1700000000, 0).UTC(), Created: time.Now().UTC()}
}

func openTest(t *testing.T, dir string, derive Deriver) *Index {
	t.Helper()
	ix, err := Open(Options{Dir: dir, Derive: derive})
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestCodecRoundTrip(t *testing.T) {
	o := &fs.Object{ID: gen.New(time.Now()), Name: "synop.bufr", Size: 1234, ModTime: time.Unix(1, 5).UTC(),
		ContentType: "application/x-bufr", Meta: map[string]string{"date": "2026-11-22", "type": "obs"},
		MD5: make([]byte, 16), SHA256: make([]byte, 32), ETag: "abc", Expires: time.Unix(99, 0).UTC(),
		Source: fs.Location{Provider: "disk", Path: "a/b", Offset: 10, Length: 20}, State: fs.StateCached,
		Stores: []string{"s1", "s2"}, Version: 3, Created: time.Unix(5, 0).UTC()}
	got, err := decodeObject(encodeObject(nil, o))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, o) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, o)
	}
	if _, err := decodeObject(encodeObject(nil, o)[:20]); err == nil {
		t.Fatal("truncated record decoded without error")
	}
}

func TestInsertGetDeleteDurable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ix := openTest(t, dir, nil)
	o := newObj("a", map[string]string{"k": "v"})
	if err := ix.Insert(ctx, o); err != nil {
		t.Fatal(err)
	}
	if err := ix.Insert(ctx, o); fs.KindOf(err) != fs.Exist {
		t.Fatalf("second insert: %v, want Exist", err)
	}
	ix.Close()
	ix = openTest(t, dir, nil)
	defer ix.Close()
	got, err := ix.Get(ctx, o.ID)
	if err != nil || got.Name != "a" || got.Meta["k"] != "v" {
		t.Fatalf("after reopen: %+v %v", got, err)
	}
	if _, err := ix.Delete(ctx, o.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ix.Get(ctx, o.ID); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("get after delete: %v", err)
	}
	n := 0
	ix.Find(ctx, []Cond{{"k", "v"}}, FindOptions{}, func(*fs.Object) error { n++; return nil })
	if n != 0 {
		t.Fatalf("posting survived delete: %d hits", n)
	}
}

func TestSecondOpenIsRefused(t *testing.T) {
	dir := t.TempDir()
	ix := openTest(t, dir, nil)
	defer ix.Close()
	if _, err := Open(Options{Dir: dir}); err == nil {
		t.Fatal("second Open of one directory succeeded")
	}
}

func TestBatchIsAtomic(t *testing.T) {
	ctx := context.Background()
	ix := openTest(t, t.TempDir(), nil)
	defer ix.Close()
	good := newObj("good", map[string]string{"batch": "1"})
	bad := newObj("bad", map[string]string{"batch": "1", "x": "nul\x00"})
	if _, err := ix.Register(ctx, []*fs.Object{good, bad}); fs.KindOf(err) != fs.Invalid {
		t.Fatalf("register with a bad record: %v, want Invalid", err)
	}
	if _, err := ix.Get(ctx, good.ID); fs.KindOf(err) != fs.NotExist {
		t.Fatalf("half a batch applied: %v", err)
	}
}

func TestRegisterIdempotent(t *testing.T) {
	ctx := context.Background()
	ix := openTest(t, t.TempDir(), nil)
	defer ix.Close()
	mk := func(size int64, etag string) *fs.Object {
		o := newObj("f", map[string]string{"t": "x"})
		o.Size, o.ETag = size, etag
		o.Source = fs.Location{Provider: "p", Path: "dir/f", Offset: 100, Length: 10}
		return o
	}
	first := mk(10, "e1")
	out, err := ix.Register(ctx, []*fs.Object{first})
	if err != nil || out[0] != Added {
		t.Fatalf("first: %v %v", out, err)
	}
	again := mk(10, "e1")
	out, err = ix.Register(ctx, []*fs.Object{again})
	if err != nil || out[0] != Unchanged || again.ID != first.ID {
		t.Fatalf("again: %v %v id %v want %v", out, err, again.ID, first.ID)
	}
	changed := mk(10, "e2")
	out, err = ix.Register(ctx, []*fs.Object{changed})
	if err != nil || out[0] != Updated || changed.ID != first.ID {
		t.Fatalf("changed: %v %v", out, err)
	}
	got, _ := ix.Get(ctx, first.ID)
	if got.Version != 1 || got.ETag != "e2" {
		t.Fatalf("after update: version %d etag %q", got.Version, got.ETag)
	}
	// Another range of the same file is another object.
	other := mk(10, "e2")
	other.Source.Offset = 200
	if out, _ := ix.Register(ctx, []*fs.Object{other}); out[0] != Added {
		t.Fatalf("other range: %v", out)
	}
	// Duplicates inside one batch collapse too.
	d1, d2 := mk(5, "z"), mk(5, "z")
	d1.Source.Path, d2.Source.Path = "dup", "dup"
	out, err = ix.Register(ctx, []*fs.Object{d1, d2})
	if err != nil || out[0] != Added || out[1] != Unchanged {
		t.Fatalf("dups in a batch: %v %v", out, err)
	}
}

func TestFindAndPaging(t *testing.T) {
	ctx := context.Background()
	ix := openTest(t, t.TempDir(), nil)
	defer ix.Close()
	var want []fs.ID
	for i := 0; i < 300; i++ {
		m := map[string]string{"type": []string{"obs", "fc", "an"}[i%3], "step": fmt.Sprint(i % 5)}
		o := newObj(fmt.Sprint(i), m)
		if err := ix.Insert(ctx, o); err != nil {
			t.Fatal(err)
		}
		if i%3 == 1 && i%5 == 2 {
			want = append(want, o.ID)
		}
	}
	var got []fs.ID
	err := ix.Find(ctx, []Cond{{"type", "fc"}, {"step", "2"}}, FindOptions{}, func(o *fs.Object) error {
		got = append(got, o.ID)
		return nil
	})
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("find: %d results %v, want %d", len(got), err, len(want))
	}
	// Page through 7 at a time.
	var paged []fs.ID
	after := fs.ID{}
	for {
		var page []fs.ID
		ix.Find(ctx, []Cond{{"step", "2"}, {"type", "fc"}}, FindOptions{After: after, Limit: 7}, func(o *fs.Object) error {
			page = append(page, o.ID)
			return nil
		})
		paged = append(paged, page...)
		if len(page) < 7 {
			break
		}
		after = page[len(page)-1]
	}
	if !reflect.DeepEqual(paged, want) {
		t.Fatalf("paged find: %d results, want %d", len(paged), len(want))
	}
	// Single-condition paging (its own fast path).
	var all, pagedOne []fs.ID
	ix.Find(ctx, []Cond{{"step", "3"}}, FindOptions{}, func(o *fs.Object) error { all = append(all, o.ID); return nil })
	for after := (fs.ID{}); ; {
		var page []fs.ID
		ix.Find(ctx, []Cond{{"step", "3"}}, FindOptions{After: after, Limit: 11}, func(o *fs.Object) error { page = append(page, o.ID); return nil })
		pagedOne = append(pagedOne, page...)
		if len(page) < 11 {
			break
		}
		after = page[len(page)-1]
	}
	if len(all) != 60 || !reflect.DeepEqual(all, pagedOne) {
		t.Fatalf("single-condition paging: %d vs %d", len(all), len(pagedOne))
	}
	n := 0
	ix.Find(ctx, []Cond{{"type", "none"}}, FindOptions{}, func(*fs.Object) error { n++; return nil })
	if n != 0 {
		t.Fatal("find of an absent value returned objects")
	}
}

func TestDerivedKeysFollowObjects(t *testing.T) {
	ctx := context.Background()
	derive := func(o *fs.Object) []Derived {
		if o.Meta["date"] == "" {
			return nil
		}
		return []Derived{{Key: []byte("p/" + o.Meta["date"] + "/" + o.Name), Value: o.ID[:]}}
	}
	ix := openTest(t, t.TempDir(), derive)
	defer ix.Close()
	list := func() []string {
		var out []string
		ix.Derived(ctx, DerivedOptions{Prefix: []byte("p/")}, func(k, v []byte) error {
			out = append(out, string(k))
			return nil
		})
		return out
	}
	o := newObj("x", map[string]string{"date": "d1"})
	ix.Insert(ctx, o)
	if got := list(); !reflect.DeepEqual(got, []string{"p/d1/x"}) {
		t.Fatalf("after insert %v", got)
	}
	ix.Update(ctx, o.ID, func(o *fs.Object) error { o.Meta["date"] = "d2"; return nil })
	if got := list(); !reflect.DeepEqual(got, []string{"p/d2/x"}) {
		t.Fatalf("after update %v", got)
	}
	o2 := newObj("y", map[string]string{"date": "d1"})
	ix.Insert(ctx, o2)
	var rev []string
	ix.Derived(ctx, DerivedOptions{Prefix: []byte("p/"), Reverse: true}, func(k, v []byte) error {
		rev = append(rev, string(k))
		return nil
	})
	if !reflect.DeepEqual(rev, []string{"p/d2/x", "p/d1/y"}) {
		t.Fatalf("reverse %v", rev)
	}
	ix.Delete(ctx, o.ID, o2.ID)
	if got := list(); len(got) != 0 {
		t.Fatalf("after delete %v", got)
	}
}

func TestExpiringAndFeed(t *testing.T) {
	ctx := context.Background()
	ix := openTest(t, t.TempDir(), nil)
	defer ix.Close()
	sub := ix.Subscribe(16)
	now := time.Now().UTC()
	early := newObj("early", nil)
	early.Expires = now.Add(-time.Hour)
	late := newObj("late", nil)
	late.Expires = now.Add(time.Hour)
	if err := ix.Insert(ctx, early, late); err != nil {
		t.Fatal(err)
	}
	var got []string
	ix.Expiring(ctx, now, func(id fs.ID, at time.Time) error {
		o, _ := ix.Get(ctx, id)
		got = append(got, o.Name)
		return nil
	})
	if !reflect.DeepEqual(got, []string{"early"}) {
		t.Fatalf("expiring: %v", got)
	}
	for _, want := range []string{"early", "late"} {
		select {
		case c := <-sub.C:
			if c.Op != OpPut || c.New.Name != want {
				t.Fatalf("feed: %+v, want put %s", c, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no change published")
		}
	}
	// Overflow: a subscriber that does not read gets told.
	for i := 0; i < 40; i++ {
		ix.Insert(ctx, newObj("n", nil))
	}
	var sawOverflow bool
	for i := 0; i < 16; i++ {
		if (<-sub.C).Op == OpOverflow {
			sawOverflow = true
		}
	}
	ix.Insert(ctx, newObj("after", nil))
	if c := <-sub.C; c.Op == OpOverflow {
		sawOverflow = true
	}
	if !sawOverflow {
		t.Fatal("no overflow reported to a slow subscriber")
	}
	sub.Close()
}

func TestValidate(t *testing.T) {
	ctx := context.Background()
	ix := openTest(t, t.TempDir(), nil)
	defer ix.Close()
	for _, m := range []map[string]string{{"": "v"}, {strings.Repeat("k", 200): "v"}, {"k": strings.Repeat("v", 5000)}, {"k\x00": "v"}} {
		if err := ix.Insert(ctx, newObj("x", m)); fs.KindOf(err) != fs.Invalid {
			t.Errorf("insert with meta %.30q: %v, want Invalid", fmt.Sprint(m), err)
		}
	}
}
