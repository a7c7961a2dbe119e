package views

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/datagate/datagate/fs"
)

// Benchmarks at catalogue scale: 1,000,000 objects (DG_BENCH_OBJECTS to
// shrink it) in three views, built once per process:
//
//	go test ./views -run '^$' -bench . -benchtime 1x -timeout 60m
//
// The "flat" view puts a tenth of the catalogue in each of ten
// directories: with 1M objects, a 100,000-child directory.
var (
	benchObjects = envInt("DG_BENCH_OBJECTS", 1_000_000)
	benchReg     = envInt("DG_BENCH_REGISTER", 200_000)
)

var benchViews = map[string]Def{
	"by-date":  {Path: "{date}/{type}/{name}"},
	"by-param": {Path: "{param}/{step}/{name}", Filter: "type in (obs, fc, an)"},
	"flat":     {Path: "{shard}/{name}"},
}

func benchMeta(i int) map[string]string {
	return map[string]string{
		"date":  fmt.Sprintf("2026-11-%02d", 1+i%30),
		"type":  []string{"obs", "fc", "an", "cf"}[i%4],
		"param": strconv.Itoa(i % 250),
		"step":  strconv.Itoa(i % 48),
		"shard": strconv.Itoa(i % 10),
	}
}

func benchName(i int) string { return "obj-" + strconv.Itoa(i) + ".grib" }

// benchPath is object i's path in a tree that has every view.
func benchPath(i int) string {
	m := benchMeta(i)
	return "by-date/" + m["date"] + "/" + m["type"] + "/" + benchName(i)
}

// fill registers n objects in batches of 1000 and returns the wall time.
func fill(tb testing.TB, e *env, n int) time.Duration { return fillRange(tb, e, 0, n) }

