package index

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/datagate/datagate/fs"
)

// storeTally counts copies per store, as fs/store's tally does.
func storeTally(o *fs.Object, add func(string, int64)) {
	for _, s := range o.Stores {
		add("copies:"+s, 1)
	}
}

// walkCounts is what the counts must be: a full scan.
func walkCounts(t *testing.T, ix *Index) Counts {
	t.Helper()
	c := Counts{Tallies: map[string]int64{}, Exact: true}
	err := ix.Walk(context.Background(), fs.ID{}, func(o *fs.Object) error {
		c.Objects++
		c.Bytes += sizeOf(o)
		storeTally(o, func(k string, n int64) { c.Tallies[k] += n })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func checkCounts(t *testing.T, ix *Index, when string) {
	t.Helper()
	got, want := ix.Counts(), walkCounts(t, ix)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: counts %+v, a scan gives %+v", when, got, want)
	}
}

// crash closes the index as a kill would leave it: everything committed,
// no counts checkpoint.
func crash(ix *Index) {
	ix.closeSnapshots()
	ix.sync.close()
	ix.db.Close()
}

func openTally(t *testing.T, dir, sig string) *Index {
	t.Helper()
	ix, err := Open(Options{Dir: dir, Tally: storeTally, TallySig: sig})
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// TestCountsFollowEveryWrite: every kind of write keeps the counts equal
// to what a scan finds; a clean reopen keeps them; after a crash they are
// inexact until rebuilt.
func TestCountsFollowEveryWrite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ix := openTally(t, dir, "s1")
	if c := ix.Counts(); !c.Exact || c.Objects != 0 {
		t.Fatalf("new index: %+v", c)
	}
	var objs []*fs.Object
	for i := range 10 {
		o := newObj(fmt.Sprint(i), nil)
		o.Size = int64(100 * (i + 1))
		o.Source = fs.Location{Provider: "p", Path: fmt.Sprint(i)}
		objs = append(objs, o)
	}
	objs[3].Size = -1 // unknown: counts 0
	if err := ix.Insert(ctx, objs[:2]...); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, ix, "insert")
	if _, err := ix.Register(ctx, objs[2:]); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, ix, "register")
	// Unchanged and updated re-registrations.
	again := objs[5].Clone()
	again.ID = gen.New(time.Now()) // Register gives it the existing one
	changed := objs[6].Clone()
	changed.ID, changed.Size = gen.New(time.Now()), 5
	if out, err := ix.Register(ctx, []*fs.Object{again, changed}); err != nil || out[0] != Unchanged || out[1] != Updated {
		t.Fatalf("re-register: %v %v", out, err)
	}
	checkCounts(t, ix, "re-register")
	// Size learnt, copies recorded.
	if _, err := ix.Update(ctx, objs[3].ID, func(o *fs.Object) error { o.Size = 42; o.Stores = []string{"a", "b"}; return nil }); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, ix, "update")
	if _, _, err := ix.UpdateMany(ctx, []fs.ID{objs[4].ID}, func(o *fs.Object) error { o.Stores = []string{"a"}; return nil }, []fs.ID{objs[0].ID}); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, ix, "update many")
	repl := newObj("replacement", nil)
	repl.Size = 7
	if err := ix.Swap(ctx, []fs.ID{objs[1].ID}, []*fs.Object{repl}); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, ix, "swap")
	if _, err := ix.Delete(ctx, objs[2].ID); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, ix, "delete")
	// Expiry: one by DeleteExpired, two by CollectExpired.
	now := time.Now()
	for _, o := range objs[7:] {
		if _, err := ix.Update(ctx, o.ID, func(o *fs.Object) error { o.Expires = now.Add(-time.Minute); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := ix.DeleteExpired(ctx, now, 1); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, ix, "delete expired")
	if _, err := ix.CollectExpired(ctx, now, 1, func([]*fs.Object) {}); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, ix, "collect expired")
	want := ix.Counts()
	if want.Objects != 5 || want.Tallies["copies:a"] != 2 {
		t.Fatalf("counts %+v, want 5 objects and 2 copies in a", want)
	}

	// Clean close and reopen: taken from the checkpoint.
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	ix = openTally(t, dir, "s1")
	if got := ix.Counts(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after a clean reopen: %+v, want %+v", got, want)
	}
	// The checkpoint was taken: a crash now leaves none.
	crash(ix)
	ix = openTally(t, dir, "s1")
	if got := ix.Counts(); got.Exact {
		t.Fatalf("after a crash: %+v, want inexact", got)
	}
	if err := ix.RebuildCounts(ctx); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, ix, "rebuilt after a crash")
	// Other tally rules: the checkpoint is not trusted.
	ix.Close()
	ix = openTally(t, dir, "s2")
	if ix.Counts().Exact {
		t.Fatal("checkpoint of other tally rules trusted")
	}
	if err := ix.RebuildCounts(ctx); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, ix, "rebuilt for new rules")
	ix.Close()
}

// TestRebuildCountsUnderWrites: writers insert, update and delete while
// the counts are rebuilt; each of their commits lands either in the
// rebuild's scan or on top of it, never both, never neither.
func TestRebuildCountsUnderWrites(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	ix := openTally(t, dir, "s")
	var ids []fs.ID
	for b := range 20 {
		batch := make([]*fs.Object, 250)
		for i := range batch {
			batch[i] = newObj(fmt.Sprintf("%d-%d", b, i), nil)
			batch[i].Size = int64(i)
			if i%3 == 0 {
				batch[i].Stores = []string{"x"}
			}
			ids = append(ids, batch[i].ID)
		}
		if err := ix.Insert(ctx, batch...); err != nil {
			t.Fatal(err)
		}
	}
	crash(ix)
	ix = openTally(t, dir, "s")
	defer ix.Close()
	if ix.Counts().Exact {
		t.Fatal("exact after a crash")
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				switch i % 3 {
				case 0:
					o := newObj(fmt.Sprintf("w%d-%d", w, i), nil)
					o.Size, o.Stores = 3, []string{"y"}
					err = ix.Insert(ctx, o)
				case 1:
					// Only this writer's share of the ids: no conflicts
					// between writers, and deletes of existing objects.
					id := ids[(r.IntN(len(ids)/4))*4+w]
					_, err = ix.Update(ctx, id, func(o *fs.Object) error { o.Size++; o.Stores = append(o.Stores, "z"); return nil })
				case 2:
					j := (r.IntN(len(ids)/4))*4 + w
					_, err = ix.Delete(ctx, ids[j])
				}
				if err != nil && fs.KindOf(err) != fs.NotExist {
					t.Error(err)
					return
				}
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	err := ix.RebuildCounts(ctx)
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, ix, "rebuilt under writes")
}

// TestCloseUnderWrites: a writer still committing while the index closes
// never leaves a checkpoint that misses a commit; its late commits fail.
func TestCloseUnderWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for round := range 5 {
		ix := openTally(t, dir, "s")
		if c := ix.Counts(); !c.Exact {
			t.Fatalf("round %d: counts inexact after a clean close", round)
		}
		checkCounts(t, ix, fmt.Sprintf("round %d", round))
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				o := newObj(fmt.Sprint(round, "-", i), nil)
				o.Stores = []string{"a"}
				if err := ix.Insert(ctx, o); err != nil {
					return // closed
				}
			}
		}()
		time.Sleep(20 * time.Millisecond)
		if err := ix.Close(); err != nil {
			t.Fatal(err)
		}
		<-done
	}
}
