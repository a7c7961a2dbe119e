package index

import (
	"context"
	"errors"
	"testing"

	"github.com/datagate/datagate/fs"
)

func TestUpdateManyAllOrNothing(t *testing.T) {
	ctx := context.Background()
	derive := func(o *fs.Object) []Derived {
		return []Derived{{Key: []byte("p/" + o.Meta["dir"] + "/" + o.Name + "/" + o.ID.String())}}
	}
	ix := openTest(t, t.TempDir(), derive)
	defer ix.Close()
	var ids []fs.ID
	for _, n := range []string{"a", "b", "c"} {
		o := newObj(n, map[string]string{"dir": "old"})
		if err := ix.Insert(ctx, o); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, o.ID)
	}
	victim := newObj("v", map[string]string{"dir": "new"})
	if err := ix.Insert(ctx, victim); err != nil {
		t.Fatal(err)
	}
	keys := func() map[string]bool {
		m := map[string]bool{}
		ix.Derived(ctx, DerivedOptions{Prefix: []byte("p/")}, func(k, _ []byte) error { m[string(k[:len(k)-27])] = true; return nil })
		return m
	}
	// fn failing on the last object: nothing changes.
	boom := errors.New("boom")
	_, _, err := ix.UpdateMany(ctx, ids, func(o *fs.Object) error {
		if o.ID == ids[2] {
			return boom
		}
		o.Meta["dir"] = "new"
		return nil
	}, []fs.ID{victim.ID})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	if k := keys(); !k["p/old/a"] || !k["p/old/c"] || !k["p/new/v"] || len(k) != 4 {
		t.Fatalf("after a failed batch: %v", k)
	}
	// Success: every object moves and the victim goes, in one commit.
	sub := ix.Subscribe(16)
	defer sub.Close()
	up, del, err := ix.UpdateMany(ctx, ids, func(o *fs.Object) error { o.Meta["dir"] = "new"; return nil }, []fs.ID{victim.ID})
	if err != nil || len(up) != 3 || len(del) != 1 || del[0].ID != victim.ID {
		t.Fatalf("update many: %v %d %d", err, len(up), len(del))
	}
	if k := keys(); !k["p/new/a"] || !k["p/new/b"] || !k["p/new/c"] || len(k) != 3 {
		t.Fatalf("after the batch: %v", k)
	}
	if ch := <-sub.C; ch.Op != OpDelete || ch.Old.ID != victim.ID {
		t.Fatalf("first change: %+v", ch)
	}
	// Bad requests.
	if _, _, err := ix.UpdateMany(ctx, ids[:1], func(*fs.Object) error { return nil }, ids[:1]); fs.KindOf(err) != fs.Invalid {
		t.Fatalf("id in both lists: %v", err)
	}
	if _, _, err := ix.UpdateMany(ctx, []fs.ID{victim.ID}, func(*fs.Object) error { return nil }, nil); fs.KindOf(err) != fs.NotExist {
		t.Fatalf("missing id: %v", err)
	}
}
