package store

import (
	"os"
	"testing"
)

// BenchmarkPlainRead1GiB is the reference of BenchmarkReadCached1GiB: the
// same 1 GiB file read with the same 1 MiB reads straight from the file
// system (page cache warm), without the Store.
func BenchmarkPlainRead1GiB(b *testing.B) {
	const size = 1 << 30
	p := writeBig(b, b.TempDir(), size)
	buf := make([]byte, 1<<20)
	read := func() {
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		var n int64
		for {
			m, err := f.Read(buf)
			n += int64(m)
			if m == 0 || err != nil {
				break
			}
		}
		if n != size {
			b.Fatalf("read %d of %d", n, size)
		}
	}
	read() // warm the page cache, as the cached object is
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		read()
	}
}
