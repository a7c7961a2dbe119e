package retry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/backendtest"
	"github.com/datagate/datagate/backends/local"
)

// fake is a provider made of function fields.
type fake struct {
	open func(ctx context.Context, path string, off, length int64) (io.ReadCloser, error)
	stat func(ctx context.Context, path string) (backends.Entry, error)
	list func(ctx context.Context, prefix string, fn func(backends.Entry) error) error
}

func (f *fake) Name() string { return "fake" }
func (f *fake) Open(ctx context.Context, path string, off, length int64) (io.ReadCloser, error) {
	return f.open(ctx, path, off, length)
}
func (f *fake) Stat(ctx context.Context, path string) (backends.Entry, error) {
	return f.stat(ctx, path)
}
func (f *fake) List(ctx context.Context, prefix string, fn func(backends.Entry) error) error {
	return f.list(ctx, prefix, fn)
}

var fast = Options{Base: time.Millisecond, Max: 4 * time.Millisecond}

func unavailable(n int32) error { return fmt.Errorf("attempt %d: %w", n, backends.ErrUnavailable) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestBackoff(t *testing.T) {
	base, max := 10*time.Millisecond, time.Second
	for attempt := -1; attempt < 100; attempt++ {
		ceil := max
		if attempt < 7 {
			ceil = base << max0(attempt)
		}
		for range 50 {
			if d := Backoff(attempt, base, max); d < 0 || d >= ceil {
				t.Fatalf("Backoff(%d) = %v, want [0, %v)", attempt, d, ceil)
			}
		}
	}
	if d := Backoff(3, 0, time.Second); d != 0 {
		t.Errorf("Backoff with zero base = %v", d)
	}
	// Full jitter: the waits are spread, not all at the ceiling.
	seen := map[time.Duration]bool{}
	for range 100 {
		seen[Backoff(5, time.Millisecond, time.Hour)] = true
	}
	if len(seen) < 10 {
		t.Errorf("100 backoffs gave only %d distinct values", len(seen))
	}
}

func max0(a int) int {
	if a < 0 {
		return 0
	}
	return a
}

func TestRetryOps(t *testing.T) {
	ctx := ctxT(t)
	for _, tc := range []struct {
		name     string
		fails    int32 // failures before success
		failWith error // nil: ErrUnavailable
		want     int32 // calls expected
		wantErr  error
	}{
		{"succeeds at once", 0, nil, 1, nil},
		{"fails twice", 2, nil, 3, nil},
		{"fails three times", 3, nil, 4, nil},
		{"always fails", 100, nil, 4, backends.ErrUnavailable},
		{"not found is final", 100, iofs.ErrNotExist, 1, iofs.ErrNotExist},
		{"permission is final", 100, iofs.ErrPermission, 1, iofs.ErrPermission},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			fail := func() error {
				n := calls.Add(1)
				if n > tc.fails {
					return nil
				}
				if tc.failWith != nil {
					return fmt.Errorf("attempt %d: %w", n, tc.failWith)
				}
				return unavailable(n)
			}
			f := &fake{
				open: func(context.Context, string, int64, int64) (io.ReadCloser, error) {
					if err := fail(); err != nil {
						return nil, err
					}
					return io.NopCloser(bytes.NewReader([]byte("ok"))), nil
				},
				stat: func(_ context.Context, path string) (backends.Entry, error) {
					if err := fail(); err != nil {
						return backends.Entry{}, err
					}
					return backends.Entry{Path: path, Size: 2}, nil
				},
				list: func(_ context.Context, _ string, fn func(backends.Entry) error) error {
					if err := fail(); err != nil {
						return err
					}
					return fn(backends.Entry{Path: "x", Size: 2})
				},
			}
			p := New(f, fast)
			var retries uint64
			check := func(op string, err error) {
				t.Helper()
				if got := calls.Swap(0); got != tc.want {
					t.Errorf("%s: %d calls, want %d", op, got, tc.want)
				}
				// Every call after the first is a retry.
				retries += uint64(tc.want - 1)
				if got := p.(*Provider).Retries(); got != retries {
					t.Errorf("%s: Retries() = %d, want %d", op, got, retries)
				}
				if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Errorf("%s: err %v, want %v", op, err, tc.wantErr)
				}
			}
			rc, err := p.Open(ctx, "x", 0, -1)
			if err == nil {
				b, rerr := io.ReadAll(rc)
				rc.Close()
				if string(b) != "ok" || rerr != nil {
					t.Errorf("read %q %v", b, rerr)
				}
			}
			check("Open", err)
			e, err := p.Stat(ctx, "x")
			if err == nil && e.Size != 2 {
				t.Errorf("Stat = %+v", e)
			}
			check("Stat", err)
			n := 0
			err = p.List(ctx, "", func(backends.Entry) error { n++; return nil })
			if err == nil && n != 1 {
				t.Errorf("List gave %d entries", n)
			}
			check("List", err)
		})
	}
}

