package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/cache"
	httpbackend "github.com/datagate/datagate/backends/http"
	"github.com/datagate/datagate/backends/local"
	"github.com/datagate/datagate/fs"
)

// Throughput benchmarks (make bench):
//
//	go test ./fs/store -run '^$' -bench . -benchtime 3x

func benchStore(b *testing.B, provs map[string]backends.Provider) *Store {
	b.Helper()
	dir := b.TempDir()
	primary, _ := local.New(PrimaryName, local.Config{Root: filepath.Join(dir, "objects")})
	st, err := Open(context.Background(), Options{Dir: dir, Primary: primary, Providers: provs, Cache: cache.Options{MaxSize: 4 << 30}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

func writeBig(b *testing.B, dir string, size int64) string {
	p := filepath.Join(dir, "big.bin")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 13)
	}
	for n := int64(0); n < size; n += int64(len(buf)) {
		f.Write(buf)
	}
	f.Close()
	return p
}

// BenchmarkReadCached1GiB: sequential read of a fully cached 1 GiB
// registered object through the Store (io.Copy, as a front-end would).
func BenchmarkReadCached1GiB(b *testing.B) {
	const size = 1 << 30
	src := b.TempDir()
	writeBig(b, src, size)
	lp, _ := local.New("disk", local.Config{Root: src})
	st := benchStore(b, map[string]backends.Provider{"disk": lp})
	o := &fs.Object{Size: size, Source: fs.Location{Provider: "disk", Path: "big.bin"}}
	if _, err := st.Register(context.Background(), []*fs.Object{o}); err != nil {
		b.Fatal(err)
	}
	readAll(b, st, o.ID) // warm the cache
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		readAll(b, st, o.ID)
	}
}

// readAll reads sequentially in 1 MiB reads, as a front-end does.
func readAll(b *testing.B, st *Store, id fs.ID) {
	r, err := st.Open(context.Background(), id)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		m, err := r.Read(buf)
		n += int64(m)
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatalf("read at %d: %v", n, err)
		}
	}
	if n != r.Size() {
		b.Fatalf("read %d of %d", n, r.Size())
	}
}

// BenchmarkReadCold256MiB vs BenchmarkPlainHTTPGet256MiB: a cold
// sequential read from a loopback HTTP provider (fetch, cache, serve)
// against a plain http.Get of the same file from the same server.
func BenchmarkReadCold256MiB(b *testing.B) { benchReadCold(b, false) }

// BenchmarkReadColdVerified256MiB: as ReadCold, for an object registered
// with its SHA-256, so the read includes the verification at the end.
func BenchmarkReadColdVerified256MiB(b *testing.B) { benchReadCold(b, true) }

// benchReadCold reads a 256 MiB object registered afresh (so not cached)
// in each iteration. Between iterations, outside the timed part, the
// deferred checksum job of an object registered without checksums is
// waited for (it would otherwise run into the next read) and the object's
// cache entry removed, so that the next iteration's cache file reuses its
// page-cache memory, as on a server whose page cache is full. Keeping
// every iteration's 256 MiB would make each read fill never-used memory,
// which on a VM with free page reporting costs a host fault per page and
// caps any file write at a few hundred MB/s: a figure of the VM, not of
// datagate.
func benchReadCold(b *testing.B, withSum bool) {
	const size = 256 << 20
	src := b.TempDir()
	p := writeBig(b, src, size)
	var sum []byte
	if withSum {
		sum = fileSHA256(b, p)
	}
	// Every path serves the file: each iteration registers a new
	// location, hence a new object (the same location would update the
	// object, keeping the checksums the previous read computed).
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, p) }))
	defer srv.Close()
	hp, err := httpbackend.New("web", httpbackend.Config{URL: srv.URL + "/"})
	if err != nil {
		b.Fatal(err)
	}
	st := benchStore(b, map[string]backends.Provider{"web": hp})
	var cpu cpuMeter
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		o := &fs.Object{Size: size, SHA256: sum, Source: fs.Location{Provider: "web", Path: fmt.Sprintf("big%d.bin", i)}}
		if _, err := st.Register(context.Background(), []*fs.Object{o}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		cpu.resume()
		readAll(b, st, o.ID)
		cpu.pause()
		b.StopTimer()
		st.bg.Wait()
		if err := st.cache.Remove(o.ContentKey()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	cpu.report(b)
}

// cpuMeter sums the CPU time of the whole process (user and system, every
// goroutine, the in-process HTTP server included) over the timed parts of
// a benchmark, reported as cpu-ms/op. On a machine shared with other work,
// wall time measures the neighbours as much as the code; CPU time per op
// shows what the code costs.
type cpuMeter struct{ start, total time.Duration }

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (m *cpuMeter) resume() { m.start = cpuNow() }
func (m *cpuMeter) pause()  { m.total += cpuNow() - m.start }

func (m *cpuMeter) report(b *testing.B) {
	b.ReportMetric(float64(m.total.Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

func fileSHA256(b *testing.B, p string) []byte {
	f, err := os.Open(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return h.Sum(nil)
}

func BenchmarkPlainHTTPGet256MiB(b *testing.B) {
	const size = 256 << 20
	src := b.TempDir()
	writeBig(b, src, size)
	srv := httptest.NewServer(http.FileServer(http.Dir(src)))
	defer srv.Close()
	var cpu cpuMeter
	b.SetBytes(size)
	for i := 0; i < b.N; i++ {
		cpu.resume()
		resp, err := http.Get(srv.URL + "/big.bin")
		if err != nil {
			b.Fatal(err)
		}
		// Same 1 MiB reads as readAll, so only the path differs.
		n, _ := io.CopyBuffer(struct{ io.Writer }{io.Discard}, struct{ io.Reader }{resp.Body}, make([]byte, 1<<20))
		resp.Body.Close()
		cpu.pause()
		if n != size {
			b.Fatalf("got %d", n)
		}
	}
	cpu.report(b)
}

// BenchmarkPut256MiB: push through the Store (hash + durable write).
func BenchmarkPut256MiB(b *testing.B) {
	const size = 256 << 20
	st := benchStore(b, nil)
	src := writeBig(b, b.TempDir(), size)
	b.SetBytes(size)
	for i := 0; i < b.N; i++ {
		f, _ := os.Open(src)
		if _, err := st.Put(context.Background(), PutRequest{Name: "big", Size: size}, f); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
