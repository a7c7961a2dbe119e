package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/local"
	"github.com/datagate/datagate/fs"
)

// BenchmarkCollect1M: the collector removes 1,000,000 expired registered
// objects (five metadata keys, a source range and an expiry each: eight
// index keys) in batches of DefaultCollectBatch while a goroutine looks up
// random live objects by id (what a stat does). It reports the
// collection's wall time, the process's CPU time and the lookups' latency
// percentiles during the collection, and the lookups' p99 in the same
// process just before it (idle-p99-µs: what the machine allows). DG_BENCH_GC_OBJECTS shrinks the catalogue,
// DG_BENCH_GC_BATCH changes the batch size.
//
//	go test ./fs/store -run '^$' -bench Collect1M -benchtime 1x -timeout 30m
func BenchmarkCollect1M(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("DG_BENCH_GC_OBJECTS")); err == nil && v > 0 {
		n = v
	}
	const live = 10_000
	// The reader pauses DG_BENCH_GC_READER_GAP (default 100µs) between
	// lookups, so its samples are spread over time like a user's stats:
	// back to back ("0"), the fast lookups between two commits swamp the
	// percentiles and hide how long a lookup waits behind a commit.
	gap := 100 * time.Microsecond
	if v, err := time.ParseDuration(os.Getenv("DG_BENCH_GC_READER_GAP")); err == nil {
		gap = v
	}
	batch := DefaultCollectBatch
	if v, err := strconv.Atoi(os.Getenv("DG_BENCH_GC_BATCH")); err == nil && v > 0 {
		batch = v
	}
	idleFor := 3 * time.Second
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		now := time.Now().UTC()
		// Build without fsync, then reopen as a server would (fsync on
		// every commit) for the measured part.
		st := openBench(b, dir, true)
		liveIDs := fillBench(b, st, n, live, now)
		st.Close()
		st = openBench(b, dir, false)

		// The reader runs alone for a while first: its percentiles then
		// are what the machine gives without the collector (a loaded
		// machine delays a woken goroutine by milliseconds), the
		// baseline for those measured during the collection.
		var stop, collecting atomic.Bool
		var idle, lat []time.Duration
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			r := rand.New(rand.NewPCG(1, 2))
			for !stop.Load() {
				id := liveIDs[r.IntN(len(liveIDs))]
				during := collecting.Load()
				t0 := time.Now()
				if _, err := st.Get(ctx, id); err != nil {
					panic(err)
				}
				if d := time.Since(t0); during {
					lat = append(lat, d)
				} else {
					idle = append(idle, d)
				}
				if gap > 0 {
					time.Sleep(gap)
				}
			}
		}()
		time.Sleep(idleFor)
		collecting.Store(true)
		b.StartTimer()
		cpu0 := cpuTime()
		t0 := time.Now()
		cs, err := st.Collect(context.Background(), now, batch)
		took := time.Since(t0)
		cpu := cpuTime() - cpu0
		b.StopTimer()
		stop.Store(true)
		wg.Wait()
		if err != nil {
			b.Fatal(err)
		}
		if cs.Objects != int64(n) {
			b.Fatalf("collected %d of %d", cs.Objects, n)
		}
		slices.Sort(lat)
		slices.Sort(idle)
		pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(float64(len(lat))*p))] }
		if len(idle) > 0 {
			b.ReportMetric(float64(idle[min(len(idle)-1, int(float64(len(idle))*0.99))].Microseconds()), "idle-p99-µs")
		}
		b.ReportMetric(took.Seconds(), "collect-s")
		// CPU time of the whole process (collector, Badger's writer and
		// compactions, and the reader), which a loaded machine does not
		// inflate the way it does wall time.
		b.ReportMetric(cpu.Seconds(), "cpu-s")
		b.ReportMetric(float64(n)/took.Seconds(), "objects/s")
		b.ReportMetric(float64(cs.Batches), "batches")
		b.ReportMetric(float64(len(lat)), "lookups")
		b.ReportMetric(float64(pct(0.50).Microseconds()), "p50-µs")
		b.ReportMetric(float64(pct(0.99).Microseconds()), "p99-µs")
		b.ReportMetric(float64(pct(0.999).Microseconds()), "p99.9-µs")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
		st.Close()
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func openBench(b *testing.B, dir string, noSync bool) *Store {
	b.Helper()
	mars, err := local.New("mars", local.Config{Root: filepath.Join(dir, "mars")})
	if err != nil {
		b.Fatal(err)
	}
	primary, err := local.New(PrimaryName, local.Config{Root: filepath.Join(dir, "objects")})
	if err != nil {
		b.Fatal(err)
	}
	st, err := Open(context.Background(), Options{
		Dir: filepath.Join(dir, "data"), Primary: primary, NoSync: noSync,
		Providers: map[string]backends.Provider{"mars": mars},
	})
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// fillBench registers n objects expired at now and live objects that never
// expire, and returns the live ids.
func fillBench(b *testing.B, st *Store, n, live int, now time.Time) []fs.ID {
	b.Helper()
	ctx := context.Background()
	batch := make([]*fs.Object, 0, 1000)
	var liveIDs []fs.ID
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if _, err := st.Register(ctx, batch); err != nil {
			b.Fatal(err)
		}
		for _, o := range batch {
			if o.Expires.IsZero() {
				liveIDs = append(liveIDs, o.ID)
			}
		}
		batch = batch[:0]
	}
	for i := range n + live {
		o := &fs.Object{
			Size: 4096,
			Meta: map[string]string{
				"date":  fmt.Sprintf("2026-11-%02d", 1+i%30),
				"type":  []string{"obs", "fc", "an", "cf"}[i%4],
				"param": strconv.Itoa(i % 250),
				"step":  strconv.Itoa(i % 48),
				"set":   strconv.Itoa(i / 1000),
			},
			Source: fs.Location{Provider: "mars", Path: fmt.Sprintf("2026/11/%02d/file-%d.grib", 1+i%30, i/10), Offset: int64(i%10) * 4096, Length: 4096},
		}
		if i < n {
			o.Expires = now.Add(-time.Duration(1+i%3600) * time.Second)
		}
		batch = append(batch, o)
		if len(batch) == cap(batch) {
			flush()
		}
	}
	flush()
	return liveIDs
}
