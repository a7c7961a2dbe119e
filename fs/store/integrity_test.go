package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/datagate/datagate/backends/local"
)

// flip flips one byte of the file at p in place (its mtime moves, as with
// any write).
func flip(t *testing.T, p string, off int64) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := []byte{0}
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptStoredContentIsNotServed damages a pushed object's primary
// file after it was written: the open re-hashes it, sets it aside and
// reads the replica; without a replica the open fails. A file whose mtime
// moved but whose content is intact is served and stamped again.
func TestCorruptStoredContentIsNotServed(t *testing.T) {
	e := newRepEnv(t, nil)
	ctx := ctxT(t)
	data := pattern(300_000)
	o, err := e.st.Put(ctx, PutRequest{Name: "p", Size: int64(len(data))}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(e.dir, "objects", primaryPath(o.ID))
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(sentinel(o)) {
		t.Fatalf("Put left mtime %v, want the sentinel %v", fi.ModTime(), sentinel(o))
	}
	e.run()
	waitFor(t, func() bool { return hasStore(t, e.st, o.ID, "second") })

	// Touched, content intact: served, stamped again.
	if err := os.Chtimes(p, time.Time{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got, err := readObject(t, e.st, o.ID); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("touched file: %v", err)
	}
	if fi, _ := os.Stat(p); !fi.ModTime().Equal(sentinel(o)) {
		t.Errorf("re-verified file has mtime %v, want the sentinel", fi.ModTime())
	}

	// verify stamps a good file only with --repair.
	touched := time.Now().Add(-time.Minute).Truncate(time.Second)
	os.Chtimes(p, time.Time{}, touched)
	if _, err := e.st.Verify(ctx, CheckOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); !fi.ModTime().Equal(touched) {
		t.Errorf("verify without --repair changed the mtime to %v", fi.ModTime())
	}
	if _, err := e.st.Verify(ctx, CheckOptions{Repair: true}, nil); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); !fi.ModTime().Equal(sentinel(o)) {
		t.Errorf("verify --repair left mtime %v on a good file, want the sentinel", fi.ModTime())
	}

	// Damaged: never served; the replica is.
	flip(t, p, 123_456)
	for i := range 2 {
		got, err := readObject(t, e.st, o.ID)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %d of a damaged primary with a replica: %v (equal %v)", i, err, bytes.Equal(got, data))
		}
	}
	if _, err := os.Stat(p + quarantineSuffix); err != nil {
		t.Errorf("damaged file not set aside: %v", err)
	}
	// verify --repair restores the primary copy, stamped.
	if _, err := e.st.Verify(ctx, CheckOptions{Repair: true}, nil); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || !fi.ModTime().Equal(sentinel(o)) {
		t.Errorf("after verify --repair: %v %v", fi, err)
	}
	if _, err := os.Stat(p + quarantineSuffix); err == nil {
		t.Error("the corrupt file set aside is left after the repair")
	}
	if r, err := e.st.Open(ctx, o.ID); err != nil || r.file == nil {
		t.Errorf("after verify --repair the primary file is not served: %v", err)
	} else {
		r.Close()
	}

	// Damaged without a replica: a clear error, not the bytes.
	e2 := newEnv(t)
	lone, err := e2.st.Put(ctx, PutRequest{Name: "lone", Size: int64(len(data))}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	flip(t, filepath.Join(e2.dir, "objects", primaryPath(lone.ID)), 5)
	if got, err := readObject(t, e2.st, lone.ID); err == nil {
		t.Fatalf("damaged primary without a replica served %d bytes (equal %v)", len(got), bytes.Equal(got, data))
	} else {
		t.Log(err)
	}
}

// BenchmarkOpenStored measures opening a pushed object's content: with
// its sentinel in place (one fstat more than a plain open, the baseline)
// and after its mtime moved (the whole 64 MiB file hashed again before it
// is served).
//
//	go test ./fs/store -run '^$' -bench OpenStored
func BenchmarkOpenStored(b *testing.B) {
	dir := b.TempDir()
	primary, err := local.New(PrimaryName, local.Config{Root: filepath.Join(dir, "objects")})
	if err != nil {
		b.Fatal(err)
	}
	st, err := Open(context.Background(), Options{Dir: dir, Primary: primary})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	data := pattern(64 << 20)
	o, err := st.Put(ctx, PutRequest{Name: "b", Size: int64(len(data))}, bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	p := filepath.Join(dir, "objects", primaryPath(o.ID))
	b.Run("plain-open", func(b *testing.B) { // baseline: os.Open + Close
		for b.Loop() {
			f, err := os.Open(p)
			if err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
	b.Run("stamped", func(b *testing.B) {
		for b.Loop() {
			r, err := st.OpenObject(ctx, o)
			if err != nil {
				b.Fatal(err)
			}
			r.Close()
		}
	})
	b.Run("mtime-moved-64MiB", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			b.StopTimer()
			os.Chtimes(p, time.Time{}, time.Now())
			b.StartTimer()
			r, err := st.OpenObject(ctx, o)
			if err != nil {
				b.Fatal(err)
			}
			r.Close()
		}
	})
}
