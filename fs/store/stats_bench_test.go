package store

import (
	"context"
	"fmt"
	"testing"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/local"
	"github.com/datagate/datagate/fs"
)

// BenchmarkStats is one Stats call (what /metrics and the admin API pay
// per request) on catalogues of 1,000 and 100,000 objects: it reads
// counters, so its cost does not grow with the catalogue.
//
//	go test ./fs/store -run '^$' -bench Stats -count 3
func BenchmarkStats(b *testing.B) {
	for _, n := range []int{1000, 100_000} {
		b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
			disk, _ := local.New("disk", local.Config{Root: b.TempDir()})
			st := benchStore(b, map[string]backends.Provider{"disk": disk})
			ctx := context.Background()
			for i := 0; i < n; i += 1000 {
				batch := make([]*fs.Object, 0, 1000)
				for j := i; j < min(n, i+1000); j++ {
					batch = append(batch, &fs.Object{Source: fs.Location{Provider: "disk", Path: fmt.Sprint("f", j)}, Size: int64(j)})
				}
				if _, err := st.Register(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				s, err := st.Stats(ctx)
				if err != nil || s.Objects != int64(n) {
					b.Fatalf("%d objects, %v", s.Objects, err)
				}
			}
		})
	}
}
