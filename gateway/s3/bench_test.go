package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	md5simd "github.com/minio/md5-simd"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/datagate/datagate/fs"
)

// Benchmarks for the README (make bench-s3). Client and server share the
// process, so CPU figures (process user+system seconds per GiB moved) are
// the sum of both: an upper bound on the server's.

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// benchClient is an HTTP client with room for 32 idle connections.
var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}

// runConns runs n requests of req over conns connections.
func runConns(b *testing.B, conns int, do func() error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan struct{}, conns)
	go func() {
		for i := 0; i < b.N; i++ {
			next <- struct{}{}
		}
		close(next)
	}()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuSeconds()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				if err := do(); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if first != nil {
		b.Fatal(first)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N)*1e6, "cpu-µs/req")
}

// Small objects at 32 connections, every request SigV4-verified
// (presigned URLs: the client does not sign per request).
func BenchmarkSmall4KiB(b *testing.B) {
	e := newTestEnv(b)
	ctx := context.Background()
	data := bytes.Repeat([]byte("x"), 4096)
	for i := range 64 {
		if _, err := e.alice.PutObject(ctx, "data", fmt.Sprintf("small/%02d", i), bytes.NewReader(data), 4096, minio.PutObjectOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		urls := make([]string, 64)
		for i := range urls {
			u, err := e.alice.Presign(ctx, method, "data", fmt.Sprintf("small/%02d", i), time.Hour, url.Values{})
			if err != nil {
				b.Fatal(err)
			}
			urls[i] = u.String()
		}
		b.Run(method, func(b *testing.B) {
			var n int64
			var mu sync.Mutex
			runConns(b, 32, func() error {
				mu.Lock()
				u := urls[n%64]
				n++
				mu.Unlock()
				req, _ := http.NewRequest(method, u, nil)
				resp, err := benchClient.Do(req)
				if err != nil {
					return err
				}
				got, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || (method == http.MethodGet && got != 4096) {
					return fmt.Errorf("%s: %d, %d bytes", method, resp.StatusCode, got)
				}
				return nil
			})
		})
	}
}

// ListObjectsV2 over a 100,000-object view, 1,000 keys a page, all pages.
func BenchmarkList100k(b *testing.B) {
	e := newTestEnv(b)
	ctx := context.Background()
	const total = 100000
	objs := make([]*fs.Object, 0, 1000)
	for i := range total {
		objs = append(objs, &fs.Object{Name: fmt.Sprintf("f%05d", i), Size: 10, ModTime: time.Unix(1700000000, 0),
			Meta:   map[string]string{"bucket": "data", "path": fmt.Sprintf("d%03d/f%05d", i/1000, i)},
			Source: fs.Location{Provider: "disk", Path: fmt.Sprintf("src/%d", i)}})
		if len(objs) == cap(objs) {
			if _, err := e.st.Register(ctx, objs); err != nil {
				b.Fatal(err)
			}
			objs = objs[:0]
		}
	}
	// A raw client that only finds the next token, so the figure is the
	// server's (minio-go's XML decoding costs more than the serving).
	list := func(tok string) ([]byte, error) {
		u := e.url + "/data?list-type=2&max-keys=1000"
		if tok != "" {
			u += "&continuation-token=" + url.QueryEscape(tok)
		}
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("X-Amz-Content-Sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
		req = signer.SignV4(*req, aliceKey, aliceSecret, "", DefaultRegion)
		resp, err := benchClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("list: %d", resp.StatusCode)
		}
		return io.ReadAll(resp.Body)
	}
	b.ResetTimer()
	cpu0 := cpuSeconds()
	for range b.N {
		n, tok := 0, ""
		for {
			body, err := list(tok)
			if err != nil {
				b.Fatal(err)
			}
			n += bytes.Count(body, []byte("<Key>"))
			i := bytes.Index(body, []byte("<NextContinuationToken>"))
			if i < 0 {
				break
			}
			rest := body[i+len("<NextContinuationToken>"):]
			tok = string(rest[:bytes.IndexByte(rest, '<')])
		}
		if n != total {
			b.Fatalf("listed %d keys, want %d", n, total)
		}
	}
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/listing")
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/listing")
}

func bigSize() int64 {
	if v, err := strconv.ParseInt(os.Getenv("S3_BENCH_MIB"), 10, 64); err == nil && v > 0 {
		return v << 20
	}
	return 256 << 20
}

// patternBlock is what pattern repeats: cheap to produce, so the client
// takes as little of the shared CPU as it can.
var patternBlock = func() []byte {
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte(i>>12) ^ byte(i)
	}
	return b
}()

// pattern is an endless reader of patternBlock.
type pattern struct{ off int }

func (p *pattern) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		c := copy(b[n:], patternBlock[p.off:])
		n += c
		p.off = (p.off + c) % len(patternBlock)
	}
	return n, nil
}

// The part MD5s alone: 8 MiB parts, 1 MiB writes, 1 to 8 hashed at once,
// by crypto/md5 and by md5-simd streams of one server (simdMinParts).
func BenchmarkPartMD5(b *testing.B) {
	const part = 8 << 20
	buf := patternBlock
	srv := md5simd.NewServer()
	defer srv.Close()
	kinds := []struct {
		name string
		get  func() (hash.Hash, func())
	}{
		{"crypto", func() (hash.Hash, func()) { return md5.New(), func() {} }},
		{"simd", func() (hash.Hash, func()) { h := srv.NewHash(); return h, h.Close }},
	}
	for _, streams := range []int{1, 2, 3, 4, 8} {
		for _, k := range kinds {
			b.Run(fmt.Sprintf("%s-%d", k.name, streams), func(b *testing.B) {
				b.SetBytes(part * int64(streams))
				cpu0 := cpuSeconds()
				for range b.N {
					var wg sync.WaitGroup
					for range streams {
						wg.Add(1)
						go func() {
							defer wg.Done()
							h, done := k.get()
							for i := 0; i < part; i += len(buf) {
								h.Write(buf)
							}
							h.Sum(nil)
							done()
						}()
					}
					wg.Wait()
				}
				b.ReportMetric((cpuSeconds()-cpu0)/(float64(part*streams*b.N)/(1<<30)), "cpu-s/GiB")
			})
		}
	}
}

