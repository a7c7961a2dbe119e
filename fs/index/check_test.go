package index

import (
	"context"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/datagate/datagate/fs"
)

// Every kind of inconsistency is found, the repairable ones are repaired,
// and a second run finds only what cannot be repaired.
func TestCheckFindsAndRepairs(t *testing.T) {
	ctx := context.Background()
	derive := func(o *fs.Object) []Derived {
		return []Derived{{Key: []byte("view/" + o.Name), Value: o.ID[:]}}
	}
	ix := openTest(t, t.TempDir(), derive)
	defer ix.Close()
	exp := time.Unix(1800000000, 0).UTC()
	a := newObj("a", map[string]string{"k": "v"})
	a.Source = fs.Location{Provider: "p", Path: "f"}
	a.Expires = exp
	b := newObj("b", map[string]string{"k": "w"})
	if err := ix.Insert(ctx, a, b); err != nil {
		t.Fatal(err)
	}
	check := func(repair bool) map[ProblemKind]int {
		t.Helper()
		got := map[ProblemKind]int{}
		err := ix.Check(ctx, CheckOptions{Repair: repair}, func(p Problem) {
			t.Log(p)
			got[p.Kind]++
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := check(false); len(got) != 0 {
		t.Fatalf("sound index: %v", got)
	}
	ghost := gen.New(time.Now())
	bad := gen.New(time.Now())
	err := ix.DB().Update(func(txn *badger.Txn) error {
		for _, k := range [][]byte{
			append(metaPrefix("k", "v"), ghost[:]...), // posting of no object
			append(metaPrefix("k", "x"), b.ID[:]...),  // posting of a value b lacks
			expiryKey(exp.Add(time.Hour), a.ID),       // a's expiry is another time
			derivedKey([]byte("view/zzz")),            // derived key nobody implies
		} {
			if err := txn.Set(k, nil); err != nil {
				return err
			}
		}
		if err := txn.Set(sourceKey(fs.Location{Provider: "p", Path: "g"}), ghost[:]); err != nil {
			return err
		}
		if err := txn.Delete(derivedKey([]byte("view/b"))); err != nil { // b lacks its derived key
			return err
		}
		return txn.Set(objectKey(bad), []byte{1, 2, 3}) // undecodable record
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[ProblemKind]int{DanglingKey: 5, MissingKey: 1, BadRecord: 1}
	if got := check(false); len(got) != len(want) || got[DanglingKey] != 5 || got[MissingKey] != 1 || got[BadRecord] != 1 {
		t.Fatalf("found %v, want %v", got, want)
	}
	check(true)
	if got := check(false); len(got) != 1 || got[BadRecord] != 1 {
		t.Fatalf("after repair: %v, want the bad record only", got)
	}
	var n int
	ix.Derived(ctx, DerivedOptions{Prefix: []byte("view/")}, func(k, v []byte) error { n++; return nil })
	if n != 2 {
		t.Fatalf("%d derived keys after repair, want 2", n)
	}
}

func TestDeleteExpiredBatches(t *testing.T) {
	ctx := context.Background()
	ix := openTest(t, t.TempDir(), nil)
	defer ix.Close()
	now := time.Now().UTC()
	var objs []*fs.Object
	for i := 0; i < 25; i++ {
		o := newObj("o", map[string]string{"k": "v"})
		o.Expires = now.Add(-time.Duration(i+1) * time.Minute)
		objs = append(objs, o)
	}
	later := newObj("later", nil)
	later.Expires = now.Add(time.Hour)
	if err := ix.Insert(ctx, append(objs, later)...); err != nil {
		t.Fatal(err)
	}
	total, batches := 0, 0
	for {
		del, more, err := ix.DeleteExpired(ctx, now, 10)
		if err != nil {
			t.Fatal(err)
		}
		total += len(del)
		batches++
		if !more {
			break
		}
	}
	if total != 25 || batches != 3 {
		t.Fatalf("deleted %d in %d batches", total, batches)
	}
	if _, err := ix.Get(ctx, later.ID); err != nil {
		t.Fatalf("unexpired object: %v", err)
	}
	n := 0
	ix.Find(ctx, []Cond{{Key: "k", Value: "v"}}, FindOptions{}, func(*fs.Object) error { n++; return nil })
	if n != 0 {
		t.Fatalf("%d postings of expired objects left", n)
	}
}

// The pipelined collector against a concurrent writer that postpones some
// expiries: every object ends either deleted (and reported) or kept with
// its new expiry, never both, never neither.
func TestCollectExpiredRacesWithUpdates(t *testing.T) {
	ctx := context.Background()
	ix := openTest(t, t.TempDir(), nil)
	defer ix.Close()
	now := time.Now().UTC()
	const n = 3000
	ids := make([]fs.ID, n)
	batch := make([]*fs.Object, 0, n)
	for i := range n {
		o := newObj("o", map[string]string{"k": "v"})
		o.Expires = now.Add(-time.Duration(n-i) * time.Millisecond)
		ids[i] = o.ID
		batch = append(batch, o)
	}
	if err := ix.Insert(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	postponed := make(map[fs.ID]bool)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := n / 2; i < n; i += 7 {
			_, err := ix.Update(ctx, ids[i], func(o *fs.Object) error { o.Expires = now.Add(time.Hour); return nil })
			if err == nil {
				postponed[ids[i]] = true
			} else if fs.KindOf(err) != fs.NotExist {
				t.Error(err)
			}
		}
	}()
	deleted := make(map[fs.ID]bool)
	batches, err := ix.CollectExpired(ctx, now, 50, func(objs []*fs.Object) {
		for _, o := range objs {
			deleted[o.ID] = true
		}
	})
	<-done
	if err != nil {
		t.Fatal(err)
	}
	// A second pass collects what an Update moved but a batch had already
	// listed... nothing: postponed objects are no longer expired.
	if _, err := ix.CollectExpired(ctx, now, 50, func(objs []*fs.Object) {
		for _, o := range objs {
			deleted[o.ID] = true
		}
	}); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		_, gerr := ix.Get(ctx, id)
		switch {
		case deleted[id] && postponed[id]:
			t.Fatalf("%s postponed and deleted", id)
		case deleted[id] && gerr == nil:
			t.Fatalf("%s reported deleted but present", id)
		case !deleted[id] && !postponed[id]:
			t.Fatalf("%s neither deleted nor postponed (get: %v)", id, gerr)
		}
	}
	if batches < n/50/2 || len(deleted)+len(postponed) != n {
		t.Fatalf("%d batches, %d deleted + %d postponed of %d", batches, len(deleted), len(postponed), n)
	}
}
