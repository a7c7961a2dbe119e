package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// source is a fake content source: in-memory bytes, a log of the fetched
// offsets, and knobs to block, shorten or fail fetches and verification.
type source struct {
	key  string
	data []byte

	mu    sync.Mutex
	calls [][2]int64 // offset and length of Fetch calls, in call order

	gate      chan struct{} // if set, Fetch blocks until it is closed or ctx ends
	short     atomic.Int32  // this many fetches yield one byte less
	forbidden *testing.T    // if set, any Fetch fails this test
	ctxEnded  atomic.Int32  // fetches that saw their ctx end while gated
	verifyErr error         // returned by Verify after checking nothing
	verifies  atomic.Int32
}

func newSource(key string, size int, seed uint64) *source {
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	return &source{key: key, data: data}
}

func (s *source) Source() Source {
	want := sha256.Sum256(s.data)
	return Source{
		Key:  s.key,
		Size: int64(len(s.data)),
		Fetch: func(ctx context.Context, off, length int64) (io.ReadCloser, error) {
			if s.forbidden != nil {
				s.forbidden.Errorf("Fetch(%s, %d, %d) called; content should be cached", s.key, off, length)
				return nil, errors.New("forbidden fetch")
			}
			s.mu.Lock()
			s.calls = append(s.calls, [2]int64{off, length})
			s.mu.Unlock()
			if s.gate != nil {
				select {
				case <-s.gate:
				case <-ctx.Done():
					s.ctxEnded.Add(1)
					return nil, ctx.Err()
				}
			}
			end := off + length
			if s.short.Add(-1) >= 0 {
				end--
			}
			return io.NopCloser(bytes.NewReader(s.data[off:end])), nil
		},
		Verify: func(ctx context.Context, f *os.File) error {
			s.verifies.Add(1)
			if s.verifyErr != nil {
				return s.verifyErr
			}
			h := sha256.New()
			if _, err := io.Copy(h, io.NewSectionReader(f, 0, int64(len(s.data)))); err != nil {
				return err
			}
			if !bytes.Equal(h.Sum(nil), want[:]) {
				return errors.New("sha256 mismatch")
			}
			return nil
		},
	}
}

// fetched returns the offsets of the Fetch calls, in call order.
func (s *source) fetched() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	offs := make([]int64, len(s.calls))
	for i, c := range s.calls {
		offs[i] = c[0]
	}
	return offs
}

// chunkFetches counts how many Fetch calls covered each chunk (by index):
// one request may fill several chunks.
func (s *source) chunkFetches(chunk int64) map[int64]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	counts := map[int64]int{}
	for _, c := range s.calls {
		if c[0]%chunk != 0 {
			panic(fmt.Sprintf("fetch at %d not chunk aligned", c[0]))
		}
		for i := c[0] / chunk; i*chunk < c[0]+c[1]; i++ {
			counts[i]++
		}
	}
	return counts
}

