package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stallingReader yields r's first n bytes, then blocks until release is
// closed (and yields the rest) or ctx ends; fail, if set, is returned
// instead of the rest.
type stallingReader struct {
	ctx     context.Context
	r       io.Reader
	n       int
	release chan struct{}
	fail    error
}

func (s *stallingReader) Read(p []byte) (int, error) {
	if s.n == 0 {
		select {
		case <-s.release:
		case <-s.ctx.Done():
			return 0, s.ctx.Err()
		}
		if s.fail != nil {
			return 0, s.fail
		}
		return s.r.Read(p)
	}
	if len(p) > s.n {
		p = p[:s.n]
	}
	m, err := s.r.Read(p)
	s.n -= m
	return m, err
}

// stallFirst makes the Fetch of src that starts at offset 0 stall after n
// bytes (see stallingReader).
func stallFirst(src Source, n int, release chan struct{}, fail error) Source {
	fetch := src.Fetch
	src.Fetch = func(ctx context.Context, off, length int64) (io.ReadCloser, error) {
		rc, err := fetch(ctx, off, length)
		if err != nil || off != 0 {
			return rc, err
		}
		return io.NopCloser(&stallingReader{ctx: ctx, r: rc, n: n, release: release, fail: fail}), nil
	}
	return src
}