func TestRetryHonoursContext(t *testing.T) {
	var calls atomic.Int32
	f := &fake{stat: func(context.Context, string) (backends.Entry, error) {
		return backends.Entry{}, unavailable(calls.Add(1))
	}}
	p := New(f, Options{Attempts: 100, Base: time.Hour, Max: time.Hour})
	ctx, cancel := context.WithTimeout(ctxT(t), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.Stat(ctx, "x")
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("Stat took %v despite a 50ms deadline", el)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("err = %v, want both the deadline and ErrUnavailable", err)
	}
	if calls.Load() != 1 {
		t.Errorf("%d calls during one hour-long backoff", calls.Load())
	}
}

func TestListNoRetryAfterEntries(t *testing.T) {
	ctx := ctxT(t)
	var calls atomic.Int32
	f := &fake{list: func(_ context.Context, _ string, fn func(backends.Entry) error) error {
		calls.Add(1)
		if err := fn(backends.Entry{Path: "a"}); err != nil {
			return err
		}
		return unavailable(1)
	}}
	p := New(f, fast)
	var got []string
	err := p.List(ctx, "", func(e backends.Entry) error { got = append(got, e.Path); return nil })
	if !errors.Is(err, backends.ErrUnavailable) || calls.Load() != 1 || len(got) != 1 {
		t.Errorf("List after an entry: err=%v calls=%d entries=%v; want ErrUnavailable, 1 call, 1 entry", err, calls.Load(), got)
	}
	// An error of the callback is returned as is, even an ErrUnavailable.
	calls.Store(0)
	mine := fmt.Errorf("callback: %w", backends.ErrUnavailable)
	err = p.List(ctx, "", func(backends.Entry) error { return mine })
	if err != mine || calls.Load() != 1 {
		t.Errorf("callback error: %v after %d calls, want it unchanged after 1", err, calls.Load())
	}
}

// flaky serves data but each reader breaks with ErrUnavailable after
// chunk bytes; open fails on every openFails-th call.
type flaky struct {
	data      []byte
	chunk     int
	openFails int
	opens     atomic.Int32
	offsets   []int64
}

func (fl *flaky) provider() *fake {
	return &fake{open: func(_ context.Context, _ string, off, length int64) (io.ReadCloser, error) {
		n := fl.opens.Add(1)
		if fl.openFails > 0 && int(n)%fl.openFails == 0 {
			return nil, unavailable(n)
		}
		if off > int64(len(fl.data)) {
			return nil, iofs.ErrInvalid
		}
		fl.offsets = append(fl.offsets, off)
		end := int64(len(fl.data))
		if length >= 0 && off+length < end {
			end = off + length
		}
		return &breaking{r: bytes.NewReader(fl.data[off:end]), left: fl.chunk}, nil
	}}
}

type breaking struct {
	r    *bytes.Reader
	left int
}

func (b *breaking) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, fmt.Errorf("connection reset: %w", backends.ErrUnavailable)
	}
	if len(p) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= n
	return n, err
}

func (b *breaking) Close() error { return nil }

