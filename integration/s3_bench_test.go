package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// serverCPU is the user+system CPU time of a process, from /proc.
func serverCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name (which may hold spaces): state is 3,
	// utime 14, stime 15; clock ticks of 1/100 s on Linux.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

type patternReader struct{ off int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(p.off >> 12)
		p.off++
	}
	return len(b), nil
}

// The real binary's CPU per GiB moved (S3_BENCH_MIB, default 256):
// PutObject single and multipart (8 MiB parts, 4 in parallel), then
// GetObject of the stored object (sendfile). make bench-s3.
func BenchmarkS3Server(b *testing.B) {
	size := int64(256 << 20)
	if v, err := strconv.ParseInt(os.Getenv("S3_BENCH_MIB"), 10, 64); err == nil && v > 0 {
		size = v << 20
	}
	dataDir := b.TempDir()
	srv := startS3Server(b, s3Config(dataDir, "127.0.0.1:0"))
	c, err := minio.New(srv.addr, &minio.Options{Creds: credentials.NewStaticV4(s3Alice, s3AliceSecret, ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	pid := srv.cmd.Process.Pid
	measure := func(b *testing.B, fn func() error) {
		b.SetBytes(size)
		cpu0, t0 := serverCPU(b, pid), time.Now()
		for range b.N {
			if err := fn(); err != nil {
				b.Fatal(err)
			}
		}
		gib := float64(size*int64(b.N)) / (1 << 30)
		b.ReportMetric(float64(size*int64(b.N))/(1<<20)/time.Since(t0).Seconds(), "MiB/s")
		b.ReportMetric((serverCPU(b, pid)-cpu0).Seconds()/gib, "server-cpu-s/GiB")
	}
	b.Run("PutSingle", func(b *testing.B) {
		measure(b, func() error {
			_, err := c.PutObject(ctx, "inbox", "bench/single", io.LimitReader(&patternReader{}, size), size, minio.PutObjectOptions{DisableMultipart: true})
			return err
		})
	})
	b.Run("PutMultipart", func(b *testing.B) {
		measure(b, func() error {
			_, err := c.PutObject(ctx, "inbox", "bench/multi", io.LimitReader(&patternReader{}, size), size, minio.PutObjectOptions{PartSize: 8 << 20, NumThreads: 4, ConcurrentStreamParts: true})
			return err
		})
	})
	b.Run("Get", func(b *testing.B) {
		measure(b, func() error {
			o, err := c.GetObject(ctx, "inbox", "bench/single", minio.GetObjectOptions{})
			if err != nil {
				return err
			}
			defer o.Close()
			n, err := io.Copy(io.Discard, o)
			if err == nil && n != size {
				err = fmt.Errorf("got %d bytes", n)
			}
			return err
		})
	})
	srv.cmd.Process.Kill()
}