// total sums chunkFetches' counts.
func total(counts map[int64]int) int {
	n := 0
	for _, v := range counts {
		n += v
	}
	return n
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newCache(t *testing.T, opts Options) *Cache {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func open(t *testing.T, c *Cache, s *source) *File {
	t.Helper()
	f, err := c.Open(testCtx(t), s.Source())
	if err != nil {
		t.Fatalf("Open %s: %v", s.key, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readAll(t *testing.T, f *File) []byte {
	t.Helper()
	got, err := io.ReadAll(io.NewSectionReader(f, 0, f.Size()))
	if err != nil {
		t.Fatalf("read %s: %v", f.e.key, err)
	}
	return got
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waiters returns how many readers wait on the fetch of chunk i.
func waiters(e *entry, i int64) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if fe := e.inflight[i]; fe != nil {
		return fe.waiters
	}
	return 0
}

func TestConcurrentReadersFetchOnce(t *testing.T) {
	c := newCache(t, Options{ChunkSize: 64 << 10, ReadAhead: -1})
	s := newSource("one", 100<<10, 1)
	s.gate = make(chan struct{})
	shared := open(t, c, s)
	const readers = 12
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for r := range readers {
		f := shared
		if r%2 == 1 {
			f = open(t, c, s) // half through their own File
		}
		wg.Go(func() {
			p := make([]byte, 1000)
			off := int64(r * 3000)
			if _, err := f.ReadAt(p, off); err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(p, s.data[off:off+1000]) {
				errs <- fmt.Errorf("reader %d: wrong bytes", r)
			}
		})
	}
	eventually(t, "all readers waiting", func() bool { return waiters(shared.e, 0) == readers })
	close(s.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := s.fetched(); len(got) != 1 || got[0] != 0 {
		t.Errorf("fetches = %v, want exactly one of chunk 0", got)
	}
}

func TestRangesSpanningChunks(t *testing.T) {
	c := newCache(t, Options{ChunkSize: 4096, ReadAhead: -1})
	s := newSource("ranges", 10*4096+123, 2)
	f := open(t, c, s)
	size := int64(len(s.data))
	r := rand.New(rand.NewPCG(3, 4))
	ranges := [][2]int64{{4090, 20}, {0, 3 * 4096}, {size - 200, 200}, {size - 10, 100}, {5000, 9000}}
	for range 50 {
		off := r.Int64N(size)
		ranges = append(ranges, [2]int64{off, 1 + r.Int64N(3*4096)})
	}
	for _, rg := range ranges {
		p := make([]byte, rg[1])
		n, err := f.ReadAt(p, rg[0])
		want := s.data[rg[0]:min(rg[0]+rg[1], size)]
		if rg[0]+rg[1] > size {
			if err != io.EOF {
				t.Errorf("ReadAt(%d,+%d) past the end: err %v, want io.EOF", rg[0], rg[1], err)
			}
		} else if err != nil {
			t.Fatalf("ReadAt(%d,+%d): %v", rg[0], rg[1], err)
		}
		if !bytes.Equal(p[:n], want) {
			t.Fatalf("ReadAt(%d,+%d): %d bytes, wrong content", rg[0], rg[1], n)
		}
	}
	if n, err := f.ReadAt(make([]byte, 1), size); n != 0 || err != io.EOF {
		t.Errorf("ReadAt at the end = %d, %v; want 0, EOF", n, err)
	}
	if _, err := f.ReadAt(make([]byte, 1), -1); !errors.Is(err, iofs.ErrInvalid) {
		t.Errorf("ReadAt at -1: %v, want ErrInvalid", err)
	}
	// Through the cursor: Seek + Read.
	if _, err := f.Seek(4000, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(rest, s.data[4000:]) {
		t.Fatalf("Read from 4000: %d bytes, err %v", len(rest), err)
	}
	if pos, _ := f.Seek(-5, io.SeekEnd); pos != size-5 {
		t.Errorf("Seek(-5, End) = %d", pos)
	}
	if !f.Complete() {
		t.Error("entry not complete after reading everything")
	}
	counts := s.chunkFetches(4096)
	if len(counts) != 11 {
		t.Errorf("fetched %d distinct chunks, want 11", len(counts))
	}
	for off, n := range counts {
		if n != 1 {
			t.Errorf("chunk at %d fetched %d times", off, n)
		}
	}
	if v := s.verifies.Load(); v != 1 {
		t.Errorf("Verify called %d times", v)
	}
}

func TestShortFetch(t *testing.T) {
	c := newCache(t, Options{ChunkSize: 4096, ReadAhead: -1})
	s := newSource("short", 3*4096, 5)
	s.short.Store(1)
	f := open(t, c, s)
	p := make([]byte, 4096)
	if _, err := f.ReadAt(p, 4096); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short fetch: err %v, want ErrUnexpectedEOF", err)
	}
	if info, ok := c.Lookup(s.key); !ok || info.Present != 0 {
		t.Fatalf("after a short fetch Lookup = %+v, %v; want nothing present", info, ok)
	}
	if _, err := f.ReadAt(p, 4096); err != nil || !bytes.Equal(p, s.data[4096:8192]) {
		t.Fatalf("refetch: %v", err)
	}
	if got := s.fetched(); len(got) != 2 {
		t.Errorf("fetches %v, want the chunk fetched twice", got)
	}
	if info, _ := c.Lookup(s.key); info.Present != 4096 {
		t.Errorf("Present = %d, want 4096", info.Present)
	}
}

func TestVerifyFailureDropsEntry(t *testing.T) {
	ctx := testCtx(t)
	c := newCache(t, Options{ChunkSize: 4096, ReadAhead: -1})
	s := newSource("bad", 2*4096+10, 6)
	wrong := errors.New("checksum mismatch")
	s.verifyErr = wrong
	f := open(t, c, s)
	p := make([]byte, 4096)
	if _, err := f.ReadAt(p, 0); err != nil {
		t.Fatalf("first chunk: %v", err)
	}
	dataPath := f.e.dataPath
	// This read completes the entry: it gets the verdict.
	if _, err := f.ReadAt(p, 4096+10); !errors.Is(err, wrong) {
		t.Fatalf("completing read: err %v, want %v", err, wrong)
	}
	if _, err := f.ReadAt(p[:5], 0); !errors.Is(err, wrong) {
		t.Errorf("later read: err %v, want %v", err, wrong)
	}
	if info, ok := c.Lookup(s.key); ok {
		t.Errorf("Lookup after failed verify = %+v", info)
	}
	if _, err := os.Stat(dataPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data file still there: %v", err)
	}
	if b, n := c.Usage(); b != 0 || n != 0 {
		t.Errorf("Usage = %d bytes, %d entries; want 0, 0", b, n)
	}
	f.Close()

	// A later Open refetches; now the content checks out.
	s.verifyErr = nil
	g, err := c.Open(ctx, s.Source())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if got := readAll(t, g); !bytes.Equal(got, s.data) {
		t.Fatal("refetched content differs")
	}
	if n := total(s.chunkFetches(4096)); !g.Complete() || n != 6 || s.verifies.Load() != 2 {
		t.Errorf("complete %v, %d chunk fetches (want each of 3 twice), verifies %d", g.Complete(), n, s.verifies.Load())
	}
}

func TestVerifySuccessDataFile(t *testing.T) {
	c := newCache(t, Options{ChunkSize: 4096, ReadAhead: 8, Fetchers: 4})
	s := newSource("good", 20*4096+1, 7)
	f := open(t, c, s)
	if _, ok := f.DataFile(); ok {
		t.Error("DataFile offered before the entry is complete")
	}
	// Concurrent readers finish chunks in parallel; Verify still runs once.
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Go(func() {
			p := make([]byte, 4096)
			for off := int64(r * 4096); off < f.Size(); off += 4 * 4096 {
				if _, err := f.ReadAt(p, off); err != nil && err != io.EOF {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if !f.Complete() {
		t.Fatal("not complete")
	}
	if v := s.verifies.Load(); v != 1 {
		t.Errorf("Verify called %d times", v)
	}
	df, ok := f.DataFile()
	if !ok {
		t.Fatal("no DataFile when complete")
	}
	g := open(t, c, s)
	dg, _ := g.DataFile()
	if df == dg {
		t.Fatal("two Files share one data file description")
	}
	if _, err := df.Seek(100, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(dg) // its own offset, still 0
	if err != nil || !bytes.Equal(got, s.data) {
		t.Fatalf("DataFile content: %d bytes, %v", len(got), err)
	}
	info, ok := c.Lookup(s.key)
	if !ok || !info.Complete || info.Present != int64(len(s.data)) || info.Path != df.Name() {
		t.Errorf("Lookup = %+v, %v", info, ok)
	}
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, ChunkSize: 4096, ReadAhead: -1}
	c1, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	whole := newSource("whole", 5*4096+7, 8)
	part := newSource("part", 5*4096, 9)
	others := make([]*source, 20)
	ctx := testCtx(t)
	for i := range others {
		others[i] = newSource(fmt.Sprintf("o%d", i), 1000+i, uint64(10+i))
	}
	for _, s := range append([]*source{whole}, others...) {
		f, err := c1.Open(ctx, s.Source())
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, f)
		f.Close()
	}
	fp, err := c1.Open(ctx, part.Source())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fp.ReadAt(make([]byte, 10), 2*4096+5); err != nil {
		t.Fatal(err)
	}
	fp.Close()
	wantBytes, wantEntries := c1.Usage()
	if err := c1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	c2 := newCache(t, opts)
	for _, s := range []*source{whole, part} {
		s.forbidden = t
	}
	// Open before the walk is done must not count the entry twice.
	fw, err := c2.Open(ctx, whole.Source())
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	if !fw.Complete() {
		t.Error("complete entry not complete after restart")
	}
	if got := readAll(t, fw); !bytes.Equal(got, whole.data) {
		t.Error("restarted content differs")
	}
	if _, ok := fw.DataFile(); !ok {
		t.Error("no DataFile after restart")
	}
	fp2 := open(t, c2, part)
	p := make([]byte, 4096)
	if _, err := fp2.ReadAt(p, 2*4096); err != nil || !bytes.Equal(p, part.data[2*4096:3*4096]) {
		t.Errorf("partial entry chunk after restart: %v", err)
	}
	if info, ok := c2.Lookup(part.key); !ok || info.Complete || info.Present != 4096 {
		t.Errorf("Lookup(part) = %+v, %v", info, ok)
	}
	<-c2.Loaded()
	if b, n := c2.Usage(); b != wantBytes || n != wantEntries {
		t.Errorf("Usage after restart = %d, %d; want %d, %d", b, n, wantBytes, wantEntries)
	}
	if v := whole.verifies.Load(); v != 1 {
		t.Errorf("Verify called %d times across the restart", v)
	}
}

func TestLeftoversAndCorruptState(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, ChunkSize: 4096, ReadAhead: -1}
	c1, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	good, bad := newSource("good", 4096, 1), newSource("bad", 4096, 2)
	for _, s := range []*source{good, bad} {
		f, err := c1.Open(testCtx(t), s.Source())
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, f)
		f.Close()
	}
	c1.Close()
	// A torn sidecar, and a data file whose sidecar was never written.
	_, badState := c1.paths("bad")
	if err := os.WriteFile(badState, []byte("DGCACHE1 torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	orphan, _ := c1.paths("orphan")
	os.MkdirAll(filepath.Dir(orphan), 0o700)
	if err := os.WriteFile(orphan, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	c2 := newCache(t, opts)
	<-c2.Loaded()
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("orphan data file kept: %v", err)
	}
	if _, ok := c2.Lookup("bad"); ok {
		t.Error("entry with a torn sidecar still listed")
	}
	if info, ok := c2.Lookup("good"); !ok || !info.Complete {
		t.Errorf("good entry lost: %+v, %v", info, ok)
	}
	if b, n := c2.Usage(); b != 4096 || n != 1 {
		t.Errorf("Usage = %d, %d; want 4096, 1", b, n)
	}
	// The torn entry is simply fetched again.
	if got := readAll(t, open(t, c2, bad)); !bytes.Equal(got, bad.data) || len(bad.fetched()) != 2 {
		t.Errorf("torn entry not refetched: fetches %v", bad.fetched())
	}
}

func TestLRUEviction(t *testing.T) {
	const chunk = 4096
	c := newCache(t, Options{ChunkSize: chunk, MaxSize: 10 * chunk, ReadAhead: -1})
	srcs := map[string]*source{}
	fill := func(key string) {
		s := newSource(key, 4*chunk, uint64(len(srcs)+1))
		srcs[key] = s
		f, err := c.Open(testCtx(t), s.Source())
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, f)
		f.Close()
	}
	touch := func(key string) {
		f, err := c.Open(testCtx(t), srcs[key].Source())
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	gone := func(key string) bool { _, ok := c.Lookup(key); return !ok }

	fill("a")
	fill("b")
	touch("a") // b is now the least recently used
	fill("c")  // 12 chunks > 10: b must go
	eventually(t, "b evicted", func() bool { return gone("b") })
	if gone("a") || gone("c") {
		t.Fatal("evicted more than the least recently used entry")
	}
	if b, n := c.Usage(); b != 8*chunk || n != 2 {
		t.Errorf("Usage = %d, %d; want %d, 2", b, n, 8*chunk)
	}

	// An open entry is never evicted, even when it is the oldest.
	held := open(t, c, srcs["a"])
	fill("d") // a (open), c, d: c goes
	eventually(t, "c evicted", func() bool { return gone("c") })
	fill("e") // a (open), d, e: d goes
	eventually(t, "d evicted", func() bool { return gone("d") })
	if gone("a") {
		t.Fatal("open entry evicted")
	}
	// Everything pinned: overshoot rather than evict an open entry.
	big := newSource("big", 12*chunk, 99)
	fb := open(t, c, big)
	readAll(t, fb)
	eventually(t, "e evicted", func() bool { return gone("e") })
	c.evict()
	if gone("a") || gone("big") {
		t.Fatal("open entry evicted while over the cap")
	}
	if b, _ := c.Usage(); b != 16*chunk {
		t.Errorf("Usage = %d, want the overshoot %d", b, 16*chunk)
	}
	if got := readAll(t, held); !bytes.Equal(got, srcs["a"].data) {
		t.Error("open entry content changed")
	}
	fb.Close()
	eventually(t, "big evicted once closed", func() bool { c.evict(); return gone("big") })
}

func TestReadAhead(t *testing.T) {
	const chunk = 4096
	c := newCache(t, Options{ChunkSize: chunk, ReadAhead: 4})
	s := newSource("seq", 16*chunk, 11)
	f := open(t, c, s)
	p := make([]byte, 1024)
	// Four sequential reads within chunk 0 ramp the window up to 4.
	for off := int64(0); off < chunk; off += 1024 {
		if _, err := f.ReadAt(p, off); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "chunks 1-4 read ahead", func() bool {
		info, _ := c.Lookup(s.key)
		return info.Present >= 5*chunk
	})
	for _, want := range []int64{1, 2, 3, 4} {
		if s.chunkFetches(chunk)[want] != 1 {
			t.Errorf("chunk %d not fetched ahead: %v", want, s.chunkFetches(chunk))
		}
	}
	// Reading on keeps the pipeline full and fetches each chunk once, in
	// requests spanning several chunks.
	rest := make([]byte, 15*chunk)
	if _, err := f.ReadAt(rest[:chunk], chunk); err != nil {
		t.Fatal(err)
	}
	n, err := io.ReadFull(io.NewSectionReader(f, chunk, 15*chunk), rest)
	if err != nil || !bytes.Equal(rest[:n], s.data[chunk:]) {
		t.Fatalf("sequential read: %v", err)
	}
	counts := s.chunkFetches(chunk)
	for i := range int64(16) {
		if counts[i] != 1 {
			t.Errorf("chunk %d fetched %d times", i, counts[i])
		}
	}
	if got := s.fetched(); len(got) > 8 {
		t.Errorf("%d requests for 16 chunks read sequentially: %v", len(got), got)
	}

	// A random reader does not read ahead.
	r := newSource("random", 16*chunk, 12)
	g := open(t, c, r)
	for _, off := range []int64{9 * chunk, 2 * chunk, 13 * chunk} {
		if _, err := g.ReadAt(p, off); err != nil {
			t.Fatal(err)
		}
	}
	if got := total(r.chunkFetches(chunk)); got > 4 {
		t.Errorf("random reads fetched %d chunks: %v", got, r.chunkFetches(chunk))
	}
}

func TestWaiterCancelDoesNotFailOthers(t *testing.T) {
	c := newCache(t, Options{ChunkSize: 4096, ReadAhead: -1})
	s := newSource("wait", 4096, 13)
	s.gate = make(chan struct{})
	f1, f2 := open(t, c, s), open(t, c, s)
	ctx1, cancel1 := context.WithCancel(testCtx(t))
	err1 := make(chan error, 1)
	go func() {
		_, err := f1.ReadAtContext(ctx1, make([]byte, 10), 0)
		err1 <- err
	}()
	got2 := make([]byte, 4096)
	err2 := make(chan error, 1)
	go func() {
		_, err := f2.ReadAtContext(testCtx(t), got2, 0)
		err2 <- err
	}()
	eventually(t, "two waiters", func() bool { return waiters(f1.e, 0) == 2 })
	cancel1()
	if err := <-err1; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	if s.ctxEnded.Load() != 0 {
		t.Fatal("the fetch was cancelled though a waiter remains")
	}
	close(s.gate)
	if err := <-err2; err != nil || !bytes.Equal(got2, s.data) {
		t.Fatalf("remaining waiter: %v", err)
	}
	if got := s.fetched(); len(got) != 1 {
		t.Errorf("fetches %v, want one", got)
	}

	// When the last waiter leaves, the fetch is cancelled and the next
	// read starts afresh.
	s2 := newSource("wait2", 4096, 14)
	s2.gate = make(chan struct{})
	g := open(t, c, s2)
	ctx3, cancel3 := context.WithCancel(testCtx(t))
	go func() { time.Sleep(20 * time.Millisecond); cancel3() }()
	if _, err := g.ReadAtContext(ctx3, make([]byte, 10), 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("lone waiter: %v", err)
	}
	eventually(t, "abandoned fetch cancelled", func() bool { return s2.ctxEnded.Load() == 1 })
	close(s2.gate)
	p := make([]byte, 4096)
	if _, err := g.ReadAt(p, 0); err != nil || !bytes.Equal(p, s2.data) {
		t.Fatalf("read after abandoned fetch: %v", err)
	}
}

func TestRemoveWhileOpen(t *testing.T) {
	c := newCache(t, Options{ChunkSize: 4096, ReadAhead: -1})
	s := newSource("rm", 4*4096, 15)
	f := open(t, c, s)
	p := make([]byte, 4096)
	if _, err := f.ReadAt(p, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(s.key); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Lookup(s.key); ok {
		t.Error("Lookup sees a removed entry")
	}
	// The open File keeps working, including fetches.
	if got := readAll(t, f); !bytes.Equal(got, s.data) {
		t.Fatal("open File of a removed entry reads wrong content")
	}
	if b, n := c.Usage(); b != 0 || n != 0 {
		t.Errorf("Usage counts a removed entry: %d, %d", b, n)
	}
	// A new Open starts a fresh entry.
	g := open(t, c, s)
	if g.Complete() {
		t.Fatal("fresh entry after Remove is complete")
	}
	before := len(s.fetched())
	if _, err := g.ReadAt(p, 0); err != nil || !bytes.Equal(p, s.data[:4096]) {
		t.Fatal(err)
	}
	if len(s.fetched()) != before+1 {
		t.Error("fresh entry did not refetch")
	}
	f.Close()
	if info, ok := c.Lookup(s.key); !ok || info.Present != 4096 {
		t.Errorf("closing the old File disturbed the new entry: %+v, %v", info, ok)
	}
	if err := c.Remove("never-there"); err != nil {
		t.Errorf("Remove of an absent key: %v", err)
	}
}

func TestEmptyEntry(t *testing.T) {
	c := newCache(t, Options{})
	s := newSource("empty", 0, 0)
	f := open(t, c, s)
	if !f.Complete() || s.verifies.Load() != 1 {
		t.Fatalf("size 0: complete %v, verifies %d", f.Complete(), s.verifies.Load())
	}
	if n, err := f.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Errorf("Read = %d, %v", n, err)
	}
	if df, ok := f.DataFile(); !ok || df == nil {
		t.Error("no DataFile for an empty entry")
	}
	open(t, c, s)
	if v := s.verifies.Load(); v != 1 || len(s.fetched()) != 0 {
		t.Errorf("verifies %d, fetches %v", v, s.fetched())
	}
	// Empty content that fails verification fails the Open.
	bad := newSource("empty-bad", 0, 0)
	bad.verifyErr = errors.New("no")
	if _, err := c.Open(testCtx(t), bad.Source()); !errors.Is(err, bad.verifyErr) {
		t.Errorf("Open of bad empty entry: %v", err)
	}
}

func TestSizeChangeResets(t *testing.T) {
	c := newCache(t, Options{ChunkSize: 4096, ReadAhead: -1})
	s := newSource("resize", 3*4096, 16)
	f, err := c.Open(testCtx(t), s.Source())
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, f)
	f.Close()
	s2 := newSource("resize", 2*4096+5, 17)
	g := open(t, c, s2)
	if g.Complete() {
		t.Fatal("complete despite a size change")
	}
	if got := readAll(t, g); !bytes.Equal(got, s2.data) {
		t.Fatal("content after reset differs")
	}
	if b, _ := c.Usage(); b != int64(len(s2.data)) {
		t.Errorf("Usage = %d, want %d", b, len(s2.data))
	}
	// Another change while a File is open: the open File keeps its view.
	s3 := newSource("resize", 100, 18)
	h := open(t, c, s3)
	if got := readAll(t, h); !bytes.Equal(got, s3.data) {
		t.Fatal("content after second reset differs")
	}
	if got := readAll(t, g); !bytes.Equal(got, s2.data) {
		t.Fatal("File open across a reset lost its content")
	}
	if b, n := c.Usage(); b != 100 || n != 1 {
		t.Errorf("Usage = %d, %d; want 100, 1", b, n)
	}
}

func TestInvalidSource(t *testing.T) {
	c := newCache(t, Options{})
	ok := newSource("x", 1, 1).Source()
	for _, src := range []Source{
		{Key: "", Size: 1, Fetch: ok.Fetch},
		{Key: "a/b", Size: 1, Fetch: ok.Fetch},
		{Key: "ü", Size: 1, Fetch: ok.Fetch},
		{Key: strings.Repeat("k", 129), Size: 1, Fetch: ok.Fetch},
		{Key: "neg", Size: -1, Fetch: ok.Fetch},
		{Key: "nofetch", Size: 1},
	} {
		if _, err := c.Open(testCtx(t), src); !errors.Is(err, iofs.ErrInvalid) {
			t.Errorf("Open(%q, %d): %v, want ErrInvalid", src.Key, src.Size, err)
		}
	}
	if _, err := c.Open(testCtx(t), Source{Key: strings.Repeat("k", 128), Size: 1, Fetch: ok.Fetch}); err != nil {
		t.Errorf("128-character key refused: %v", err)
	}
}

func TestCloseEndsWaits(t *testing.T) {
	c, err := New(Options{Dir: t.TempDir(), ChunkSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	s := newSource("hang", 4096, 19)
	s.gate = make(chan struct{}) // never opened: only Close can end the fetch
	f := open(t, c, s)
	errc := make(chan error, 1)
	go func() {
		_, err := f.ReadAt(make([]byte, 10), 0)
		errc <- err
	}()
	eventually(t, "a waiter", func() bool { return waiters(f.e, 0) == 1 })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("read succeeded though its fetch was stopped")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("read still waiting after Close")
	}
	if _, err := c.Open(testCtx(t), s.Source()); !errors.Is(err, iofs.ErrClosed) {
		t.Errorf("Open after Close: %v", err)
	}
}

func TestStateRoundTrip(t *testing.T) {
	s := state{size: 100<<20 + 3, chunkSize: 4 << 20, complete: true, bits: make([]uint64, bitWords(chunkCount(100<<20+3, 4<<20)))}
	s.bits[0] = 0x5
	b := s.marshal()
	got, err := unmarshalState(b)
	if err != nil || got.size != s.size || got.chunkSize != s.chunkSize || !got.complete || !slices.Equal(got.bits, s.bits) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for i := range b {
		c := slices.Clone(b)
		c[i] ^= 0x10
		if _, err := unmarshalState(c); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
	if _, err := unmarshalState(b[:len(b)-1]); err == nil {
		t.Fatal("truncated state accepted")
	}
}

func TestPeriodicPersist(t *testing.T) {
	c := newCache(t, Options{ChunkSize: 4096, ReadAhead: -1})
	s := newSource("persist", 3*4096, 20)
	f := open(t, c, s)
	if _, err := f.ReadAt(make([]byte, 10), 4096); err != nil {
		t.Fatal(err)
	}
	// Without Close, the flusher persists the chunk within about a second.
	eventually(t, "state persisted", func() bool {
		st, ok, err := readState(f.e.statePath)
		return err == nil && ok && !st.complete && st.bits[0] == 0b10
	})
}

func TestVerifyInterruptedByClose(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, ChunkSize: 4096, ReadAhead: -1}
	c1, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s := newSource("interrupted", 2*4096, 21)
	src := s.Source()
	verifying := make(chan struct{})
	src.Verify = func(ctx context.Context, f *os.File) error {
		close(verifying)
		<-ctx.Done() // hangs until Close
		return ctx.Err()
	}
	f, err := c1.Open(testCtx(t), src)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := io.ReadAll(io.NewSectionReader(f, 0, f.Size())); errc <- err }()
	<-verifying
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err == nil {
		t.Fatal("read that completed the entry succeeded though Verify never did")
	}
	f.Close()

	// The content is whole but unverified: the next Open verifies it
	// without fetching anything.
	c2 := newCache(t, opts)
	s.forbidden = t
	g := open(t, c2, s)
	if !g.Complete() || s.verifies.Load() != 1 {
		t.Fatalf("complete %v, verifies %d", g.Complete(), s.verifies.Load())
	}
	if got := readAll(t, g); !bytes.Equal(got, s.data) {
		t.Fatal("content differs")
	}
}
