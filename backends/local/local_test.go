package local

import (
	"bytes"
	"context"
	"errors"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/backendtest"
)

// newFixture writes files under a fresh directory and opens it.
func newFixture(t *testing.T, files map[string][]byte) *Provider {
	t.Helper()
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
	p, err := New("test", Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, files map[string][]byte) backends.Provider {
		return newFixture(t, files)
	})
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPathEscapes(t *testing.T) {
	p := newFixture(t, map[string][]byte{"a.txt": []byte("a")})
	// A file outside the root that an escape would reach.
	outside := filepath.Join(filepath.Dir(p.Root()), "secret.txt")
	if err := os.WriteFile(outside, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	bad := []string{
		"",
		"/etc/passwd",
		"..",
		"../secret.txt",
		"a/../../secret.txt",
		"a/..",
		"./a.txt",
		"a//b",
		"a/",
		"a\x00b",
		".tmp/put-123",
		".tmp",
	}
	for _, path := range bad {
		t.Run(strings.ReplaceAll(path, "/", "|"), func(t *testing.T) {
			check := func(op string, err error) {
				t.Helper()
				if !errors.Is(err, iofs.ErrInvalid) {
					t.Errorf("%s %q: %v, want ErrInvalid", op, path, err)
				}
			}
			rc, err := p.Open(ctx, path, 0, -1)
			if err == nil {
				rc.Close()
			}
			check("Open", err)
			_, err = p.Stat(ctx, path)
			check("Stat", err)
			check("Put", p.Put(ctx, path, strings.NewReader("x"), 1))
			check("Delete", p.Delete(ctx, path))
			_, err = p.LocalPath(path)
			check("LocalPath", err)
		})
	}
	if b, _ := os.ReadFile(outside); string(b) != "secret" {
		t.Fatalf("file outside the root changed: %q", b)
	}
	for _, prefix := range []string{"..", "../x", "/", "/etc", "a/../.."} {
		err := p.List(ctx, prefix, func(e backends.Entry) error {
			t.Errorf("List %q yielded %s", prefix, e.Path)
			return nil
		})
		if !errors.Is(err, iofs.ErrInvalid) {
			t.Errorf("List %q: %v, want ErrInvalid", prefix, err)
		}
	}
}

func TestNewRoot(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "x", "y")
	p, err := New("n", Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() || p.Root() != root {
		t.Fatalf("root not created: %v %v", fi, err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{file, filepath.Join(file, "sub")} {
		if _, err := New("n", Config{Root: r}); err == nil || !strings.Contains(err.Error(), r) {
			t.Errorf("New(%s) = %v, want an error naming the root", r, err)
		}
	}
	if _, err := New("n", Config{}); err == nil {
		t.Error("New with no root succeeded")
	}
}

// Open, for a data provider, creates nothing: a missing root is an
// error naming it (a mistyped root would serve an empty tree).
func TestOpenNeedsRoot(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "exprot")
	_, err := Open("mars", Config{Root: root})
	if !errors.Is(err, iofs.ErrNotExist) || !strings.Contains(err.Error(), root) || !strings.Contains(err.Error(), `"mars"`) {
		t.Fatalf("Open of a missing root: %v, want a not-exist error naming the provider and root", err)
	}
	if _, err := os.Stat(root); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("Open created the root: %v", err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open("mars", Config{Root: file}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("Open of a file: %v", err)
	}
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := Open("mars", Config{Root: root}); err != nil || p.Root() != root {
		t.Fatalf("Open of an existing root: %v", err)
	}
}

func TestOpenEdges(t *testing.T) {
	p := newFixture(t, map[string][]byte{"a.txt": []byte("hello"), "d/x": []byte("x")})
	ctx := ctxT(t)
	// The end of the file is a valid (empty) place to start reading.
	rc, err := p.Open(ctx, "a.txt", 5, -1)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(rc); err != nil || len(b) != 0 {
		t.Fatalf("read at end: %q %v", b, err)
	}
	rc.Close()
	if _, err := p.Open(ctx, "a.txt", 6, -1); !errors.Is(err, iofs.ErrInvalid) {
		t.Errorf("Open past end: %v, want ErrInvalid", err)
	}
	if _, err := p.Open(ctx, "a.txt", -1, 1); !errors.Is(err, iofs.ErrInvalid) {
		t.Errorf("Open negative offset: %v, want ErrInvalid", err)
	}
	rc, err = p.Open(ctx, "a.txt", 2, 10)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if string(b) != "llo" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short read = %q, %v; want \"llo\", ErrUnexpectedEOF", b, err)
	}
	if _, err := p.Open(ctx, "a.txt/x", 0, -1); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("Open under a file: %v, want ErrNotExist", err)
	}
	if _, err := p.Open(ctx, "d", 0, -1); !errors.Is(err, iofs.ErrInvalid) {
		t.Errorf("Open a directory: %v, want ErrInvalid", err)
	}
	if _, err := p.Stat(ctx, "d"); !errors.Is(err, iofs.ErrInvalid) {
		t.Errorf("Stat a directory: %v, want ErrInvalid", err)
	}
	if err := p.List(ctx, "a.txt", func(backends.Entry) error { return nil }); err == nil {
		t.Error("List of a file succeeded")
	}
	lp, err := p.LocalPath("d/x")
	if err != nil || lp != filepath.Join(p.Root(), "d", "x") {
		t.Errorf("LocalPath = %q, %v", lp, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.Open(cctx, "a.txt", 0, -1); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a cancelled ctx: %v", err)
	}
}

func tmpEntries(t *testing.T, p *Provider) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(p.Root(), tmpDir))
	if err != nil && !errors.Is(err, iofs.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestPutLeavesNoTrace(t *testing.T) {
	p := newFixture(t, map[string][]byte{"keep.txt": []byte("old")})
	ctx := ctxT(t)
	defer syscall.Umask(syscall.Umask(0o022))
	// Wrong announced sizes, a cancelled context, a failing reader.
	if err := p.Put(ctx, "keep.txt", strings.NewReader("toolong"), 3); !errors.Is(err, iofs.ErrInvalid) {
		t.Errorf("Put longer than size: %v, want ErrInvalid", err)
	}
	if err := p.Put(ctx, "keep.txt", strings.NewReader("ab"), 3); !errors.Is(err, iofs.ErrInvalid) {
		t.Errorf("Put shorter than size: %v, want ErrInvalid", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	r := io.MultiReader(strings.NewReader("abc"), readerFunc(func([]byte) (int, error) { cancel(); return 0, nil }), strings.NewReader("def"))
	if err := p.Put(cctx, "keep.txt", r, -1); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with ctx cancelled mid-copy: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(p.Root(), "keep.txt")); string(b) != "old" {
		t.Errorf("failed Puts changed the file: %q", b)
	}
	if n := tmpEntries(t, p); len(n) != 0 {
		t.Errorf("failed Puts left temporary files: %v", n)
	}
	// A successful Put into new directories, and the temporary directory
	// stays out of listings even when something is in it.
	if err := p.Put(ctx, "new/deep/f.bin", bytes.NewReader([]byte("data")), 4); err != nil {
		t.Fatal(err)
	}
	if n := tmpEntries(t, p); len(n) != 0 {
		t.Errorf("Put left temporary files: %v", n)
	}
	if err := os.WriteFile(filepath.Join(p.Root(), tmpDir, "put-stray"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := p.List(ctx, "", func(e backends.Entry) error { got = append(got, e.Path); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "keep.txt,new/deep/f.bin" {
		t.Errorf("List = %v", got)
	}
	if fi, err := os.Stat(filepath.Join(p.Root(), "new/deep/f.bin")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("stored file mode: %v %v, want 0644 under umask 022", fi, err)
	}
	// Put over a directory fails and leaves the directory alone.
	if err := p.Put(ctx, "new/deep", strings.NewReader("x"), 1); err == nil {
		t.Error("Put over a directory succeeded")
	}
	if err := p.Delete(ctx, "new/deep"); !errors.Is(err, iofs.ErrInvalid) {
		t.Errorf("Delete of a directory: %v, want ErrInvalid", err)
	}
	if err := p.Delete(ctx, "keep.txt/nothing"); err != nil {
		t.Errorf("Delete below a file: %v, want nil (absent)", err)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		errno syscall.Errno
		want  error
	}{
		{syscall.ENOSPC, backends.ErrNoSpace},
		{syscall.EDQUOT, backends.ErrNoSpace},
		{syscall.ENOENT, iofs.ErrNotExist},
		{syscall.ENOTDIR, iofs.ErrNotExist},
		{syscall.EACCES, iofs.ErrPermission},
		{syscall.EROFS, iofs.ErrPermission},
		{syscall.ENAMETOOLONG, iofs.ErrInvalid},
	} {
		err := (&Provider{name: "p"}).wrap("put", "x/y", &iofs.PathError{Op: "write", Path: "/r/x/y", Err: tc.errno})
		if !errors.Is(err, tc.want) || !errors.Is(err, tc.errno) {
			t.Errorf("%v: %v does not match %v and the errno", tc.errno, err, tc.want)
		}
		if !strings.Contains(err.Error(), `"p"`) || !strings.Contains(err.Error(), "x/y") {
			t.Errorf("%v: message %q names neither provider nor path", tc.errno, err)
		}
	}
}