func TestReaderResumes(t *testing.T) {
	ctx := ctxT(t)
	data := make([]byte, 100000)
	for i := range data {
		data[i] = byte(i * 31)
	}
	for _, tc := range []struct {
		off, length int64
		chunk       int
		openFails   int
	}{
		{0, -1, 7000, 0},
		{0, -1, 7000, 3},
		{123, 50000, 999, 2},
		{99990, -1, 3, 0},
		{5000, 0, 10, 0},
		{0, int64(len(data)), len(data), 0}, // breaks exactly at the end
	} {
		t.Run(fmt.Sprintf("off%d_len%d_chunk%d_fail%d", tc.off, tc.length, tc.chunk, tc.openFails), func(t *testing.T) {
			fl := &flaky{data: data, chunk: tc.chunk, openFails: tc.openFails}
			p := New(fl.provider(), fast)
			rc, err := p.Open(ctx, "f", tc.off, tc.length)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			end := int64(len(data))
			if tc.length >= 0 {
				end = tc.off + tc.length
			}
			if !bytes.Equal(got, data[tc.off:end]) {
				t.Fatalf("got %d bytes, want %d (or contents differ)", len(got), end-tc.off)
			}
			// Each open after the first follows one retry (a failed open
			// or a broken stream).
			if r, opens := p.(*Provider).Retries(), fl.opens.Load(); r != uint64(opens-1) {
				t.Errorf("Retries() = %d after %d opens, want %d", r, opens, opens-1)
			}
			for i, o := range fl.offsets {
				if want := tc.off + int64(i*tc.chunk); o != want && o != end {
					t.Errorf("open %d at offset %d, want %d", i, o, want)
				}
			}
		})
	}
}

func TestReaderGivesUp(t *testing.T) {
	ctx := ctxT(t)
	// Every reader breaks before its first byte: no progress, ever.
	fl := &flaky{data: []byte("abcdef"), chunk: 0}
	p := New(fl.provider(), Options{Attempts: 3, Base: time.Millisecond})
	rc, err := p.Open(ctx, "f", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	_, err = io.ReadAll(rc)
	if !errors.Is(err, backends.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	// One Open plus reopens until 3 consecutive failures.
	if n := fl.opens.Load(); n != 3 {
		t.Errorf("%d opens, want 3", n)
	}
	if _, err2 := rc.Read(make([]byte, 1)); err2 == nil {
		t.Error("read after failure succeeded")
	}
	// A non-retryable error mid-stream is returned at once.
	boom := errors.New("checksum mismatch")
	f := &fake{open: func(context.Context, string, int64, int64) (io.ReadCloser, error) {
		return io.NopCloser(io.MultiReader(bytes.NewReader([]byte("ab")), errReader{boom})), nil
	}}
	rc, err = New(f, fast).Open(ctx, "f", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if string(b) != "ab" || !errors.Is(err, boom) {
		t.Errorf("read = %q, %v; want \"ab\", %v", b, err, boom)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestWriterPassThrough(t *testing.T) {
	if _, ok := New(&fake{}, Options{}).(backends.Writer); ok {
		t.Error("a wrapped read-only provider claims to be a Writer")
	}
	lp, err := local.New("store", local.Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	w, ok := New(lp, Options{}).(backends.Writer)
	if !ok {
		t.Fatal("a wrapped Writer is not a Writer")
	}
	if w.Name() != "store" {
		t.Errorf("Name = %q", w.Name())
	}
	ctx := ctxT(t)
	if err := w.Put(ctx, "x/y", bytes.NewReader([]byte("hi")), 2); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(lp.Root(), "x", "y")); string(b) != "hi" {
		t.Fatalf("Put did not reach the store: %q %v", b, err)
	}
	if err := w.Delete(ctx, "x/y"); err != nil {
		t.Fatal(err)
	}
	if _, err := lp.Stat(ctx, "x/y"); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("Delete did not reach the store: %v", err)
	}
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, files map[string][]byte) backends.Provider {
		root := t.TempDir()
		for name, data := range files {
			fn := filepath.Join(root, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(fn), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(fn, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		lp, err := local.New("local", local.Config{Root: root})
		if err != nil {
			t.Fatal(err)
		}
		return New(lp, fast)
	})
}