// Big objects: PutObject single and multipart (8 MiB parts, 4 in
// parallel), then GetObject of the stored object (sendfile).
func BenchmarkBig(b *testing.B) {
	e := newTestEnv(b)
	ctx := context.Background()
	size := bigSize()
	report := func(b *testing.B, cpu0 float64) {
		gib := float64(size*int64(b.N)) / (1 << 30)
		b.ReportMetric(float64(size*int64(b.N))/(1<<20)/b.Elapsed().Seconds(), "MiB/s")
		b.ReportMetric((cpuSeconds()-cpu0)/gib, "cpu-s/GiB")
	}
	b.Run("PutSingle", func(b *testing.B) {
		b.SetBytes(size)
		cpu0 := cpuSeconds()
		for range b.N {
			if _, err := e.alice.PutObject(ctx, "data", "big/single", io.LimitReader(&pattern{}, size), size, minio.PutObjectOptions{DisableMultipart: true}); err != nil {
				b.Fatal(err)
			}
		}
		report(b, cpu0)
	})
	// Each upload to a key of its own: an object replaced before its
	// background MD5 ran would have it skipped, which would flatter the
	// deferral of those jobs (fs/store/md5job.go). cpu-s/GiB counts until
	// the last answer, cpu-s/GiB-settled until the uploads' MD5s are
	// recorded as well.
	runs := 0
	b.Run("PutMultipart", func(b *testing.B) {
		b.SetBytes(size)
		runs++
		keys := make([]string, b.N)
		for i := range keys {
			keys[i] = fmt.Sprintf("big/multi-%d-%d", runs, i)
		}
		cpu0, linked0 := cpuSeconds(), e.srv.mp.linked.Load()
		for _, key := range keys {
			if _, err := e.alice.PutObject(ctx, "data", key, io.LimitReader(&pattern{}, size), size, minio.PutObjectOptions{PartSize: 8 << 20, NumThreads: 4, ConcurrentStreamParts: true}); err != nil {
				b.Fatal(err)
			}
		}
		report(b, cpu0)
		// Uploads whose assembly file the store was handed (assembly.go).
		b.ReportMetric(float64(e.srv.mp.linked.Load()-linked0)/float64(b.N), "assembled/op")
		b.StopTimer()
		for _, key := range keys {
			waitMD5(b, e, key)
		}
		b.ReportMetric((cpuSeconds()-cpu0)/(float64(size*int64(b.N))/(1<<30)), "cpu-s/GiB-settled")
		for _, key := range keys {
			e.alice.RemoveObject(ctx, "data", key, minio.RemoveObjectOptions{})
		}
	})
	b.Run("Get", func(b *testing.B) {
		b.SetBytes(size)
		cpu0 := cpuSeconds()
		for range b.N {
			o, err := e.alice.GetObject(ctx, "data", "big/single", minio.GetObjectOptions{})
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, o)
			o.Close()
			if err != nil || n != size {
				b.Fatalf("got %d bytes, %v", n, err)
			}
		}
		report(b, cpu0)
	})
}

// Complete's serial phase alone, which the client waits for: 256 MiB in
// 8 MiB parts sent 4 at a time (untimed), then CompleteMultipartUpload
// (timed: ms/complete), and the store's background MD5 left to finish
// before the next round (untimed).
func BenchmarkComplete(b *testing.B) {
	e := newTestEnv(b)
	ctx := context.Background()
	size := bigSize()
	const part = 8 << 20
	core := minio.Core{Client: e.alice}
	var total time.Duration
	b.StopTimer()
	for i := range b.N {
		key := fmt.Sprintf("complete/%d", i)
		id, err := core.NewMultipartUpload(ctx, "data", key, minio.PutObjectOptions{})
		if err != nil {
			b.Fatal(err)
		}
		n := int((size + part - 1) / part)
		parts := make([]minio.CompletePart, n)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		sem := make(chan struct{}, 4)
		for k := range n {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				sz := min(int64(part), size-int64(k)*part)
				p, err := core.PutObjectPart(ctx, "data", key, id, k+1, io.LimitReader(&pattern{}, sz), sz, minio.PutObjectPartOptions{})
				if err != nil {
					errs <- err
					return
				}
				parts[k] = minio.CompletePart{PartNumber: k + 1, ETag: p.ETag}
			}()
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		b.StartTimer()
		if _, err := core.CompleteMultipartUpload(ctx, "data", key, id, parts, minio.PutObjectOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		total += time.Since(t0)
		waitMD5(b, e, key)
		e.alice.RemoveObject(ctx, "data", key, minio.RemoveObjectOptions{})
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/complete")
}

// waitMD5 waits until the object at key in bucket data has its (deferred,
// background) MD5 recorded.
func waitMD5(b *testing.B, e *testEnv, key string) {
	ctx := context.Background()
	info, err := e.srv.tree("alice").Stat(ctx, treePath("data", key))
	if err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		o, err := e.st.Index().Get(ctx, info.ID())
		if err != nil || time.Now().After(deadline) {
			b.Fatalf("%s: no MD5 recorded: %v", key, err)
		}
		if o.MD5 != nil {
			return
		}
	}
}