// fillRange registers objects from..to-1.
func fillRange(tb testing.TB, e *env, from, n int) time.Duration {
	ctx := context.Background()
	batch := make([]*fs.Object, 0, 1000)
	start := time.Now()
	for i := from; i < n; i++ {
		batch = append(batch, &fs.Object{
			Name: benchName(i), Size: 4096, ModTime: time.Unix(1_700_000_000+int64(i), 0).UTC(),
			Meta:   benchMeta(i),
			Source: fs.Location{Provider: "disk", Path: fmt.Sprintf("2026/11/%02d/file-%d.grib", 1+i%30, i/10), Offset: int64(i%10) * 4096, Length: 4096},
		})
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := e.st.Register(ctx, batch); err != nil {
				tb.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return time.Since(start)
}

var (
	benchOnce sync.Once
	benchEnv  *env
	benchTB   *benchCleanup
)

// benchCleanup collects cleanups of the shared catalogue for TestMain.
type benchCleanup struct {
	testing.TB
	fns []func()
	dir string
}

func (c *benchCleanup) Cleanup(f func()) { c.fns = append(c.fns, f) }
func (c *benchCleanup) TempDir() string  { return c.dir }
func (c *benchCleanup) Helper()          {}

func sharedEnv(b *testing.B) *env {
	benchOnce.Do(func() {
		dir, err := os.MkdirTemp("", "datagate-views-bench-")
		if err != nil {
			b.Fatal(err)
		}
		benchTB = &benchCleanup{TB: b, dir: dir}
		benchEnv = newEnv(benchTB, benchViews)
		d := fill(b, benchEnv, benchObjects)
		b.Logf("built %d objects in 3 views in %v", benchObjects, d.Round(time.Second))
	})
	if benchEnv == nil {
		b.Fatal("shared catalogue failed to build")
	}
	return benchEnv
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchTB != nil {
		for i := len(benchTB.fns) - 1; i >= 0; i-- {
			benchTB.fns[i]()
		}
		os.RemoveAll(benchTB.dir)
	}
	os.Exit(code)
}

func benchTree(e *env) *Tree {
	return NewTree(TreeOptions{Set: e.set, Store: e.st, User: "bench", Profile: Profile{Views: map[string]Rights{"by-date": Read, "by-param": Read, "flat": Read}}})
}

func percentile(d []time.Duration, p float64) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[int(float64(len(d)-1)*p)]
}

// BenchmarkStatByPath: random files by path in the 1M catalogue; p99.
func BenchmarkStatByPath(b *testing.B) {
	e := sharedEnv(b)
	tr := benchTree(e)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	n := max(b.N, 20_000) // enough samples for a stable p99 even at -benchtime 1x
	paths := make([]string, n)
	for i := range paths {
		paths[i] = benchPath(rng.IntN(benchObjects))
	}
	// Warm the block cache as a running server's would be (the first
	// reads after the build also race its compactions).
	for i := range 20_000 {
		if _, err := tr.Stat(ctx, benchPath(rng.IntN(benchObjects))); err != nil {
			b.Fatalf("warm-up %d: %v", i, err)
		}
	}
	lat := make([]time.Duration, 0, n)
	b.ResetTimer()
	for _, p := range paths {
		t0 := time.Now()
		fi, err := tr.Stat(ctx, p)
		lat = append(lat, time.Since(t0))
		if err != nil || fi.IsDir() {
			b.Fatalf("stat %s: %v", p, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(percentile(lat, 0.50).Nanoseconds())/1000, "p50-µs")
	b.ReportMetric(float64(percentile(lat, 0.90).Nanoseconds())/1000, "p90-µs")
	b.ReportMetric(float64(percentile(lat, 0.99).Nanoseconds())/1000, "p99-µs")
}

// BenchmarkListBigDir lists a whole directory of benchObjects/10 children
// (100,000 at 1M) in pages of 1000, as a front-end would.
func BenchmarkListBigDir(b *testing.B) {
	e := sharedEnv(b)
	tr := benchTree(e)
	ctx := context.Background()
	want := (benchObjects + 9) / 10
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		n, after := 0, ""
		for {
			page, err := tr.ReadDir(ctx, "flat/0", after, 1000)
			if err != nil {
				b.Fatal(err)
			}
			n += len(page)
			if len(page) < 1000 {
				break
			}
			after = page[len(page)-1].Name()
		}
		if n != want {
			b.Fatalf("listed %d, want %d", n, want)
		}
		b.ReportMetric(float64(time.Since(t0).Milliseconds()), "ms/listing")
		b.ReportMetric(float64(n), "children")
	}
}

// BenchmarkListSmallDirs lists the root of by-date and its 30 date
// directories (each with 2 type subdirectories holding 1/60 of the catalogue):
// subtree skipping keeps it independent of the catalogue's size.
func BenchmarkListSmallDirs(b *testing.B) {
	e := sharedEnv(b)
	tr := benchTree(e)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		top, err := tr.ReadDir(ctx, "by-date", "", 1000)
		if err != nil || len(top) != 30 {
			b.Fatalf("%d %v", len(top), err)
		}
		for _, d := range top {
			sub, err := tr.ReadDir(ctx, "by-date/"+d.Name(), "", 1000)
			if err != nil || len(sub) != 2 { // i%30 fixes i%2, so two types a date
				b.Fatalf("%d %v", len(sub), err)
			}
		}
	}
}

// BenchmarkRegisterViews registers DG_BENCH_REGISTER objects (200,000 by
// default) into a fresh store with the three views and with none, and
// reports both rates and their ratio (the target: >= 0.5). Commits skip
// fsync in both, so the ratio measures the index work views add. The two
// stores are filled in alternating slices of 10,000 so that noise from
// other load on the machine falls on both alike.
func BenchmarkRegisterViews(b *testing.B) {
	for i := 0; i < b.N; i++ {
		none := newEnv(b, nil)
		with := newEnv(b, benchViews)
		var dNone, dWith time.Duration
		for from := 0; from < benchReg; from += 10_000 {
			to := min(from+10_000, benchReg)
			dNone += fillRange(b, none, from, to)
			dWith += fillRange(b, with, from, to)
		}
		rNone := float64(benchReg) / dNone.Seconds()
		rWith := float64(benchReg) / dWith.Seconds()
		b.ReportMetric(rNone, "objects/s-0views")
		b.ReportMetric(rWith, "objects/s-3views")
		b.ReportMetric(rWith/rNone, "ratio")
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
