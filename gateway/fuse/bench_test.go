package fuse

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"net/http"
	"net/http/httptest"

	ffs "github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/datagate/datagate/backends"
	httpbackend "github.com/datagate/datagate/backends/http"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/views"
)

// The benchmarks compare the mount with the same work on a plain local
// directory (or the cache file itself) in the same run, and report the
// ratio: the machine is shared and noisy, ratios are what count. Run
// them with make bench-fuse (-benchtime 1x: each is one long measurement).

// cpuOf returns the CPU time f costs: this process's (every goroutine:
// the mount's server, the store, an in-process HTTP server) and that of
// the children it waited for (curl). Unlike times, CPU costs hardly move
// with the machine's load.
func cpuOf(f func()) time.Duration {
	used := func() time.Duration {
		var s, c syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &s)
		syscall.Getrusage(syscall.RUSAGE_CHILDREN, &c)
		return time.Duration(s.Utime.Nano() + s.Stime.Nano() + c.Utime.Nano() + c.Stime.Nano())
	}
	before := used()
	f()
	return used() - before
}

func timeIt(b *testing.B, f func()) time.Duration {
	b.Helper()
	start := time.Now()
	f()
	return time.Since(start)
}

// bestOf runs native and mount alternately n times and returns the best
// time of each.
func bestOf(n int, native, mount func() time.Duration) (time.Duration, time.Duration) {
	bn, bm := time.Duration(1<<62), time.Duration(1<<62)
	for i := 0; i < n; i++ {
		bn, bm = min(bn, native()), min(bm, mount())
	}
	return bn, bm
}

