package index

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/datagate/datagate/fs"
)

// A large batch (prepared in source order, on several goroutines) reads
// and writes exactly what registering its records one by one does: same
// outcomes, same keys and values, same counts, including records whose
// source an earlier record of the batch also names.
//
// It runs with the batch in one round and in rounds of 600 records.
func TestRegisterBatchAsOneByOne(t *testing.T) {
	for _, round := range []int{regRound, 600} {
		t.Run(fmt.Sprint("round", round), func(t *testing.T) {
			defer func(r int) { regRound = r }(regRound)
			regRound = round
			testRegisterBatchAsOneByOne(t)
		})
	}
}

func testRegisterBatchAsOneByOne(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	derive := func(o *fs.Object) []Derived {
		return []Derived{{Key: fmt.Appendf(nil, "v/%s/%s", o.Meta["k"], o.Name), Value: []byte(o.ETag)}}
	}
	batchIx := openTest(t, t.TempDir(), derive)
	defer batchIx.Close()
	oneIx := openTest(t, t.TempDir(), derive)
	defer oneIx.Close()

	rng := rand.New(rand.NewPCG(7, 7))
	rec := func(src int, etag string) *fs.Object {
		o := newObj(fmt.Sprintf("f%d", src), map[string]string{"k": fmt.Sprint(src % 7), "src": fmt.Sprint(src)})
		o.ETag = etag
		if src >= 0 {
			o.Source = fs.Location{Provider: "p", Path: fmt.Sprintf("d/%d", src), Length: 10}
		}
		if src%5 == 0 {
			o.Expires = time.Unix(1_800_000_000+int64(src), 0).UTC()
		}
		return o
	}
	// Both indexes get the same records (copies: Register sets ids,
	// versions and states on them).
	register := func(objs []*fs.Object) {
		t.Helper()
		b := make([]*fs.Object, len(objs))
		for i, o := range objs {
			b[i] = o.Clone()
		}
		got, err := batchIx.Register(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range objs {
			want, err := oneIx.Register(ctx, []*fs.Object{o.Clone()})
			if err != nil {
				t.Fatal(err)
			}
			if got[i] != want[0] {
				t.Fatalf("record %d (%s %s): %v in a batch, %v alone", i, o.Source.Path, o.ETag, got[i], want[0])
			}
		}
	}

	var first []*fs.Object
	for s := range 600 {
		first = append(first, rec(s, "a"))
	}
	register(first)
	// New records get the keys Insert writes (putKeys, whose keys
	// deleteKeys removes), with the fingerprint Register gives them.
	insIx := openTest(t, t.TempDir(), derive)
	defer insIx.Close()
	for _, o := range first {
		o = o.Clone()
		o.Fingerprint = Fingerprint(o)
		if err := insIx.Insert(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(dump(t, batchIx), dump(t, insIx)) {
		t.Fatal("registered records' keys and values differ from inserted ones'")
	}

	var batch []*fs.Object
	for s := range 600 {
		switch s % 4 {
		case 0: // unchanged
			batch = append(batch, rec(s, "a"))
		case 1: // changed, then the same again or changed once more
			batch = append(batch, rec(s, "b"), rec(s, []string{"b", "c"}[s%8/4]))
		case 2: // described anew (moves in the view), then its content changed or not
			a, b := rec(s, "a"), rec(s, []string{"a", "d"}[s%8/4])
			a.Meta["k"], b.Meta["k"] = "moved", "moved"
			batch = append(batch, a, b)
		}
	}
	for s := 600; s < 1800; s++ {
		batch = append(batch, rec(s, "a"))
		if s%6 == 0 { // new, then again, the same or changed
			batch = append(batch, rec(s, []string{"a", "b"}[s%12/6]))
		}
	}
	for range 50 {
		batch = append(batch, rec(-1, "x")) // no source
	}
	// Shuffled: which of two records with one source comes first is
	// the batch's order.
	rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
	register(batch)

	if d := dump(t, batchIx); !bytes.Equal(d, dump(t, oneIx)) {
		t.Fatal("the batch's keys and values differ from the one-by-one registration's")
	}
	if b, o := batchIx.Counts(), oneIx.Counts(); fmt.Sprint(b) != fmt.Sprint(o) {
		t.Fatalf("counts %+v, one by one %+v", b, o)
	}
	var problems []string
	if err := batchIx.Check(ctx, CheckOptions{}, func(p Problem) { problems = append(problems, p.String()) }); err != nil || len(problems) > 0 {
		t.Fatalf("check: %v %v", err, problems)
	}
}

// dump lists every key and value of the index's database.
func dump(t *testing.T, ix *Index) []byte {
	t.Helper()
	var b bytes.Buffer
	err := ix.DB().View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "%x=%x\n", it.Item().Key(), v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// A batch too large for one transaction is refused whole, after at most
// one round prepared beyond what the transaction took (the deriver is
// called once per new record prepared).
func TestRegisterTooLargeStopsEarly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var derived atomic.Int64
	ix := openTest(t, t.TempDir(), func(*fs.Object) []Derived { derived.Add(1); return nil })
	defer ix.Close()
	batch := make([]*fs.Object, 40_000)
	for i := range batch {
		batch[i] = newObj(fmt.Sprint(i), map[string]string{"a": "1", "b": fmt.Sprint(i % 10), "c": fmt.Sprint(i)})
		batch[i].Source = fs.Location{Provider: "p", Path: fmt.Sprint(i)}
	}
	if _, err := ix.Register(ctx, batch); fs.KindOf(err) != fs.Invalid {
		t.Fatalf("register of %d records: %v, want Invalid", len(batch), err)
	}
	if n := ix.Counts().Objects; n != 0 {
		t.Fatalf("%d objects after a refused batch", n)
	}
	if n := derived.Load(); n >= int64(len(batch)) {
		t.Fatalf("%d of %d records prepared for a batch refused", n, len(batch))
	}
	t.Logf("%d of %d records prepared", derived.Load(), len(batch))
}
