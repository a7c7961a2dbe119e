package views

import (
	"context"
	"maps"
	"testing"
	"time"
)

// BenchmarkReloadRederive: what a configuration reload costs in the
// background, against the restart that applies the same change (the full
// rebuild of the path index at start), on one catalogue
// (DG_BENCH_RELOAD objects, default 100,000, in the three bench views):
//
//	go test ./views -run '^$' -bench ReloadRederive -benchtime 1x -timeout 30m
//
// live-eq: a view added whose filter has an equality (type = obs: a
// quarter of the catalogue, found through the metadata index); live-walk:
// a template changed in a view without one (every object: stale entries
// dropped, the catalogue walked, each object re-derived); restart: the
// same template change applied by a restart. Each reports objects/s.
func BenchmarkReloadRederive(b *testing.B) {
	n := envInt("DG_BENCH_RELOAD", 100_000)
	e := newEnv(b, benchViews)
	b.Cleanup(func() { e.set.Close() })
	fill(b, e, n)
	defer func(g time.Duration) { rebuildGrace = g }(rebuildGrace)
	rebuildGrace = 0
	ctx := context.Background()
	withView := func(name string, d Def) map[string]Def {
		m := maps.Clone(benchViews)
		m[name] = d
		return m
	}
	reconfigure := func(b *testing.B, defs map[string]Def) time.Duration {
		start := time.Now()
		if _, err := e.set.Reconfigure(ctx, defs); err != nil {
			b.Fatal(err)
		}
		if err := e.set.WaitRebuilt(ctx); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	b.Run("live-eq", func(b *testing.B) {
		var took time.Duration
		for range b.N {
			took += reconfigure(b, withView("obs", Def{Path: "{date}/{name}", Filter: "type = obs"}))
			reconfigure(b, benchViews) // and away again, not timed
		}
		b.ReportMetric(float64(n/4*b.N)/took.Seconds(), "objects/s")
	})
	flat2 := withView("flat", Def{Path: "{shard}/x/{name}"})
	b.Run("live-walk", func(b *testing.B) {
		var took time.Duration
		for i := range b.N {
			if i%2 == 0 {
				took += reconfigure(b, flat2)
			} else {
				took += reconfigure(b, benchViews)
			}
		}
		b.ReportMetric(float64(n*b.N)/took.Seconds(), "objects/s")
	})
	b.Run("restart", func(b *testing.B) {
		var took time.Duration
		for range b.N {
			defs := flat2
			if e.set.cur.Load().views["flat"].def.Path != benchViews["flat"].Path {
				defs = benchViews
			}
			if err := e.set.Close(); err != nil {
				b.Fatal(err)
			}
			e.st.Close()
			set, err := NewSet(defs, nil)
			if err != nil {
				b.Fatal(err)
			}
			e.set = set
			start := time.Now()
			e.open(b)
			took += time.Since(start)
		}
		b.ReportMetric(float64(n*b.N)/took.Seconds(), "objects/s")
	})
}