func TestReadServedFromFetchUnderWay(t *testing.T) {
	const chunk = 512 << 10
	c := newCache(t, Options{ChunkSize: chunk, ReadAhead: -1})
	s := newSource("stream", 3*chunk, 30)
	release := make(chan struct{})
	// Past a writeAlign boundary: the bytes after it wait in the fetch's
	// buffer for the next.
	f, err := c.Open(testCtx(t), stallFirst(s.Source(), 300<<10, release, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A read of all three chunks starts one request for them, which
	// stalls 300 KiB into the first chunk.
	all := make([]byte, 3*chunk)
	done := make(chan error, 1)
	go func() { _, err := f.ReadAt(all, 0); done <- err }()
	eventually(t, "the reader waiting", func() bool { return waiters(f.e, 0) == 1 })
	// Bytes already written are served at once, though no chunk is
	// complete: a read ending within them does not wait for the stall.
	ctx, cancel := context.WithTimeout(testCtx(t), 5*time.Second)
	defer cancel()
	p := make([]byte, 1000)
	if _, err := f.ReadAtContext(ctx, p, 5000); err != nil || !bytes.Equal(p, s.data[5000:6000]) {
		t.Fatalf("read within the written prefix: %v", err)
	}
	if info, _ := c.Lookup(s.key); info.Present != 0 {
		t.Errorf("Present = %d while the first chunk is incomplete", info.Present)
	}
	close(release)
	if err := <-done; err != nil || !bytes.Equal(all, s.data) {
		t.Fatalf("read of all chunks: %v", err)
	}
	if got := s.fetched(); len(got) != 1 {
		t.Errorf("requests at %v, want one for the three chunks", got)
	}
	if !f.Complete() {
		t.Error("not complete")
	}
}

func TestFetchFailingMidwayKeepsCompletedChunks(t *testing.T) {
	const chunk = 4096
	c := newCache(t, Options{ChunkSize: chunk, ReadAhead: -1})
	s := newSource("midway", 3*chunk, 31)
	release := make(chan struct{})
	close(release)
	broken := errors.New("connection reset")
	f, err := c.Open(testCtx(t), stallFirst(s.Source(), chunk+chunk/2, release, broken))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(make([]byte, 3*chunk), 0); !errors.Is(err, broken) {
		t.Fatalf("read through the failure: %v, want %v", err, broken)
	}
	if info, _ := c.Lookup(s.key); info.Present != chunk {
		t.Errorf("Present = %d, want the one chunk completed before the failure", info.Present)
	}
	if got := readAll(t, f); !bytes.Equal(got, s.data) {
		t.Fatal("content differs after the refetch")
	}
	counts := s.chunkFetches(chunk)
	if counts[0] != 1 || counts[1] != 2 || counts[2] != 2 {
		t.Errorf("chunk fetches %v, want chunk 0 once, 1 and 2 twice", counts)
	}
}

// shaDigest is a Digest checking SHA-256 against want.
type shaDigest struct {
	h        hash.Hash
	want     []byte
	verifies *atomic.Int32
	block    chan struct{} // if set, Verify waits for ctx to end
}

func (d *shaDigest) Write(p []byte) (int, error) { return d.h.Write(p) }

func (d *shaDigest) Verify(ctx context.Context) error {
	d.verifies.Add(1)
	if d.block != nil {
		<-ctx.Done()
		return ctx.Err()
	}
	if !bytes.Equal(d.h.Sum(nil), d.want) {
		return errors.New("sha256 mismatch (digest)")
	}
	return nil
}

// withDigest replaces src's Verify by a Digest expecting want; Verify
// itself fails the test if it is called.
func withDigest(t *testing.T, src Source, want []byte, n *atomic.Int32, block chan struct{}) Source {
	src.Verify = func(context.Context, *os.File) error {
		t.Error("Verify called though NewDigest is set")
		return nil
	}
	src.NewDigest = func() Digest { return &shaDigest{h: sha256.New(), want: want, verifies: n, block: block} }
	return src
}

func TestDigestVerifiesInOneReadingPass(t *testing.T) {
	const chunk = 4096
	c := newCache(t, Options{ChunkSize: chunk, ReadAhead: 4})
	s := newSource("digest", 20*chunk+1, 32)
	sum := sha256.Sum256(s.data)
	var n atomic.Int32
	f, err := c.Open(testCtx(t), withDigest(t, s.Source(), sum[:], &n, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Out of order first: the digest waits for the gap to fill.
	p := make([]byte, 100)
	for _, off := range []int64{15 * chunk, 3 * chunk, 0} {
		if _, err := f.ReadAt(p, off); err != nil {
			t.Fatal(err)
		}
	}
	if got := readAll(t, f); !bytes.Equal(got, s.data) {
		t.Fatal("content differs")
	}
	if err := f.Verified(testCtx(t)); err != nil || !f.Complete() || n.Load() != 1 {
		t.Fatalf("verdict %v, complete %v, digest verifies %d", err, f.Complete(), n.Load())
	}

	// Wrong content: the read that completes it fails, the entry goes.
	w := newSource("digest-wrong", 3*chunk, 33)
	var nw atomic.Int32
	g, err := c.Open(testCtx(t), withDigest(t, w.Source(), sum[:], &nw, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	// The read that completes the entry fails; when read-ahead completed
	// it, the verdict comes through Verified, as for any reader reaching
	// the end.
	_, err = io.ReadAll(io.NewSectionReader(g, 0, g.Size()))
	if err == nil {
		err = g.Verified(testCtx(t))
	}
	if err == nil || nw.Load() != 1 {
		t.Fatalf("read of wrong content: %v (verifies %d)", err, nw.Load())
	}
	if _, ok := c.Lookup(w.key); ok {
		t.Error("wrong content still cached")
	}
}

func TestDigestAfterRestart(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, ChunkSize: 4096, ReadAhead: -1}
	c1, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s := newSource("digest-restart", 5*4096+7, 34)
	sum := sha256.Sum256(s.data)
	var n atomic.Int32
	f, err := c1.Open(testCtx(t), withDigest(t, s.Source(), sum[:], &n, make(chan struct{})))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := io.ReadAll(io.NewSectionReader(f, 0, f.Size())); errc <- err }()
	eventually(t, "verification started", func() bool { return n.Load() == 1 })
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err == nil {
		t.Fatal("read that completed the entry succeeded without a verdict")
	}
	f.Close()

	// Whole but unverified: the next Open feeds a fresh digest from the
	// data file, fetching nothing.
	c2 := newCache(t, opts)
	s.forbidden = t
	var n2 atomic.Int32
	g, err := c2.Open(testCtx(t), withDigest(t, s.Source(), sum[:], &n2, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if !g.Complete() || n2.Load() != 1 {
		t.Fatalf("complete %v, verifies %d", g.Complete(), n2.Load())
	}
	if got := readAll(t, g); !bytes.Equal(got, s.data) {
		t.Fatal("content differs")
	}
}

func TestReadFile(t *testing.T) {
	const chunk = 4096
	c := newCache(t, Options{ChunkSize: chunk, ReadAhead: 4})
	s := newSource("readfile", 10*chunk+5, 35)
	f := open(t, c, s)
	var got []byte
	for off := int64(0); ; {
		fd, n, err := f.ReadFile(testCtx(t), off, 3000)
		if n > 0 {
			p := make([]byte, n)
			if _, err := fd.ReadAt(p, off); err != nil {
				t.Fatal(err)
			}
			got = append(got, p...)
			off += int64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("ReadFile at %d: %v", off, err)
		}
	}
	if !bytes.Equal(got, s.data) {
		t.Fatal("content differs")
	}
	if _, n, err := f.ReadFile(testCtx(t), f.Size(), 1); n != 0 || err != io.EOF {
		t.Errorf("ReadFile at the end = %d, %v", n, err)
	}
	if _, _, err := f.ReadFile(testCtx(t), -1, 1); !errors.Is(err, errInvalid) {
		t.Errorf("ReadFile at -1: %v", err)
	}
}

// tricklingReader yields at most 1,000 bytes per Read, yielding the
// processor between reads: a slow provider, so that readers catch up with
// the fetches and wait on their progress.
type tricklingReader struct{ r io.Reader }

func (t tricklingReader) Read(p []byte) (int, error) {
	runtime.Gosched()
	return t.r.Read(p[:min(len(p), 1000)])
}

func TestConcurrentReadersOfStreamingFetches(t *testing.T) {
	const chunk = 16 << 10
	c := newCache(t, Options{ChunkSize: chunk, ReadAhead: 4})
	s := newSource("trickle", 40*chunk+333, 36)
	src := s.Source()
	fetch := src.Fetch
	src.Fetch = func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		rc, err := fetch(ctx, off, n)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(tricklingReader{rc}), nil
	}
	shared, err := c.Open(testCtx(t), src)
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	size := int64(len(s.data))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for r := range 8 {
		wg.Go(func() {
			f := shared
			if r%2 == 1 {
				own, err := c.Open(testCtx(t), src)
				if err != nil {
					errs <- err
					return
				}
				defer own.Close()
				f = own
			}
			rng := rand.New(rand.NewPCG(uint64(r), 37))
			p := make([]byte, 5000)
			off := rng.Int64N(size)
			for range 60 {
				if rng.IntN(4) == 0 {
					off = rng.Int64N(size) // a jump; else sequential
				}
				n, err := f.ReadAt(p, off)
				if err != nil && err != io.EOF {
					errs <- fmt.Errorf("reader %d at %d: %w", r, off, err)
					return
				}
				if !bytes.Equal(p[:n], s.data[off:off+int64(n)]) {
					errs <- fmt.Errorf("reader %d at %d: wrong bytes", r, off)
					return
				}
				off = (off + int64(n)) % size
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, n := range s.chunkFetches(chunk) {
		if n != 1 {
			t.Errorf("chunk %d fetched %d times", i, n)
		}
	}
}

func TestCompleteEntryWrittenToIsVerifiedAgain(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, ChunkSize: 4096, ReadAhead: -1}
	c := newCache(t, opts)
	s := newSource("stamped", 3*4096+5, 38)
	f := open(t, c, s)
	readAll(t, f)
	if !f.Complete() || s.verifies.Load() != 1 {
		t.Fatalf("complete %v, verifies %d", f.Complete(), s.verifies.Load())
	}
	path := f.e.dataPath
	f.Close()
	if fi, err := os.Stat(path); err != nil || !fi.ModTime().Equal(verifiedMtime) {
		t.Fatalf("verified data file not stamped: %v, %v", fi.ModTime(), err)
	}
	rewrite := func(b byte) {
		w, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.WriteAt([]byte{b}, 5000); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}

	// Unchanged since: served with no verification and no fetch.
	s.forbidden = t
	g := open(t, c, s)
	if !g.Complete() || s.verifies.Load() != 1 {
		t.Fatalf("stamped entry: complete %v, verifies %d", g.Complete(), s.verifies.Load())
	}
	g.Close()

	// The same byte written again: verified again, still good, no fetch.
	rewrite(s.data[5000])
	g = open(t, c, s)
	if !g.Complete() || s.verifies.Load() != 2 {
		t.Fatalf("rewritten entry: complete %v, verifies %d", g.Complete(), s.verifies.Load())
	}
	g.Close()

	// A wrong byte: verified again, found wrong, dropped and fetched
	// afresh; the reader gets the right content.
	rewrite(s.data[5000] ^ 0xff)
	s.forbidden = nil
	before := len(s.fetched())
	g = open(t, c, s)
	if got := readAll(t, g); !bytes.Equal(got, s.data) {
		t.Fatal("corrupted entry served")
	}
	if len(s.fetched()) == before || s.verifies.Load() != 4 {
		t.Errorf("fetches %d → %d, verifies %d; want a refetch and two more verifications", before, len(s.fetched()), s.verifies.Load())
	}
}

// Readers of one fetch that wait for different amounts are each woken
// when their own bytes are written, whatever order they began waiting in
// (a fetch wakes its readers only once the least of their needs is met).
func TestReadersWokenByTheirOwnBytes(t *testing.T) {
	const size = 1 << 20
	c := newCache(t, Options{ChunkSize: size, ReadAhead: -1})
	s := newSource("wake", size, 38)
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.CloseWithError(errors.New("test over")) })
	src := s.Source()
	src.Fetch = func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		if off != 0 || n != size {
			return nil, fmt.Errorf("fetch [%d,+%d), want the whole", off, n)
		}
		return pr, nil
	}
	f, err := c.Open(testCtx(t), src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	read := func(p []byte) chan error {
		done := make(chan error, 1)
		go func() {
			_, err := f.ReadAtContext(testCtx(t), p, 0)
			if err == nil && !bytes.Equal(p, s.data[:len(p)]) {
				err = errors.New("wrong bytes")
			}
			done <- err
		}()
		return done
	}
	// The reader of the whole waits first, then the one of the first
	// 64 KiB.
	whole := read(make([]byte, size))
	eventually(t, "the first reader waiting", func() bool { return waiters(f.e, 0) == 1 })
	head := read(make([]byte, 64<<10))
	eventually(t, "the second reader waiting", func() bool { return waiters(f.e, 0) == 2 })
	if _, err := pw.Write(s.data[:64<<10]); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-head:
		if err != nil {
			t.Fatalf("read of the first 64 KiB: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the reader of the first 64 KiB was not woken by them")
	}
	select {
	case err := <-whole:
		t.Fatalf("the reader of the whole returned with 64 KiB written: %v", err)
	default:
	}
	if _, err := pw.Write(s.data[64<<10:]); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-whole:
		if err != nil {
			t.Fatalf("read of the whole: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the reader of the whole was not woken")
	}
}
