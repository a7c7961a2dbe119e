package index

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/datagate/datagate/fs"
)

// TestReadersSeeReturnedWrites: readers share a snapshot that writers move
// on; whatever a write call has returned must be visible to every reader
// at once (other goroutines included), deletes and collections too, while
// other readers keep reading concurrently.
func TestReadersSeeReturnedWrites(t *testing.T) {
	ix := openTest(t, t.TempDir(), nil)
	defer ix.Close()
	ctx := context.Background()

	// Background readers hold snapshots (a Find walks while writers
	// replace them) so that replaced snapshots are released by readers.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ix.Find(ctx, []Cond{{Key: "k", Value: "v"}}, FindOptions{}, func(*fs.Object) error { return nil })
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()

	check := func(id fs.ID, want bool) {
		t.Helper()
		got := make(chan error, 1)
		go func() { _, err := ix.Get(ctx, id); got <- err }()
		err := <-got
		if want && err != nil {
			t.Fatalf("written %s not visible: %v", id, err)
		}
		if !want && fs.KindOf(err) != fs.NotExist {
			t.Fatalf("deleted %s still visible: %v", id, err)
		}
	}
	for i := range 200 {
		o := newObj(fmt.Sprint(i), map[string]string{"k": "v"})
		if err := ix.Insert(ctx, o); err != nil {
			t.Fatal(err)
		}
		check(o.ID, true)
		if _, err := ix.Update(ctx, o.ID, func(o *fs.Object) error { o.Name = "renamed"; return nil }); err != nil {
			t.Fatal(err)
		}
		if got, err := ix.Get(ctx, o.ID); err != nil || got.Name != "renamed" {
			t.Fatalf("update not visible: %v %v", got, err)
		}
		if i%2 == 0 {
			if _, err := ix.Delete(ctx, o.ID); err != nil {
				t.Fatal(err)
			}
			check(o.ID, false)
		}
	}

	// Derived keys written by the index's transactions are in the
	// snapshot as soon as the write returns.
	dix := openTest(t, t.TempDir(), func(o *fs.Object) []Derived {
		return []Derived{{Key: []byte("n/" + o.Name), Value: o.ID[:]}}
	})
	defer dix.Close()
	for i := range 50 {
		o := newObj(fmt.Sprint("d", i), nil)
		if err := dix.Insert(ctx, o); err != nil {
			t.Fatal(err)
		}
		found := false
		err := dix.Derived(ctx, DerivedOptions{Prefix: []byte("n/" + o.Name), Snapshot: true}, func(k, v []byte) error {
			found = true
			return nil
		})
		if err != nil || !found {
			t.Fatalf("derived key of %s not in the snapshot: %v", o.Name, err)
		}
	}

	now := time.Now()
	var expired []*fs.Object
	for i := range 300 {
		o := newObj(fmt.Sprint("x", i), nil)
		o.Expires = now.Add(-time.Minute)
		expired = append(expired, o)
	}
	if err := ix.Insert(ctx, expired...); err != nil {
		t.Fatal(err)
	}
	_, err := ix.CollectExpired(ctx, now, 50, func(objs []*fs.Object) {
		// Content is dropped after this: readers must no longer see
		// the batch.
		for _, o := range objs {
			check(o.ID, false)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}
