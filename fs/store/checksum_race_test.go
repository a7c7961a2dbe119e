package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/fs"
)

// gatedProvider holds every read of a range not starting at 0 until the
// gate of the moment is closed.
type gatedProvider struct {
	backends.Provider
	mu   sync.Mutex
	gate chan struct{}
}

// hold puts a new gate up and returns it.
func (g *gatedProvider) hold() chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate = make(chan struct{})
	return g.gate
}

func (g *gatedProvider) Open(ctx context.Context, p string, off, n int64) (io.ReadCloser, error) {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if off > 0 {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.Provider.Open(ctx, p, off, n)
}

// A background checksum job queued when a cache entry became whole may run
// after the entry was evicted and a new one, for the same key and at the
// same path, begun. It hashed that half-fetched file, and when the rest
// arrived before it recorded, the object got the sums of its holes: every
// later fetch then failed verification ("does not match its registered
// checksum"), for good. Found by TestSoak (a cache smaller than what is
// read, under load).
func TestBackgroundChecksumsOfAReplacedEntry(t *testing.T) {
	var gp *gatedProvider
	e := newEnvWith(t, func(o *Options) {
		gp = &gatedProvider{Provider: o.Providers["disk"]}
		o.Providers["disk"] = gp
	})
	ctx := ctxT(t)
	data := pattern(4 << 16) // four chunks
	e.write(t, "f.bin", data)
	o := &fs.Object{Name: "f", Size: int64(len(data)), Source: fs.Location{Provider: "disk", Path: "f.bin"}}
	register(t, e.st, o)
	want := sha256.Sum256(data)

	// Whole once (the gate open), its checksum job held back.
	e.st.bgSem <- struct{}{}
	close(gp.hold())
	if b, err := readObject(t, e.st, o.ID); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("first read: %v", err)
	}
	// Evicted, then read again: its first chunk only, the rest held.
	if err := e.st.cache.Remove(o.ContentKey()); err != nil {
		t.Fatal(err)
	}
	gate2 := gp.hold()
	r, err := e.st.Open(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.ReadAt(make([]byte, 100), 0); err != nil {
		t.Fatal(err)
	}

	// The job runs now; once it has hashed, the rest arrives.
	hashed := make(chan struct{})
	e.st.afterChecksums = func() {
		close(gate2)
		if _, err := r.ReadAt(make([]byte, len(data)), 0); err != nil {
			t.Errorf("second read: %v", err)
		}
		close(hashed)
	}
	jobs := make(chan struct{})
	go func() { e.st.bg.Wait(); close(jobs) }()
	<-e.st.bgSem
	select {
	case <-jobs: // gave up: the entry was not whole
		close(gate2)
	case <-hashed:
	case <-time.After(30 * time.Second):
		t.Fatal("the checksum job neither ran nor ended")
	}
	e.st.afterChecksums = nil
	if _, err := r.ReadAt(make([]byte, len(data)), 0); err != nil {
		t.Fatal(err)
	}
	r.Close()
	e.st.bg.Wait()
	got, err := e.st.idx.Get(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.SHA256) > 0 && !bytes.Equal(got.SHA256, want[:]) {
		t.Fatalf("recorded sha256 %x, the content's is %x", got.SHA256, want)
	}
	// Evicted again: the next fetch must verify.
	e.st.cache.Remove(o.ContentKey())
	if b, err := readObject(t, e.st, o.ID); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("read after a new eviction: %v", err)
	}
}

// Cold reads of small objects complete cache entries far faster than
// their checksums can be recorded (an index commit each): the jobs
// waiting for their turn must stay bounded, not pile up as goroutines.
func TestChecksumBacklogIsBounded(t *testing.T) {
	e := newEnv(t)
	data := pattern(1 << 20)
	e.write(t, "f.bin", data)
	n := maxChecksumBacklog + 300
	objs := make([]*fs.Object, n)
	for i := range objs {
		objs[i] = &fs.Object{Name: "o", Size: 100, Source: fs.Location{Provider: "disk", Path: "f.bin", Offset: int64(i * 100), Length: 100}}
	}
	register(t, e.st, objs...)
	e.st.bgSem <- struct{}{} // the running job, holding the others back
	g0 := runtime.NumGoroutine()
	for _, o := range objs {
		if b, err := readObject(t, e.st, o.ID); err != nil || !bytes.Equal(b, data[o.Source.Offset:o.Source.Offset+100]) {
			t.Fatalf("read: %v", err)
		}
	}
	waiting := runtime.NumGoroutine() - g0
	<-e.st.bgSem
	if waiting > maxChecksumBacklog+50 {
		t.Fatalf("%d goroutines more after %d cold reads with the checksum jobs held back, want at most %d waiting", waiting, n, maxChecksumBacklog)
	}
	e.st.bg.Wait()
	ctx := ctxT(t)
	recorded := 0
	for _, o := range objs {
		got, err := e.st.idx.Get(ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.SHA256) > 0 {
			recorded++
			if want := sha256.Sum256(data[o.Source.Offset : o.Source.Offset+100]); !bytes.Equal(got.SHA256, want[:]) {
				t.Fatalf("wrong sum recorded")
			}
		}
	}
	if recorded < maxChecksumBacklog-50 {
		t.Fatalf("sums recorded for %d objects, want those of the %d jobs that waited", recorded, maxChecksumBacklog)
	}
	t.Logf("%d cold reads: %d goroutines waiting, %d sums recorded", n, waiting, recorded)
}

// Hashing a small object's content allocates about its size, not a
// 1 MiB buffer: every cold read of one is hashed.
func TestHashingSmallContentAllocatesLittle(t *testing.T) {
	e := newEnv(t)
	data := pattern(4096)
	e.write(t, "small.bin", data)
	f, err := os.Open(filepath.Join(e.srcRoot, "small.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := ctxT(t)
	const runs = 50
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		h := sha256.New()
		if err := hashSerial(ctx, f, int64(len(data)), h); err != nil {
			t.Fatal(err)
		}
		if err := hashFile(ctx, f, int64(len(data)), h); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 64<<10 {
		t.Fatalf("hashing 4 KiB twice allocated %d bytes", per)
	}
}
