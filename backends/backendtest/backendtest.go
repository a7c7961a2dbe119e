// Package backendtest is the conformance suite every backends.Provider and
// decorator runs: Run(t, harness) checks ranged reads, stat, list, errors
// and, for stores, put/delete semantics.
package backendtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"sort"
	"testing"
	"time"

	"github.com/datagate/datagate/backends"
)

// Harness makes a provider holding the given files (path → content).
// Providers that are Writers are also exercised for Put and Delete.
type Harness func(t *testing.T, files map[string][]byte) backends.Provider

// Fixture returns the files every conformance run starts with.
func Fixture() map[string][]byte {
	big := make([]byte, 3<<20+17)
	for i := range big {
		big[i] = byte(i*7 + i>>11)
	}
	return map[string][]byte{
		"a.txt":             []byte("hello, world\n"),
		"dir/b.bin":         big,
		"dir/sub/c.txt":     []byte("c"),
		"dir/sub/empty.txt": {},
		"other/d.txt":       []byte("ddd"),
	}
}

// Run runs the conformance suite against the provider h makes.
func Run(t *testing.T, h Harness) {
	files := Fixture()
	p := h(t, files)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)

	t.Run("Name", func(t *testing.T) {
		if p.Name() == "" {
			t.Fatal("empty provider name")
		}
	})
	t.Run("ReadWhole", func(t *testing.T) {
		for path, want := range files {
			got := readAll(t, ctx, p, path, 0, -1)
			if !bytes.Equal(got, want) {
				t.Errorf("%s: read %d bytes, want %d (contents differ)", path, len(got), len(want))
			}
		}
	})
	t.Run("ReadRanges", func(t *testing.T) {
		big := files["dir/b.bin"]
		for _, r := range [][2]int64{{0, 1}, {1, 10}, {4096, 65536}, {1 << 20, 1 << 20}, {int64(len(big)) - 5, 5}, {int64(len(big)) - 5, -1}, {17, 0}} {
			got := readAll(t, ctx, p, "dir/b.bin", r[0], r[1])
			end := int64(len(big))
			if r[1] >= 0 {
				end = r[0] + r[1]
			}
			if want := big[r[0]:end]; !bytes.Equal(got, want) {
				t.Errorf("range off=%d len=%d: got %d bytes, want %d", r[0], r[1], len(got), len(want))
			}
		}
	})
	t.Run("ReadEmptyFile", func(t *testing.T) {
		if got := readAll(t, ctx, p, "dir/sub/empty.txt", 0, -1); len(got) != 0 {
			t.Errorf("empty file read %d bytes", len(got))
		}
	})
	t.Run("ReadPastEnd", func(t *testing.T) {
		// Asking for more than the file holds must not silently succeed.
		rc, err := p.Open(ctx, "a.txt", 5, 1000)
		if err == nil {
			_, err = io.ReadAll(rc)
			rc.Close()
		}
		if err == nil {
			t.Fatal("reading 1000 bytes of a 13-byte file succeeded")
		}
	})
	t.Run("OpenSized", func(t *testing.T) {
		// A driver that checks the file's size must refuse every read of
		// a file of another size (one rewritten since it was
		// registered), before any byte, and serve the right size as Open.
		so, ok := p.(backends.SizedOpener)
		if !ok {
			t.Skip("not a backends.SizedOpener")
		}
		big := files["dir/b.bin"]
		size := int64(len(big))
		for _, r := range [][2]int64{{0, -1}, {4096, 65536}, {size - 5, -1}, {17, 0}, {size, -1}} {
			rc, err := so.OpenSized(ctx, "dir/b.bin", r[0], r[1], size)
			if err != nil {
				t.Fatalf("OpenSized [%d,+%d) with the right size: %v", r[0], r[1], err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			end := size
			if r[1] >= 0 {
				end = r[0] + r[1]
			}
			if err != nil || !bytes.Equal(got, big[r[0]:end]) {
				t.Errorf("OpenSized [%d,+%d): %d bytes, %v", r[0], r[1], len(got), err)
			}
			for _, wrong := range []int64{size - 1, size + 1} {
				rc, err := so.OpenSized(ctx, "dir/b.bin", r[0], r[1], wrong)
				if err == nil {
					got, _ := io.ReadAll(rc)
					rc.Close()
					t.Errorf("OpenSized [%d,+%d) of a %d-byte file as %d bytes: opened, %d bytes read", r[0], r[1], size, wrong, len(got))
				} else if !errors.Is(err, backends.ErrChanged) {
					t.Errorf("OpenSized [%d,+%d) as %d bytes: %v, want ErrChanged", r[0], r[1], wrong, err)
				}
			}
		}
	})
	t.Run("OpenMissing", func(t *testing.T) {
		rc, err := p.Open(ctx, "no/such/file", 0, -1)
		if err == nil {
			rc.Close()
			t.Fatal("Open of a missing file succeeded")
		}
		if !errors.Is(err, iofs.ErrNotExist) {
			t.Fatalf("Open missing: %v, want ErrNotExist", err)
		}
	})
	t.Run("Stat", func(t *testing.T) {
		for path, want := range files {
			e, err := p.Stat(ctx, path)
			if err != nil {
				t.Fatalf("Stat %s: %v", path, err)
			}
			if e.Size != int64(len(want)) || e.Path != path {
				t.Errorf("Stat %s = %+v, want size %d", path, e, len(want))
			}
			if e.ModTime.IsZero() {
				t.Errorf("Stat %s: zero mtime", path)
			}
		}
		if _, err := p.Stat(ctx, "missing.txt"); !errors.Is(err, iofs.ErrNotExist) {
			t.Errorf("Stat missing: %v, want ErrNotExist", err)
		}
	})
	t.Run("List", func(t *testing.T) {
		for _, tc := range []struct {
			prefix string
			want   []string
		}{
			{"", keys(files, "")},
			{"dir", keys(files, "dir/")},
			{"dir/sub", keys(files, "dir/sub/")},
			{"nothing", nil},
		} {
			var got []string
			err := p.List(ctx, tc.prefix, func(e backends.Entry) error {
				got = append(got, e.Path)
				if want, ok := files[e.Path]; ok && e.Size != int64(len(want)) {
					t.Errorf("List entry %s size %d, want %d", e.Path, e.Size, len(want))
				}
				return nil
			})
			if err != nil && !(tc.want == nil && errors.Is(err, iofs.ErrNotExist)) {
				t.Fatalf("List %q: %v", tc.prefix, err)
			}
			sort.Strings(got)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("List %q = %v, want %v", tc.prefix, got, tc.want)
			}
		}
		stop := errors.New("stop")
		n := 0
		err := p.List(ctx, "", func(backends.Entry) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Errorf("List did not stop on callback error: err=%v calls=%d", err, n)
		}
	})
	w, ok := p.(backends.Writer)
	if !ok {
		return
	}
	t.Run("PutGetDelete", func(t *testing.T) {
		data := bytes.Repeat([]byte("0123456789abcdef"), 70000)
		if err := w.Put(ctx, "new/obj.bin", bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatalf("Put: %v", err)
		}
		if got := readAll(t, ctx, p, "new/obj.bin", 0, -1); !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes, want %d", len(got), len(data))
		}
		if err := w.Put(ctx, "new/obj.bin", bytes.NewReader([]byte("short")), -1); err != nil {
			t.Fatalf("Put (replace, unknown size): %v", err)
		}
		if got := readAll(t, ctx, p, "new/obj.bin", 0, -1); string(got) != "short" {
			t.Fatalf("after replace read %q", got)
		}
		if err := w.Delete(ctx, "new/obj.bin"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := p.Stat(ctx, "new/obj.bin"); !errors.Is(err, iofs.ErrNotExist) {
			t.Fatalf("Stat after delete: %v", err)
		}
		if err := w.Delete(ctx, "new/obj.bin"); err != nil {
			t.Fatalf("Delete of absent file: %v", err)
		}
	})
	t.Run("PutFailedLeavesNothing", func(t *testing.T) {
		boom := errors.New("reader failed")
		r := io.MultiReader(bytes.NewReader(make([]byte, 100000)), errReader{boom})
		if err := w.Put(ctx, "failed.bin", r, -1); err == nil {
			t.Fatal("Put from a failing reader succeeded")
		}
		if _, err := p.Stat(ctx, "failed.bin"); !errors.Is(err, iofs.ErrNotExist) {
			t.Fatalf("failed Put left a file: Stat = %v", err)
		}
	})
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func keys(m map[string][]byte, prefix string) []string {
	var out []string
	for k := range m {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func readAll(t *testing.T, ctx context.Context, p backends.Provider, path string, off, n int64) []byte {
	t.Helper()
	rc, err := p.Open(ctx, path, off, n)
	if err != nil {
		t.Fatalf("Open %s [%d,+%d): %v", path, off, n, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s [%d,+%d): %v", path, off, n, err)
	}
	return b
}
