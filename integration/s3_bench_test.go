package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	iofs "io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/signer"
	"golang.org/x/crypto/bcrypt"

	"github.com/datagate/datagate/views/audittest"
)

// patternBlock is what patternReader repeats: cheap to produce, so the
// client (on the same cores) takes as little CPU from the server as it can.
var patternBlock = func() []byte {
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte(i>>12) ^ byte(i)
	}
	return b
}()

type patternReader struct{ off int }

func (p *patternReader) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		c := copy(b[n:], patternBlock[p.off:])
		n += c
		p.off = (p.off + c) % len(patternBlock)
	}
	return n, nil
}

func envMiB(name string, def int64) int64 {
	if v, err := strconv.ParseInt(os.Getenv(name), 10, 64); err == nil && v > 0 {
		return v << 20
	}
	return def << 20
}

// BenchmarkS3Server measures the real binary, its CPU from /proc
// (make bench-s3; README "S3 API"):
//   - PutSingle (aws-chunked, signed chunks), PutMultipart (8 MiB parts,
//     4 in parallel), Get: minio-go with S3_BENCH_MIB (default 256);
//     PutSingleSHA256: one signed PUT carrying the body's SHA-256, as the
//     aws CLI sends over plain HTTP;
//   - GetBig, for s3, webdav and nginx: one cached object of S3_BENCH_GET_MIB
//     (default 1024) fetched by curl through a presigned S3 URL, through
//     the WebDAV front-end of the same process, and from nginx serving
//     the very file the store keeps;
//   - Small, for s3-GET, s3-HEAD, webdav-GET, nginx-GET: 4 KiB objects with wrk
//     (HEAD: a Go client, wrk cannot parse HEAD answers), 32 connections;
//     S3 requests are presigned URLs (made once, replayed within
//     X-Amz-Expires), each verified by the server.
//
// The subjects take turns in each round of the same run, so ratios count;
// each reports its rate and its server's CPU. curl, wrk and nginx
// are needed for GetBig and Small (skipped without them).
func BenchmarkS3Server(b *testing.B) {
	size := envMiB("S3_BENCH_MIB", 256)
	bigSize := envMiB("S3_BENCH_GET_MIB", 1024)
	dataDir := b.TempDir()
	davAddr := s3FreePort(b)
	hash, err := bcrypt.GenerateFromPassword([]byte(davPassword), bcrypt.MinCost)
	if err != nil {
		b.Fatal(err)
	}
	srv := startS3Server(b, fmt.Sprintf(`data: %s
listen: {admin: '127.0.0.1:0', s3: '127.0.0.1:0', webdav: '%s'}
s3: {region: us-east-1, upload_max_age: 1h}
views:
  inbox:  {path: "{path...}", filter: "bucket = inbox", set: {bucket: inbox}}
users:
  alice:
    s3_keys: [{id: %s, secret: %s}]
    password_hash: '%s'
    views: {inbox: rwd}
`, dataDir, davAddr, s3Alice, s3AliceSecret, hash))
	c, err := minio.New(srv.addr, &minio.Options{Creds: credentials.NewStaticV4(s3Alice, s3AliceSecret, ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	pid := srv.cmd.Process.Pid
	// settled is the server's CPU time once it stays idle: the store
	// computes some uploads' MD5 after answering (fs/store/md5job.go).
	// A multipart object's MD5 waits 200 ms after the last upload, so
	// idle means three quiet 300 ms intervals in a row.
	settled := func() float64 {
		last, quiet := davCPUSeconds(pid), 0
		for deadline := time.Now().Add(40 * time.Second); time.Now().Before(deadline); {
			time.Sleep(300 * time.Millisecond)
			c := davCPUSeconds(pid)
			if quiet++; c-last >= 0.015 {
				quiet = 0
			}
			if quiet == 3 {
				return c
			}
			last = c
		}
		return last
	}
	measure := func(b *testing.B, fn func() error) {
		b.SetBytes(size)
		syscall.Sync() // earlier writes go to disk now, not during this one
		cpu0 := settled()
		t0 := time.Now()
		for range b.N {
			if err := fn(); err != nil {
				b.Fatal(err)
			}
		}
		gib := float64(size*int64(b.N)) / (1 << 30)
		b.ReportMetric(float64(size*int64(b.N))/(1<<20)/time.Since(t0).Seconds(), "MiB/s")
		b.ReportMetric((davCPUSeconds(pid)-cpu0)/gib, "server-cpu-s/GiB")
		// With the work left after the last answer.
		b.ReportMetric((settled()-cpu0)/gib, "server-cpu-s/GiB-settled")
	}
	b.Run("PutSingle", func(b *testing.B) {
		measure(b, func() error {
			_, err := c.PutObject(ctx, "inbox", "bench/single", io.LimitReader(&patternReader{}, size), size, minio.PutObjectOptions{DisableMultipart: true})
			return err
		})
	})
	// As the aws CLI sends over plain HTTP: the body's SHA-256 in
	// x-amz-content-sha256 (the store checks it while hashing), no chunks.
	sum := sha256.New()
	io.Copy(sum, io.LimitReader(&patternReader{}, size))
	bodySHA := hex.EncodeToString(sum.Sum(nil))
	b.Run("PutSingleSHA256", func(b *testing.B) {
		measure(b, func() error {
			req, err := http.NewRequest(http.MethodPut, "http://"+srv.addr+"/inbox/bench/hashed", io.LimitReader(&patternReader{}, size))
			if err != nil {
				return err
			}
			req.ContentLength = size
			req.Header.Set("X-Amz-Content-Sha256", bodySHA)
			req = signer.SignV4(*req, s3Alice, s3AliceSecret, "", "us-east-1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				msg, _ := io.ReadAll(resp.Body)
				return fmt.Errorf("PUT: %s: %s", resp.Status, msg)
			}
			return nil
		})
	})
	// A key per upload: an overwritten object's deferred MD5 would be
	// skipped, and not counted in the settled figure.
	multis := 0
	b.Run("PutMultipart", func(b *testing.B) {
		measure(b, func() error {
			multis++
			_, err := c.PutObject(ctx, "inbox", fmt.Sprintf("bench/multi%03d", multis), io.LimitReader(&patternReader{}, size), size, minio.PutObjectOptions{PartSize: 8 << 20, NumThreads: 4, ConcurrentStreamParts: true})
			return err
		})
	})
	// As the aws CLI uploads over plain HTTP (s3 cp of a big file): 8 MiB
	// parts, 4 at a time, each PUT signed with its part's SHA-256, which
	// the server checks while it hashes the part. Every part of the
	// pattern holds the same bytes, so their hash is computed once here.
	const partSize = 8 << 20
	part := make([]byte, partSize)
	io.ReadFull(&patternReader{}, part)
	partSum := sha256.Sum256(part)
	partSHA := hex.EncodeToString(partSum[:])
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	b.Run("PutMultipartSHA256", func(b *testing.B) {
		if size%partSize != 0 {
			b.Skipf("S3_BENCH_MIB is not a multiple of 8 MiB")
		}
		measure(b, func() error {
			multis++
			return awsStyleMultipart(hc, "http://"+srv.addr+"/inbox/"+fmt.Sprintf("bench/multisha%03d", multis), part, partSHA, int(size/partSize), 4)
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

	for _, tool := range []string{"curl", "wrk", "nginx"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Logf("%s is not installed: GetBig and Small skipped", tool)
			srv.cmd.Process.Kill()
			return
		}
	}
	// The big object and the small ones, and nginx serving the files the
	// store keeps for them (the same bytes on the same disk).
	if _, err := c.PutObject(ctx, "inbox", "bench/big", io.LimitReader(&patternReader{}, bigSize), bigSize, minio.PutObjectOptions{PartSize: 64 << 20, NumThreads: 2}); err != nil {
		b.Fatal(err)
	}
	small := bytes.Repeat([]byte("s"), 4096)
	if _, err := c.PutObject(ctx, "inbox", "bench/small", bytes.NewReader(small), 4096, minio.PutObjectOptions{}); err != nil {
		b.Fatal(err)
	}
	bigFile, smallFile := storedFile(b, dataDir, bigSize, nil), storedFile(b, dataDir, 4096, small)
	ng := startNginx(b, map[string]string{"big": bigFile, "small": smallFile})
	defer ng.Process.Kill()

	presign := func(method, key string) string {
		u, err := c.Presign(ctx, method, "inbox", key, time.Hour, url.Values{})
		if err != nil {
			b.Fatal(err)
		}
		return u.String()
	}
	// A user with one view sees it as the WebDAV root.
	davURL := "http://" + davAddr + "/bench/"
	davAuth := "Authorization: Basic " + davBasic("alice", davPassword)

	type target struct {
		name, url string
		header    string // for curl and wrk
		pid       int
	}
	bigTargets := []target{
		{"s3", presign("GET", "bench/big"), "", pid},
		{"webdav", davURL + "big", davAuth, pid},
		{"nginx", ng.url + "/big", "", ng.Process.Pid},
	}
	// Warm: every subject reads the whole file once (page cache; the
	// store's object is stored content, so it is not fetched).
	for _, tg := range bigTargets {
		curlGet(b, tg.url, tg.header)
	}
	// The uploads' dirty pages go to disk now, not during a measurement.
	syscall.Sync()
	// Subjects take turns in every round, so a change of the machine's
	// load falls on all of them alike.
	b.Run("GetBig", func(b *testing.B) {
		secs := make([]float64, len(bigTargets))
		cpu := make([]float64, len(bigTargets))
		for r := range b.N {
			for k := range bigTargets {
				i := (r + k) % len(bigTargets) // who goes first rotates
				tg := bigTargets[i]
				cpu0 := davCPUSeconds(tg.pid)
				secs[i] += curlGet(b, tg.url, tg.header)
				cpu[i] += davCPUSeconds(tg.pid) - cpu0
			}
		}
		gib := float64(bigSize*int64(b.N)) / (1 << 30)
		for i, tg := range bigTargets {
			b.ReportMetric(gib*1024/secs[i], tg.name+"-MiB/s")
			b.ReportMetric(cpu[i]/gib, tg.name+"-cpu-s/GiB")
		}
	})

	smallTargets := []struct {
		target
		method string
		urls   []string
	}{
		{target{name: "s3-GET", pid: pid}, "GET", nil},
		{target{name: "s3-HEAD", pid: pid}, "HEAD", nil},
		{target{name: "webdav-GET", header: davAuth, pid: pid}, "GET", []string{davURL + "small"}},
		{target{name: "nginx-GET", pid: ng.Process.Pid}, "GET", []string{ng.url + "/small"}},
	}
	// Presigned URLs for 64 objects, so the server's lookups are not of
	// one key only.
	for i := range 64 {
		key := fmt.Sprintf("bench/small%02d", i)
		if _, err := c.PutObject(ctx, "inbox", key, bytes.NewReader(small), 4096, minio.PutObjectOptions{}); err != nil {
			b.Fatal(err)
		}
		smallTargets[0].urls = append(smallTargets[0].urls, presign("GET", key))
		smallTargets[1].urls = append(smallTargets[1].urls, presign("HEAD", key))
	}
	b.Run("Small", func(b *testing.B) {
		reqs := make([]float64, len(smallTargets))
		secs := make([]float64, len(smallTargets))
		cpu := make([]float64, len(smallTargets))
		for r := range b.N {
			for k := range smallTargets {
				i := (r + k) % len(smallTargets) // who goes first rotates
				tg := smallTargets[i]
				run := runWrk
				if tg.method == "HEAD" {
					run = runHeads
				}
				cpu0 := davCPUSeconds(tg.pid)
				n, s := run(b, tg.method, tg.urls, tg.header)
				cpu[i] += davCPUSeconds(tg.pid) - cpu0
				reqs[i] += n
				secs[i] += s
			}
		}
		for i, tg := range smallTargets {
			b.ReportMetric(reqs[i]/secs[i], tg.name+"-req/s")
			b.ReportMetric(cpu[i]/reqs[i]*1e6, tg.name+"-cpu-µs/req")
		}
	})
	srv.cmd.Process.Kill()
}

// storedFile finds the file under the data directory's objects that holds
// an object of that size (and content, when given).
func storedFile(b *testing.B, dataDir string, size int64, content []byte) string {
	var found string
	filepath.WalkDir(filepath.Join(dataDir, "objects"), func(p string, d iofs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found != "" {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.Size() == size {
			if content != nil {
				if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, content) {
					return nil
				}
			}
			found = p
		}
		return nil
	})
	if found == "" {
		b.Fatalf("no stored file of %d bytes under %s", size, dataDir)
	}
	return found
}

type nginxProc struct {
	*exec.Cmd
	url string
}

// startNginx serves files (URL name -> path) as static files with
// sendfile, from symbolic links in a directory of its own.
func startNginx(b *testing.B, files map[string]string) *nginxProc {
	work := b.TempDir()
	root := filepath.Join(work, "root")
	os.Mkdir(root, 0o755)
	for name, p := range files {
		if err := os.Symlink(p, filepath.Join(root, name)); err != nil {
			b.Fatal(err)
		}
	}
	addr := s3FreePort(b)
	conf := fmt.Sprintf(`daemon off; master_process off; pid %[1]s/nginx.pid; error_log %[1]s/nginx.err;
events { worker_connections 1024; }
http { access_log off; sendfile on; keepalive_requests 1000000; client_body_temp_path %[1]s/ncb; proxy_temp_path %[1]s/np; fastcgi_temp_path %[1]s/nf; uwsgi_temp_path %[1]s/nu; scgi_temp_path %[1]s/ns;
  server { listen %[2]s; root %[3]s; } }
`, work, addr, root)
	os.WriteFile(filepath.Join(work, "nginx.conf"), []byte(conf), 0o644)
	ng := exec.Command("nginx", "-c", filepath.Join(work, "nginx.conf"), "-p", work)
	ng.Stderr = &audittest.Log{}
	if err := ng.Start(); err != nil {
		b.Fatal(err)
	}
	waitHTTP(b, "http://"+addr+"/")
	return &nginxProc{ng, "http://" + addr}
}

// curlGet fetches u to /dev/null and returns the transfer's seconds.
func curlGet(b *testing.B, u, header string) float64 {
	args := []string{"-sS", "-o", "/dev/null", "-w", "%{http_code} %{time_total}"}
	if header != "" {
		args = append(args, "-H", header)
	}
	out, err := davRun(b, nil, "", "curl", append(args, u)...)
	if err != nil {
		b.Fatalf("curl %s: %v\n%s", u, err, out)
	}
	var code int
	var secs float64
	fmt.Sscan(out, &code, &secs)
	if code != 200 {
		b.Fatalf("curl %s: HTTP %d", u, code)
	}
	return secs
}

// runWrk runs wrk for 3 s with 32 connections over 2 threads, cycling
// through urls (same host) with method, and returns the requests done and
// the seconds taken. Any non-2xx answer fails the benchmark.
func runWrk(b *testing.B, method string, urls []string, header string) (reqs, secs float64) {
	var lua strings.Builder
	lua.WriteString("local paths = {\n")
	for _, u := range urls {
		pu, err := url.Parse(u)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(&lua, "  %q,\n", pu.RequestURI())
	}
	fmt.Fprintf(&lua, "}\nlocal i = 0\nrequest = function()\n  i = i + 1\n  return wrk.format(%q, paths[i %% #paths + 1])\nend\n", method)
	script := filepath.Join(b.TempDir(), "req.lua")
	if err := os.WriteFile(script, []byte(lua.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	args := []string{"-t2", "-c32", "-d3s", "-s", script}
	if header != "" {
		args = append(args, "-H", header)
	}
	out, err := davRun(b, nil, "", "wrk", append(args, urls[0])...)
	if err != nil {
		b.Fatalf("wrk: %v\n%s", err, out)
	}
	if strings.Contains(out, "Non-2xx") || strings.Contains(out, "Socket errors") {
		b.Fatalf("wrk saw errors:\n%s", out)
	}
	// "12345 requests in 3.00s, ..."
	i := strings.Index(out, " requests in ")
	if i < 0 {
		b.Fatalf("wrk output:\n%s", out)
	}
	line := out[strings.LastIndexByte(out[:i], '\n')+1:]
	var n float64
	var d string
	fmt.Sscanf(strings.TrimSpace(line), "%g requests in %s", &n, &d)
	dur, err := time.ParseDuration(strings.TrimSuffix(d, ","))
	if err != nil || n == 0 {
		b.Fatalf("wrk output:\n%s", out)
	}
	return n, dur.Seconds()
}

// runHeads is runWrk for HEAD, with Go's client: 32 connections for 3 s.
func runHeads(b *testing.B, method string, urls []string, header string) (reqs, secs float64) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32, MaxConnsPerHost: 32}}
	defer client.CloseIdleConnections()
	var n atomic.Int64
	var failed atomic.Value
	stop := time.Now().Add(3 * time.Second)
	t0 := time.Now()
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; time.Now().Before(stop); i++ {
				req, _ := http.NewRequest(method, urls[i%len(urls)], nil)
				resp, err := client.Do(req)
				if err != nil {
					failed.Store(err.Error())
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Store(resp.Status)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f != nil {
		b.Fatalf("%s: %v", method, f)
	}
	return float64(n.Load()), time.Since(t0).Seconds()
}

// awsStyleMultipart uploads n copies of part to url as one multipart
// upload, par parts at a time, each UploadPart signed with sum (the
// part's SHA-256), as the aws CLI does over plain HTTP.
func awsStyleMultipart(hc *http.Client, url string, part []byte, sum string, n, par int) error {
	do := func(method, u string, body []byte, sha string) (*http.Response, error) {
		req, err := http.NewRequest(method, u, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.ContentLength = int64(len(body))
		req.Header.Set("X-Amz-Content-Sha256", sha)
		req = signer.SignV4(*req, s3Alice, s3AliceSecret, "", "us-east-1")
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return nil, fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, msg)
		}
		return resp, nil
	}
	hashOf := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	resp, err := do(http.MethodPost, url+"?uploads", nil, hashOf(nil))
	if err != nil {
		return err
	}
	var created struct{ UploadId string }
	err = xml.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if err != nil {
		return err
	}
	etags := make([]string, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			resp, err := do(http.MethodPut, fmt.Sprintf("%s?partNumber=%d&uploadId=%s", url, i+1, created.UploadId), part, sum)
			if err != nil {
				errs <- err
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			etags[i] = resp.Header.Get("ETag")
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	var body bytes.Buffer
	body.WriteString("<CompleteMultipartUpload>")
	for i, et := range etags {
		fmt.Fprintf(&body, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i+1, et)
	}
	body.WriteString("</CompleteMultipartUpload>")
	resp, err = do(http.MethodPost, url+"?uploadId="+created.UploadId, body.Bytes(), hashOf(body.Bytes()))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if !bytes.Contains(msg, []byte("<ETag>")) {
		return fmt.Errorf("complete: %s", msg)
	}
	return nil
}
