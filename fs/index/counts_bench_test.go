package index

import (
	"context"
	"testing"

	"github.com/datagate/datagate/fs"
)

// What keeping the counts costs a commit, and what recounting costs after
// an unclean shutdown.
//
//	go test ./fs/index -run '^$' -bench 'Counts|InsertOne' -count 3
//	DG_BENCH_OBJECTS=1000000 go test ./fs/index -run '^$' -bench RebuildCounts -benchtime 1x

// BenchmarkCountsApply is the counting of one object's update that
// records a second copy (the store's tally shape: a name per copy).
func BenchmarkCountsApply(b *testing.B) {
	var c counter
	keys := map[string]string{"primary": "copies:primary", "second": "copies:second"}
	c.tally = func(o *fs.Object, add func(string, int64)) {
		for _, s := range o.Stores {
			add(keys[s], 1) // as the store's tally: names made once
		}
	}
	c.tallies = map[string]int64{}
	g := fs.NewIDGen()
	old := benchObject(g, 1)
	old.Stores = []string{"primary"}
	new := old.Clone()
	new.Stores = append(new.Stores, "second")
	changes := []Change{{Op: OpPut, Old: old, New: new}}
	b.ReportAllocs()
	for b.Loop() {
		c.gate.RLock()
		c.apply(changes)
		c.gate.RUnlock()
	}
}

// BenchmarkInsertOne is a commit of one object (no sync), counting
// included: the scale BenchmarkCountsApply is to be read against.
func BenchmarkInsertOne(b *testing.B) {
	ix, err := Open(Options{Dir: b.TempDir(), NoSync: true, Tally: storeTally})
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	g := fs.NewIDGen()
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		o := benchObject(g, i)
		o.Stores = []string{"primary"}
		i++
		if err := ix.Insert(ctx, o); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRebuildCounts recounts a catalogue of DG_BENCH_OBJECTS
// (default 1,000,000) objects, as after an unclean shutdown.
func BenchmarkRebuildCounts(b *testing.B) {
	ix, err := Open(Options{Dir: b.TempDir(), NoSync: true, Tally: storeTally})
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	buildCatalogue(b, ix, benchObjects)
	b.ResetTimer()
	for range b.N {
		ix.cnt.exact.Store(false)
		if err := ix.RebuildCounts(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if c := ix.Counts(); c.Objects != int64(benchObjects) {
		b.Fatalf("counted %d objects, want %d", c.Objects, benchObjects)
	}
	b.ReportMetric(float64(benchObjects)*float64(b.N)/b.Elapsed().Seconds(), "objects/s")
}