func readAll(b *testing.B, p string, buf []byte) int64 {
	b.Helper()
	f, err := os.Open(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var n int64
	for {
		m, err := f.Read(buf)
		n += int64(m)
		if err == io.EOF {
			return n
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// cachedObject registers a size-byte object and reads it once through the
// mount, so it is whole in the cache; it returns its mount path and the
// cache file's path.
func cachedObject(b *testing.B, e *env, size int64) (string, string) {
	b.Helper()
	rel := "p/big.bin"
	full := filepath.Join(e.dir, "src", rel)
	os.MkdirAll(filepath.Dir(full), 0o755)
	f, err := os.Create(full)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		b.Fatal(err)
	}
	f.Close()
	e.registerAt(b, "big.bin", rel, size, map[string]string{"type": "fc", "date": "2026-11-22"})
	mp := e.path("fc/big.bin")
	readAll(b, mp, make([]byte, 1<<20)) // cold: fills and verifies the cache
	tree := views.NewTree(views.TreeOptions{Set: e.set, Store: e.st, User: "x", Profile: views.Profile{Views: map[string]views.Rights{"by-type": views.Read}}})
	vf, err := tree.Open(context.Background(), "/fc/big.bin")
	if err != nil {
		b.Fatal(err)
	}
	defer vf.Close()
	lf, ok := vf.File()
	if !ok {
		b.Fatal("the object is not whole in the cache after a full read")
	}
	return mp, lf.Name()
}

func BenchmarkSeqRead1GiB(b *testing.B) {
	e := newEnvSync(b, map[string]views.Rights{"by-type": views.Read}, Options{}, true)
	mp, cp := cachedObject(b, e, 1<<30)
	buf := make([]byte, 1<<20)
	for i := 0; i < b.N; i++ {
		readAll(b, cp, buf) // warm the page cache for both
		// best of 3, alternating: the machine is shared
		native, mount := time.Hour, time.Hour
		for r := 0; r < 3; r++ {
			native = min(native, timeIt(b, func() { readAll(b, cp, buf) }))
			mount = min(mount, timeIt(b, func() { readAll(b, mp, buf) }))
		}
		b.ReportMetric(float64(1<<30)/native.Seconds()/1e6, "native-MB/s")
		b.ReportMetric(float64(1<<30)/mount.Seconds()/1e6, "mount-MB/s")
		b.ReportMetric(native.Seconds()/mount.Seconds(), "x-native")
	}
}

func BenchmarkRandRead4K(b *testing.B) {
	e := newEnvSync(b, map[string]views.Rights{"by-type": views.Read}, Options{}, true)
	const size = 256 << 20
	mp, cp := cachedObject(b, e, size)
	const reads = 50000
	offs := make([]int64, reads)
	for i := range offs {
		offs[i] = mrand.Int64N(size/4096) * 4096
	}
	pread := func(p string) time.Duration {
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		buf := make([]byte, 4096)
		return timeIt(b, func() {
			for _, off := range offs {
				if _, err := f.ReadAt(buf, off); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for i := 0; i < b.N; i++ {
		pread(cp)
		native, mount := bestOf(3, func() time.Duration { return pread(cp) }, func() time.Duration { return pread(mp) })
		b.ReportMetric(reads/native.Seconds(), "native-IOPS")
		b.ReportMetric(reads/mount.Seconds(), "mount-IOPS")
		b.ReportMetric(native.Seconds()/mount.Seconds(), "x-native")
	}
}

// loopback mounts go-fuse's own loopback file system over dir: the floor
// of what any go-fuse file system costs here (same timeouts as ours).
func loopback(b *testing.B, dir string) string {
	b.Helper()
	root, err := ffs.NewLoopbackRoot(dir)
	if err != nil {
		b.Fatal(err)
	}
	mnt := b.TempDir()
	sec := time.Second
	srv, err := ffs.Mount(mnt, root, &ffs.Options{EntryTimeout: &sec, AttrTimeout: &sec,
		MountOptions: gofuse.MountOptions{DirectMount: true, MaxWrite: 1 << 20}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Unmount() })
	return mnt
}

// plainDir makes n empty files in a new local directory.
func plainDir(b *testing.B, n int, content []byte) string {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "plain")
	os.Mkdir(dir, 0o755)
	for i := 0; i < n; i++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%07d", i)), content, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

func run(b *testing.B, name string, args ...string) time.Duration {
	b.Helper()
	return timeIt(b, func() {
		cmd := exec.Command(name, args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s %v: %v %s", name, args, err, out)
		}
	})
}

// forget drops every name and listing the kernel keeps for the mount,
// as the change feed does after missed changes: the next pass is a cold
// one for the kernel (datagate's own caches stay warm).
func (e *env) forget() {
	e.m.fsys.invalidateAll()
}

// settle waits until the change feed has been quiet for half a second:
// a bulk registration's events, applied late, would drop what the kernel
// keeps in the middle of a measurement.
func (e *env) settle() {
	for {
		at := time.Unix(0, e.m.fsys.eventAt.Load())
		if time.Since(at) > 500*time.Millisecond {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dropCaches empties the kernel's page, dentry and inode caches for the
// whole machine (root only), so that a native pass is cold as well: the
// plain directory's inodes and blocks, and the index's files, come from
// the disk again. false when it cannot.
func dropCaches() bool {
	syscall.Sync() // only clean pages are dropped
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0) == nil
}

// The listing, stat and cat benchmarks report a first pass with the
// kernel's caches cold (every name a LOOKUP, every listing read from us)
// and the steady state (the kernel keeps what the change feed has not
// invalidated), each as a ratio to the best of native passes in the same
// run. The loopback floor has go-fuse's usual 1 s timeouts, so only its
// first pass compares.

func BenchmarkListDir100k(b *testing.B) {
	e := newEnv(b, map[string]views.Rights{"by-type": views.Read}, Options{})
	const n = 100_000
	e.registerMany(b, "big", n)
	plain := plainDir(b, n, nil)
	big := e.path("big")
	e.settle()
	for i := 0; i < b.N; i++ {
		run(b, "ls", "-f", plain) // warm
		cold := func(args ...string) func() time.Duration {
			return func() time.Duration { e.forget(); return run(b, args[0], args[1:]...) }
		}
		nls, cls := bestOf(3, func() time.Duration { return run(b, "ls", "-f", plain) }, cold("ls", "-f", big))
		_, mls := bestOf(3, func() time.Duration { return 0 }, func() time.Duration { return run(b, "ls", "-f", big) })
		nfind, cfind := bestOf(3, func() time.Duration { return run(b, "find", plain) }, cold("find", big))
		_, mfind := bestOf(3, func() time.Duration { return 0 }, func() time.Duration { return run(b, "find", big) })
		lb := loopback(b, plain)
		_, fls := bestOf(3, func() time.Duration { return 0 }, func() time.Duration { return run(b, "ls", "-f", lb) })
		b.ReportMetric(fls.Seconds()/nls.Seconds(), "loopback-ls-x")
		b.ReportMetric(cls.Seconds()/nls.Seconds(), "ls-cold-x")
		b.ReportMetric(mls.Seconds()/nls.Seconds(), "ls-steady-x")
		b.ReportMetric(cfind.Seconds()/nfind.Seconds(), "find-cold-x")
		b.ReportMetric(mfind.Seconds()/nfind.Seconds(), "find-steady-x")
		b.ReportMetric(nls.Seconds(), "native-ls-s")
		// Both cold: the native pass after the machine's caches are
		// dropped, the mount's after its kernel caches are forgotten and
		// the machine's dropped (the index's pages too).
		if dropCaches() {
			dropped := func(args ...string) func() time.Duration {
				return func() time.Duration { e.forget(); dropCaches(); return run(b, args[0], args[1:]...) }
			}
			nls, cls := bestOf(2, dropped("ls", "-f", plain), dropped("ls", "-f", big))
			nfind, cfind := bestOf(2, dropped("find", plain), dropped("find", big))
			b.ReportMetric(cls.Seconds()/nls.Seconds(), "ls-dropped-x")
			b.ReportMetric(cfind.Seconds()/nfind.Seconds(), "find-dropped-x")
			b.ReportMetric(nls.Seconds(), "native-ls-dropped-s")
		}
	}
}

func BenchmarkStat10k(b *testing.B) {
	e := newEnv(b, map[string]views.Rights{"by-type": views.Read}, Options{})
	const n = 10_000
	e.registerMany(b, "many", n)
	plain := plainDir(b, n, []byte("abc"))
	e.settle()
	stat := func(dir string) time.Duration {
		return timeIt(b, func() {
			for j := 0; j < n; j++ {
				if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("f%07d", j))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for i := 0; i < b.N; i++ {
		stat(plain)
		// Cold: every name is a LOOKUP; steady: kernel cache hits.
		ccpu := time.Duration(1 << 62)
		native, cold := bestOf(3, func() time.Duration { return stat(plain) }, func() (d time.Duration) {
			e.forget()
			ccpu = min(ccpu, cpuOf(func() { d = stat(e.path("many")) }))
			return d
		})
		_, steady := bestOf(3, func() time.Duration { return 0 }, func() time.Duration { return stat(e.path("many")) })
		var floor time.Duration
		lb := loopback(b, plain)
		fcpu := cpuOf(func() { floor = stat(lb) })
		b.ReportMetric(float64(ccpu.Microseconds())/n, "cold-cpu-us/stat")
		b.ReportMetric(float64(fcpu.Microseconds())/n, "loopback-cpu-us/stat")
		b.ReportMetric(floor.Seconds()/native.Seconds(), "loopback-x")
		b.ReportMetric(cold.Seconds()/native.Seconds(), "cold-x")
		b.ReportMetric(steady.Seconds()/native.Seconds(), "steady-x")
		b.ReportMetric(native.Seconds(), "native-s")
		if dropCaches() { // both cold, as in BenchmarkListDir100k
			native, cold := bestOf(2, func() time.Duration { dropCaches(); return stat(plain) },
				func() time.Duration { e.forget(); dropCaches(); return stat(e.path("many")) })
			b.ReportMetric(cold.Seconds()/native.Seconds(), "dropped-x")
			b.ReportMetric(native.Seconds(), "native-dropped-s")
		}
	}
}

func BenchmarkCatSmall10k(b *testing.B) { catSmall(b, Options{}) }

// The same on a read-only mount, whose files open without a round trip
// (no_open, file.go): a steady cat is the kernel's alone.
func BenchmarkCatSmall10kReadOnly(b *testing.B) { catSmall(b, Options{ReadOnly: true}) }

func catSmall(b *testing.B, opts Options) {
	e := newEnv(b, map[string]views.Rights{"by-type": views.All}, opts)
	const n = 10_000
	content := bytes.Repeat([]byte("x"), 2000)
	tree := views.NewTree(views.TreeOptions{Set: e.set, Store: e.st, User: "x", Profile: views.Profile{Views: map[string]views.Rights{"by-type": views.All}}})
	for j := 0; j < n; j++ { // stored objects: whole on local disk
		if _, err := tree.Create(context.Background(), fmt.Sprintf("/small/f%07d", j), bytes.NewReader(content), views.CreateOptions{Size: int64(len(content))}); err != nil {
			b.Fatal(err)
		}
	}
	plain := plainDir(b, n, content)
	e.settle()
	buf := make([]byte, 128<<10)
	cat := func(dir string) time.Duration {
		return timeIt(b, func() {
			for j := 0; j < n; j++ {
				readAll(b, filepath.Join(dir, fmt.Sprintf("f%07d", j)), buf)
			}
		})
	}
	for i := 0; i < b.N; i++ {
		cat(plain)
		// The first pass reads every file from the store (no page
		// kept yet, every name a LOOKUP); then the kernel keeps pages
		// and names, and a cat is OPEN (+ RELEASE) only.
		first := cat(e.path("small"))
		ncpu, scpu := time.Duration(1<<62), time.Duration(1<<62)
		native, steady := bestOf(3, func() (d time.Duration) {
			ncpu = min(ncpu, cpuOf(func() { d = cat(plain) }))
			return d
		}, func() (d time.Duration) {
			scpu = min(scpu, cpuOf(func() { d = cat(e.path("small")) }))
			return d
		})
		// CPU per file (client, kernel and server together): what a
		// loaded machine's times hide.
		b.ReportMetric(float64(ncpu.Microseconds())/n, "native-cpu-us/file")
		b.ReportMetric(float64(scpu.Microseconds())/n, "steady-cpu-us/file")
		lb := loopback(b, plain)
		_, floor := bestOf(3, func() time.Duration { return 0 }, func() time.Duration { return cat(lb) })
		b.ReportMetric(native.Seconds()/floor.Seconds(), "loopback-x")
		b.ReportMetric(native.Seconds()/first.Seconds(), "first-x")
		b.ReportMetric(native.Seconds()/steady.Seconds(), "steady-x")
		b.ReportMetric(n/steady.Seconds(), "steady-files/s")
		b.ReportMetric(n/native.Seconds(), "native-files/s")
	}
}

func BenchmarkWrite256MiB(b *testing.B) {
	e := newEnvSync(b, map[string]views.Rights{"by-type": views.All}, Options{}, true)
	const size = 256 << 20
	chunk := make([]byte, 1<<20)
	rand.Read(chunk)
	var tail time.Duration // of the last write: fsync and close
	var cpu time.Duration  // of the last write
	write := func(p string) (d time.Duration) {
		cpu = cpuOf(func() {
			d = timeIt(b, func() {
				f, err := os.Create(p)
				if err != nil {
					b.Fatal(err)
				}
				for w := 0; w < size; w += len(chunk) {
					if _, err := f.Write(chunk); err != nil {
						b.Fatal(err)
					}
				}
				start := time.Now()
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				if err := f.Close(); err != nil {
					b.Fatal(err)
				}
				tail = time.Since(start)
			})
		})
		return d
	}
	// settled waits for the store's work that follows a push (its MD5 is
	// computed after close), so that it does not count in the next pass.
	settled := func(p string) {
		for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if o, err := e.m.fsys.tree.Object(context.Background(), p); err == nil && len(o.MD5) > 0 {
				return
			}
		}
		b.Fatalf("%s: no MD5 recorded after 30 s", p)
	}
	plain := b.TempDir()
	os.Mkdir(e.path("w"), 0o755)
	for i := 0; i < b.N; i++ {
		k := 0
		var mtail time.Duration
		ncpu, mcpu := time.Duration(1<<62), time.Duration(1<<62)
		native, mount := bestOf(2, func() time.Duration {
			k++
			d := write(filepath.Join(plain, fmt.Sprintf("w%d", k)))
			ncpu = min(ncpu, cpu)
			return d
		}, func() time.Duration {
			k++
			d := write(e.path(fmt.Sprintf("w/w%d", k)))
			mtail, mcpu = tail, min(mcpu, cpu)
			settled(fmt.Sprintf("/w/w%d", k))
			return d
		})
		b.ReportMetric(ncpu.Seconds(), "native-cpu-s")
		b.ReportMetric(mcpu.Seconds(), "mount-cpu-s")
		b.ReportMetric(mtail.Seconds(), "mount-fsync-close-s")
		b.ReportMetric(size/mount.Seconds()/1e6, "mount-MB/s")
		b.ReportMetric(native.Seconds()/mount.Seconds(), "x-native")
	}
}

func BenchmarkColdHTTP256MiB(b *testing.B) {
	if _, err := exec.LookPath("curl"); err != nil {
		b.Skip("curl is not installed")
	}
	const size = 256 << 20
	src := filepath.Join(b.TempDir(), "cold.bin")
	f, _ := os.Create(src)
	io.CopyN(f, rand.Reader, size)
	f.Close()
	// Every path serves the same file: each round registers a new
	// location, so each is a new object, cold.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, src) }))
	defer srv.Close()
	web, err := httpbackend.New("web", httpbackend.Config{URL: srv.URL + "/"})
	if err != nil {
		b.Fatal(err)
	}
	// The production cache geometry: 4 MiB chunks, read-ahead 4.
	e := newEnvWith(b, map[string]views.Rights{"by-type": views.Read}, Options{}, envConfig{sync: true, chunk: 4 << 20, providers: map[string]backends.Provider{"web": web}})
	buf := make([]byte, 1<<20)
	for i := 0; i < b.N; i++ {
		curl, ccpu := time.Duration(1<<62), time.Duration(1<<62)
		for r := 0; r < 3; r++ {
			var d time.Duration
			ccpu = min(ccpu, cpuOf(func() { d = run(b, "curl", "-sSf", "-o", "/dev/null", srv.URL+"/cold.bin") }))
			curl = min(curl, d)
		}
		mount, mcpu := time.Duration(1<<62), time.Duration(1<<62)
		for r := 0; r < 3; r++ {
			name := fmt.Sprintf("cold%d-%d.bin", i, r)
			o := &fs.Object{Name: name, Meta: map[string]string{"type": "web"}, Size: size, Source: fs.Location{Provider: "web", Path: name}}
			if _, err := e.st.Register(context.Background(), []*fs.Object{o}); err != nil {
				b.Fatal(err)
			}
			var d time.Duration
			mcpu = min(mcpu, cpuOf(func() { d = timeIt(b, func() { readAll(b, e.path("web/"+name), buf) }) }))
			mount = min(mount, d)
			// The checksums of content fetched without any are computed
			// once it is whole, in the background: not in the next pass.
			for end := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if o, err := e.m.fsys.tree.Object(context.Background(), "/web/"+name); err == nil && o.State >= fs.StateCached {
					break
				}
				if time.Now().After(end) {
					b.Fatal("the cold object is not Cached 30 s after its read")
				}
			}
		}
		b.ReportMetric(ccpu.Seconds(), "curl-cpu-s")
		b.ReportMetric(mcpu.Seconds(), "mount-cpu-s")
		b.ReportMetric(size/mount.Seconds()/1e6, "mount-MB/s")
		b.ReportMetric(size/curl.Seconds()/1e6, "curl-MB/s")
		b.ReportMetric(curl.Seconds()/mount.Seconds(), "x-curl")
	}
}
