package cache

import (
	"testing"
)

// TestStats: hits, misses, bytes served and fetched, entries and
// evictions count what the reads did.
func TestStats(t *testing.T) {
	const chunk = 4096
	c := newCache(t, Options{ChunkSize: chunk, MaxSize: 6 * chunk, ReadAhead: -1})
	a := newSource("a", 4*chunk, 1)
	f := open(t, c, a)
	buf := make([]byte, chunk)
	read := func(off int64) {
		t.Helper()
		if _, err := f.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
	}
	read(0)     // miss: fetched
	read(0)     // hit: present
	read(chunk) // miss
	st := c.Stats()
	if st.Hits != 1 || st.Misses != 2 || st.BytesServed != 3*chunk || st.BytesFetched != 2*chunk ||
		st.Size != 2*chunk || st.Entries != 1 || st.MaxSize != 6*chunk || st.Evictions != 0 {
		t.Fatalf("after three reads: %+v", st)
	}
	readAll(t, f) // two chunks more fetched; then complete
	read(3 * chunk)
	f.Close()
	st = c.Stats()
	if st.BytesFetched != 4*chunk || st.Size != 4*chunk || st.BytesServed != 3*chunk+4*chunk+chunk {
		t.Fatalf("after a whole read: %+v", st)
	}
	hits := st.Hits

	// A second entry pushes the first, unused, out.
	b := newSource("b", 4*chunk, 2)
	fb := open(t, c, b)
	readAll(t, fb)
	eventually(t, "a evicted", func() bool { return c.Stats().Evictions == 1 })
	st = c.Stats()
	if st.Entries != 1 || st.Size != 4*chunk || st.Hits < hits {
		t.Fatalf("after an eviction: %+v", st)
	}
}
