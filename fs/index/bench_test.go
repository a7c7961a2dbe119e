package index

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/datagate/datagate/fs"
)

// Benchmarks at catalogue scale. The 1M-object catalogue is built once per
// process (make bench runs them with -benchtime=1x where sizes are fixed).
//
//	go test ./fs/index -run '^$' -bench . -benchtime 1x -timeout 30m

var benchObjects = envInt("DG_BENCH_OBJECTS", 1_000_000)

// benchObject makes object i: five metadata keys, one of which ("set")
// has 1,000 objects per value, as a product type might.
func benchObject(g *fs.IDGen, i int) *fs.Object {
	return &fs.Object{
		ID: g.New(time.Now()), Name: "obj-" + strconv.Itoa(i) + ".grib", Size: int64(1000 + i%5000),
		ModTime: time.Unix(1_700_000_000+int64(i), 0).UTC(), Created: time.Now().UTC(),
		Meta: map[string]string{
			"date":  fmt.Sprintf("2026-11-%02d", 1+i%30),
			"type":  []string{"obs", "fc", "an", "cf"}[i%4],
			"param": strconv.Itoa(i % 250),
			"step":  strconv.Itoa(i % 48),
			"set":   strconv.Itoa(i / 1000),
		},
		Source: fs.Location{Provider: "mars", Path: fmt.Sprintf("2026/11/%02d/file-%d.grib", 1+i%30, i/10), Offset: int64(i%10) * 4096, Length: 4096},
	}
}

// buildCatalogue registers n objects in batches of 1000 and returns the
// wall time spent.
func buildCatalogue(tb testing.TB, ix *Index, n int) time.Duration {
	ctx := context.Background()
	g := fs.NewIDGen()
	batch := make([]*fs.Object, 0, envInt("DG_BENCH_BATCH", 1000))
	start := time.Now()
	for i := 0; i < n; i++ {
		batch = append(batch, benchObject(g, i))
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := ix.Register(ctx, batch); err != nil {
				tb.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return time.Since(start)
}

func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// peakRSS reads the process's high-water resident set size (kB) on Linux.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}

// BenchmarkRegister1M builds a durable (synced per batch) 1M-object
// catalogue and reports objects/s, on-disk size and peak RSS, and the
// process's CPU time (which a loaded machine inflates less than wall
// time) and the number of syncs.
func BenchmarkRegister1M(b *testing.B) {
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		ix, err := Open(Options{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		cpu0 := cpuTime()
		d := buildCatalogue(b, ix, benchObjects)
		cpu := cpuTime() - cpu0
		syncs := ix.sync.rounds.Load()
		ix.Close()
		b.ReportMetric(float64(benchObjects)/d.Seconds(), "objects/s")
		b.ReportMetric(cpu.Seconds(), "cpu-s")
		b.ReportMetric(float64(syncs), "syncs")
		b.ReportMetric(float64(dirSize(dir))/(1<<20), "disk-MiB")
		b.ReportMetric(float64(peakRSS())/1024, "peakRSS-MiB")
	}
}

var (
	sharedOnce sync.Once
	sharedIx   *Index
	sharedIDs  []fs.ID
	sharedDir  string
)

// shared returns a 1M-object catalogue built once for the read benchmarks.
func shared(b *testing.B) (*Index, []fs.ID) {
	sharedOnce.Do(func() {
		var err error
		sharedDir, err = os.MkdirTemp("", "datagate-bench-")
		if err != nil {
			b.Fatal(err)
		}
		sharedIx, err = Open(Options{Dir: sharedDir, NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		buildCatalogue(b, sharedIx, benchObjects)
		sharedIx.Find(context.Background(), []Cond{{"type", "obs"}}, FindOptions{}, func(o *fs.Object) error {
			sharedIDs = append(sharedIDs, o.ID)
			return nil
		})
	})
	return sharedIx, sharedIDs
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedIx != nil {
		sharedIx.Close()
		os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func percentile(d []time.Duration, p float64) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[int(float64(len(d)-1)*p)]
}

// BenchmarkGetByID1M: random lookups by id in a 1M catalogue; reports p99.
func BenchmarkGetByID1M(b *testing.B) {
	ix, ids := shared(b)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 1))
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := ix.Get(ctx, ids[rng.IntN(len(ids))]); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	b.ReportMetric(float64(percentile(lat, 0.99).Nanoseconds())/1000, "p99-µs")
}

// BenchmarkFind1000Of1M: find by one equality returning 1,000 of 1M.
func BenchmarkFind1000Of1M(b *testing.B) {
	ix, _ := shared(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := 0
		// Sets hold 1,000 objects each; DG_BENCH_OBJECTS may make fewer.
		set := i % max(1, benchObjects/1000)
		err := ix.Find(ctx, []Cond{{"set", strconv.Itoa(set)}}, FindOptions{}, func(*fs.Object) error { n++; return nil })
		if err != nil || n != 1000 {
			b.Fatalf("found %d, %v", n, err)
		}
	}
}

// BenchmarkFindAnd: two equalities whose intersection is small.
func BenchmarkFindAnd(b *testing.B) {
	ix, _ := shared(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := 0
		ix.Find(ctx, []Cond{{"type", "obs"}, {"step", "4"}}, FindOptions{Limit: 100}, func(*fs.Object) error { n++; return nil })
		if n != 100 {
			b.Fatalf("found %d", n)
		}
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
