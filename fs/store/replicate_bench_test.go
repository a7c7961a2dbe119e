package store

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/datagate/datagate/backends/cache"
	"github.com/datagate/datagate/backends/local"
	"github.com/datagate/datagate/fs"
)

// BenchmarkReplicateLocal measures the replication queue copying pushed
// objects to a second local store (on the same file system as the
// primary), each copy written, fsynced, read back and hashed, and
// recorded in the catalogue, against a plain copy of the same files in the
// same run: io.Copy from the primary's file to a new file and fsync.
// Reported: both throughputs, their ratio (replicate/plain), and the
// process CPU seconds each took per iteration (on a shared machine a
// CPU-heavier job loses more wall time to other processes).
//
//	go test ./fs/store -run '^$' -bench ReplicateLocal -benchtime 3x
//
// DATAGATE_BENCH_REPLICATE_MIB sizes the data (default 512, in 16 MiB
// objects). Sub-benchmarks: "kernel" is the path replication takes
// (local store's PutFile: copy_file_range, read-back hashed while the copy
// is flushed), "buffered" the generic Put then read-back, for A/B in one
// run.
func BenchmarkReplicateLocal(b *testing.B) {
	for _, c := range []struct {
		name   string
		kernel bool
	}{{"buffered", false}, {"kernel", true}} {
		b.Run(c.name, func(b *testing.B) {
			defer func(k bool) { kernelCopy = k }(kernelCopy)
			kernelCopy = c.kernel
			benchmarkReplicateLocal(b)
		})
	}
}

func benchmarkReplicateLocal(b *testing.B) {
	total := int64(512)
	if v, err := strconv.ParseInt(os.Getenv("DATAGATE_BENCH_REPLICATE_MIB"), 10, 64); err == nil && v > 0 {
		total = v
	}
	const objSize = 16 << 20
	n := int(max(1, (total<<20)/objSize))
	dir := b.TempDir()
	secondRoot := filepath.Join(dir, "second")
	plainRoot := filepath.Join(dir, "plain")
	primary, _ := local.New(PrimaryName, local.Config{Root: filepath.Join(dir, "data", "objects")})
	second, _ := local.New("second", local.Config{Root: secondRoot})
	st, err := Open(context.Background(), Options{
		Dir: filepath.Join(dir, "data"), Primary: primary, Cache: cache.Options{MaxSize: 1 << 30},
		Replication: Replication{Stores: []Target{{Name: "second", W: second}}, Replicas: 2},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	buf := make([]byte, objSize)
	rng := rand.New(rand.NewPCG(1, 2))
	var objs []*fs.Object
	for range n {
		for i := 0; i < len(buf); i += 8 {
			v := rng.Uint64()
			for j := range 8 {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		o, err := st.Put(ctx, PutRequest{Name: "x", Size: objSize}, bytes.NewReader(buf))
		if err != nil {
			b.Fatal(err)
		}
		objs = append(objs, o)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); st.RunReplication(rctx) }()
	defer func() { cancel(); <-done }()
	waitEmpty := func() {
		for {
			qs, err := st.QueueStats(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if qs.Replicate[High]+qs.Replicate[Normal]+qs.Replicate[Low] == 0 {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitEmpty() // the first round warms up; each iteration redoes it

	var plainTime, repTime, plainCPU, repCPU time.Duration
	b.SetBytes(int64(n) * objSize)
	for b.Loop() {
		// Plain copy of the same files.
		os.RemoveAll(plainRoot)
		os.MkdirAll(plainRoot, 0o755)
		start := time.Now()
		c0 := cpuTime()
		for i, o := range objs {
			p, _ := st.primaryFS.LocalPath(primaryPath(o.ID))
			if err := plainCopy(p, filepath.Join(plainRoot, strconv.Itoa(i))); err != nil {
				b.Fatal(err)
			}
		}
		plainTime += time.Since(start)
		plainCPU += cpuTime() - c0

		// Replication of the same objects: remove the copies and forget
		// them, which queues the objects again (the queue starts at once;
		// the forgetting's index commits are counted in its time).
		os.RemoveAll(secondRoot)
		start = time.Now()
		c0 = cpuTime()
		for _, o := range objs {
			if err := st.forgetCopy(ctx, o, "second"); err != nil {
				b.Fatal(err)
			}
		}
		waitEmpty()
		repTime += time.Since(start)
		repCPU += cpuTime() - c0
	}
	bytes := float64(int64(n)*objSize) * float64(b.N)
	b.ReportMetric(bytes/plainTime.Seconds()/1e6, "plain-MB/s")
	b.ReportMetric(bytes/repTime.Seconds()/1e6, "replicate-MB/s")
	b.ReportMetric(plainTime.Seconds()/repTime.Seconds(), "replicate/plain")
	b.ReportMetric(plainCPU.Seconds()/float64(b.N), "plain-cpu-s")
	b.ReportMetric(repCPU.Seconds()/float64(b.N), "rep-cpu-s")
}

// plainCopy is the baseline: io.Copy between files, then fsync.
func plainCopy(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
