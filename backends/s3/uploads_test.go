package s3

import (
	"context"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"
)

// skewedTime is the fake server's clock: now plus an offset the test sets.
type skewedTime struct{ off atomic.Int64 }

func (s *skewedTime) Now() time.Time                  { return time.Now().Add(time.Duration(s.off.Load())) }
func (s *skewedTime) Since(t time.Time) time.Duration { return s.Now().Sub(t) }

// Uploads a crash left (started two days ago) under the prefix are
// aborted; a recent one and one outside the prefix stay.
func TestAbortUploads(t *testing.T) {
	clock := &skewedTime{}
	srv := httptest.NewServer(gofakes3.New(s3mem.New(), gofakes3.WithTimeSource(clock), gofakes3.WithTimeSkewLimit(0)).Server())
	endpoint, mc := startFake(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	core := minio.Core{Client: mc}
	begin := func(key string) {
		t.Helper()
		if _, err := core.NewMultipartUpload(ctx, testBucket, key, minio.PutObjectOptions{}); err != nil {
			t.Fatalf("begin upload %s: %v", key, err)
		}
	}
	clock.off.Store(int64(-48 * time.Hour))
	begin("store/AB/crashed")
	begin("other/AB/crashed")
	clock.off.Store(0)
	begin("store/AB/in-progress")

	p := newProvider(t, Config{Endpoint: endpoint, Prefix: "store"})
	n, err := p.AbortUploads(ctx, time.Now().Add(-24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("AbortUploads: %d aborted, %v; want 1", n, err)
	}
	var left []string
	for u := range mc.ListIncompleteUploads(ctx, testBucket, "", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		left = append(left, u.Key)
	}
	slices.Sort(left)
	if !slices.Equal(left, []string{"other/AB/crashed", "store/AB/in-progress"}) {
		t.Fatalf("uploads left: %q", left)
	}
}
