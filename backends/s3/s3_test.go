package s3

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/backendtest"
)

const (
	testBucket = "datagate-test"
	testAccess = "AKIDTEST"
	testSecret = "s3cr3t-never-in-messages"
)

// fakeS3 starts gofakes3 (in-memory) on loopback and returns its host:port
// and a plain minio-go client for it, with testBucket created.
//
// gofakes3 does not verify request signatures, so credentials are not
// exercised here: see TestErrorCodes for AccessDenied & co.
func fakeS3(t *testing.T) (string, *minio.Client) {
	t.Helper()
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	return startFake(t, srv)
}

// fakeS3TLS is fakeS3 over https. It points SSL_CERT_FILE, which minio-go's
// default transport honours, at the server's certificate, so providers made
// after it with Secure: true trust the server.
func fakeS3TLS(t *testing.T) (string, *minio.Client) {
	t.Helper()
	srv := httptest.NewTLSServer(gofakes3.New(s3mem.New()).Server())
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", ca)
	return startFake(t, srv)
}

func startFake(t *testing.T, srv *httptest.Server) (string, *minio.Client) {
	t.Helper()
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(testAccess, testSecret, ""),
		Secure:       u.Scheme == "https",
		Transport:    srv.Client().Transport,
		Region:       "us-east-1",
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := mc.MakeBucket(ctx, testBucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make bucket: %v", err)
	}
	return u.Host, mc
}

func upload(t *testing.T, mc *minio.Client, files map[string][]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for key, data := range files {
		// See Provider.Put for why an empty object must not be streamed.
		opts := minio.PutObjectOptions{DisableContentSha256: len(data) == 0}
		if _, err := mc.PutObject(ctx, testBucket, key, bytes.NewReader(data), int64(len(data)), opts); err != nil {
			t.Fatalf("upload %s: %v", key, err)
		}
	}
}

func newProvider(t *testing.T, cfg Config) *Provider {
	t.Helper()
	if cfg.Bucket == "" {
		cfg.Bucket = testBucket
	}
	cfg.AccessKey, cfg.SecretKey, cfg.PathStyle = testAccess, testSecret, true
	p, err := New("s3test", cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, files map[string][]byte) backends.Provider {
		endpoint, mc := fakeS3(t)
		upload(t, mc, files)
		// No region: the first request also goes through minio-go's
		// bucket location lookup.
		return newProvider(t, Config{Endpoint: endpoint})
	})
}

// A Prefix roots the provider inside the bucket: keys outside it, and keys
// that merely share its spelling, are invisible, and writes land under it.
func TestPrefix(t *testing.T) {
	endpoint, mc := fakeS3(t)
	upload(t, mc, map[string][]byte{
		"outside.txt":   []byte("x"),
		"root/subway/y": []byte("y"),
		"root/sub":      []byte("same name as the prefix"),
		"root/sub/dir/": {}, // a directory marker inside the root: not a file
	})
	var p *Provider
	backendtest.Run(t, func(t *testing.T, files map[string][]byte) backends.Provider {
		under := make(map[string][]byte, len(files))
		for k, v := range files {
			under["root/sub/"+k] = v
		}
		upload(t, mc, under)
		p = newProvider(t, Config{Endpoint: endpoint, Prefix: "/root/sub/", Region: "us-east-1"})
		return p
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Put(ctx, "put/here.txt", strings.NewReader("hi"), 2); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.StatObject(ctx, testBucket, "root/sub/put/here.txt", minio.StatObjectOptions{}); err != nil {
		t.Fatalf("Put did not write under the prefix: %v", err)
	}
	if _, err := p.Stat(ctx, "outside.txt"); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("Stat of a key outside the prefix: %v, want ErrNotExist", err)
	}
}

func TestStatETag(t *testing.T) {
	endpoint, mc := fakeS3(t)
	upload(t, mc, map[string][]byte{"f": []byte("hello")})
	p := newProvider(t, Config{Endpoint: endpoint, Region: "us-east-1"})
	e, err := p.Stat(context.Background(), "f")
	if err != nil {
		t.Fatal(err)
	}
	// gofakes3's ETag is the quoted MD5 of the content.
	if e.ETag != "5d41402abc4b2a76b9719d911017c592" {
		t.Errorf("ETag %q, want the MD5 without quotes", e.ETag)
	}
}

// Puts of several parts, of known and unknown size. Over https, because
// gofakes3 stores the parts of a multipart upload without decoding the
// aws-chunked framing minio-go's streaming signature uses over http.
func TestPutMultipart(t *testing.T) {
	endpoint, _ := fakeS3TLS(t)
	p := newProvider(t, Config{Endpoint: endpoint, Secure: true, Region: "us-east-1", PartSize: minPartSize})
	data := make([]byte, 2*minPartSize+123)
	for i := range data {
		data[i] = byte(i % 251)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, size := range []int64{int64(len(data)), -1} {
		if err := p.Put(ctx, "multi.bin", struct{ io.Reader }{bytes.NewReader(data)}, size); err != nil {
			t.Fatalf("Put size %d: %v", size, err)
		}
		rc, err := p.Open(ctx, "multi.bin", 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back (Put size %d): %v, %d bytes, want %d", size, err, len(got), len(data))
		}
		rc, err = p.Open(ctx, "multi.bin", minPartSize-10, 20)
		if err != nil {
			t.Fatal(err)
		}
		got, err = io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data[minPartSize-10:minPartSize+10]) {
			t.Fatalf("read across a part boundary (Put size %d): %v, %d bytes", size, err, len(got))
		}
	}

	// A reader failing in the second part: the multipart upload is
	// aborted and no object appears.
	boom := errors.New("reader failed")
	for _, size := range []int64{int64(len(data)), -1} {
		r := io.MultiReader(bytes.NewReader(data[:minPartSize+100]), errReader{boom})
		if err := p.Put(ctx, "failed.bin", r, size); !errors.Is(err, boom) {
			t.Fatalf("Put size %d from a failing reader: %v", size, err)
		}
		if _, err := p.Stat(ctx, "failed.bin"); !errors.Is(err, iofs.ErrNotExist) {
			t.Fatalf("failed multipart Put (size %d) left an object: %v", size, err)
		}
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestPartSizeFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		size       int64
		configured uint64
		want       uint64
	}{
		{-1, 16 * mib, 16 * mib},
		{0, 16 * mib, 16 * mib},
		{100, 16 * mib, 16 * mib},
		{16 * mib * maxPartCount, 16 * mib, 16 * mib},
		{16*mib*maxPartCount + 1, 16 * mib, 17 * mib},
		{1 << 42, 16 * mib, 420 * mib}, // 4 TiB / 10,000 = 419.4 MiB
		{1 << 60, 16 * mib, maxPartSize},
	} {
		got := partSizeFor(tc.size, tc.configured)
		if got != tc.want {
			t.Errorf("partSizeFor(%d, %d) = %d, want %d", tc.size, tc.configured, got, tc.want)
		}
		if tc.size > 0 && got < maxPartSize && uint64(tc.size) > got*maxPartCount {
			t.Errorf("partSizeFor(%d) = %d: does not fit in %d parts", tc.size, got, maxPartCount)
		}
	}
}

// s3Error answers every request with an S3 XML error.
func s3Error(status int, code string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+
				`<Error><Code>%s</Code><Message>test says %s</Message><RequestId>1</RequestId></Error>`, code, code)
		}
	}
}

func startServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// Every error kind, through a real HTTP exchange with a server that answers
// as S3 does. This is also where credentials are tested (AccessDenied,
// InvalidAccessKeyId, SignatureDoesNotMatch), since gofakes3 accepts any
// signature.
func TestErrorCodes(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string
		want   error
		head   bool  // a bodiless HEAD reply maps to the same kind
		list   error // List's kind, when not want's
	}{
		{404, "NoSuchKey", iofs.ErrNotExist, true, nil},
		// A missing bucket is no empty listing: a crawl must fail.
		{404, "NoSuchBucket", iofs.ErrNotExist, true, iofs.ErrInvalid},
		{403, "AccessDenied", iofs.ErrPermission, true, nil},
		{403, "InvalidAccessKeyId", iofs.ErrPermission, true, nil},
		{403, "SignatureDoesNotMatch", iofs.ErrPermission, true, nil},
		{416, "InvalidRange", iofs.ErrInvalid, true, nil},
		{400, "EntityTooLarge", backends.ErrNoSpace, false, nil},
		{507, "XMinioStorageFull", backends.ErrNoSpace, true, nil},
		{403, "XMinioAdminBucketQuotaExceeded", backends.ErrNoSpace, false, nil},
		{503, "SlowDown", backends.ErrUnavailable, true, nil},
		{503, "ServiceUnavailable", backends.ErrUnavailable, true, nil},
		{500, "InternalError", backends.ErrUnavailable, true, nil},
		{502, "BadGateway", backends.ErrUnavailable, true, nil},
	} {
		t.Run(tc.code, func(t *testing.T) {
			p := newProvider(t, Config{Endpoint: startServer(t, s3Error(tc.status, tc.code)), Region: "us-east-1", Timeout: 5 * time.Second})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ops := map[string]func() error{
				"open": func() error {
					rc, err := p.Open(ctx, "a/key.bin", 10, 5)
					if err == nil {
						rc.Close()
					}
					return err
				},
				"list": func() error { return p.List(ctx, "a", func(backends.Entry) error { return nil }) },
				"put":  func() error { return p.Put(ctx, "a/key.bin", strings.NewReader("data"), 4) },
			}
			if tc.head {
				ops["stat"] = func() error { _, err := p.Stat(ctx, "a/key.bin"); return err }
			}
			for op, f := range ops {
				err := f()
				want := tc.want
				if op == "list" && tc.list != nil {
					want = tc.list
				}
				if !errors.Is(err, want) || want != tc.want && errors.Is(err, tc.want) {
					t.Errorf("%s: %v, want %v", op, err, want)
					continue
				}
				msg := err.Error()
				if !strings.Contains(msg, `"s3test"`) || !strings.Contains(msg, testBucket) || !strings.Contains(msg, "a/") {
					t.Errorf("%s: message %q does not name provider, bucket and key", op, msg)
				}
				if strings.Contains(msg, testSecret) {
					t.Errorf("%s: message %q leaks the secret", op, msg)
				}
			}
		})
	}
}

// Delete of an absent key succeeds even when the server says NoSuchKey,
// but a missing bucket is an error.
func TestDeleteAbsent(t *testing.T) {
	p := newProvider(t, Config{Endpoint: startServer(t, s3Error(404, "NoSuchKey")), Region: "us-east-1"})
	if err := p.Delete(context.Background(), "gone"); err != nil {
		t.Errorf("Delete on NoSuchKey: %v", err)
	}
	p = newProvider(t, Config{Endpoint: startServer(t, s3Error(404, "NoSuchBucket")), Region: "us-east-1"})
	if err := p.Delete(context.Background(), "gone"); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("Delete on NoSuchBucket: %v, want ErrNotExist", err)
	}
}

// stallServer answers after release is closed or the client hangs up. With
// body set, it sends headers and the first bytes of a 1000-byte object at
// once and stalls before the rest; otherwise it stalls before any header.
func stallServer(t *testing.T, body bool) string {
	release := make(chan struct{})
	endpoint := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if body && r.Method == http.MethodGet {
			w.Header().Set("Content-Length", "1000")
			w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
			w.Header().Set("ETag", `"x"`)
			w.WriteHeader(http.StatusOK)
			w.Write(make([]byte, 100))
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release) }) // runs before the server's Close
	return endpoint
}

func TestStall(t *testing.T) {
	const timeout = 300 * time.Millisecond
	within := func(t *testing.T, what string, start time.Time, err error) {
		t.Helper()
		took := time.Since(start)
		if !errors.Is(err, backends.ErrUnavailable) {
			t.Errorf("%s: %v, want ErrUnavailable", what, err)
		}
		if took > 2*timeout {
			t.Errorf("%s took %v, want at most %v", what, took, 2*timeout)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("BeforeHeaders", func(t *testing.T) {
		p := newProvider(t, Config{Endpoint: stallServer(t, false), Region: "us-east-1", Timeout: timeout})
		start := time.Now()
		rc, err := p.Open(ctx, "f", 0, -1)
		if err == nil {
			rc.Close()
		}
		within(t, "Open", start, err)
		start = time.Now()
		_, err = p.Stat(ctx, "f")
		within(t, "Stat", start, err)
		start = time.Now()
		err = p.List(ctx, "", func(backends.Entry) error { return nil })
		within(t, "List", start, err)
	})
	t.Run("MidBody", func(t *testing.T) {
		p := newProvider(t, Config{Endpoint: stallServer(t, true), Region: "us-east-1", Timeout: timeout})
		rc, err := p.Open(ctx, "f", 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		start := time.Now()
		n, err := io.Copy(io.Discard, rc)
		within(t, "Read", start, err)
		if n != 100 {
			t.Errorf("read %d bytes before the stall, want 100", n)
		}
	})
	// A consumer slower than the timeout is not a stalled server.
	t.Run("SlowConsumer", func(t *testing.T) {
		endpoint, mc := fakeS3(t)
		upload(t, mc, map[string][]byte{"f": []byte("0123456789")})
		p := newProvider(t, Config{Endpoint: endpoint, Region: "us-east-1", Timeout: timeout})
		rc, err := p.Open(ctx, "f", 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b := make([]byte, 4)
		if _, err := io.ReadFull(rc, b); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * timeout)
		rest, err := io.ReadAll(rc)
		if err != nil || string(rest) != "456789" {
			t.Fatalf("after a pause: %q, %v", rest, err)
		}
	})
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := ln.Addr().String()
	ln.Close()
	p := newProvider(t, Config{Endpoint: endpoint, Timeout: time.Second})
	if _, err := p.Stat(context.Background(), "f"); !errors.Is(err, backends.ErrUnavailable) {
		t.Fatalf("Stat on a closed port: %v, want ErrUnavailable", err)
	}
}

// A caller's cancellation is its own doing, not the provider's.
func TestCanceled(t *testing.T) {
	p := newProvider(t, Config{Endpoint: stallServer(t, false), Region: "us-east-1", Timeout: 10 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := p.Stat(ctx, "f")
	if !errors.Is(err, context.Canceled) || errors.Is(err, backends.ErrUnavailable) {
		t.Fatalf("Stat cancelled: %v, want context.Canceled and not ErrUnavailable", err)
	}
}

// A server that ignores Range must not make Open return the wrong bytes.
func TestRangeIgnored(t *testing.T) {
	content := "0123456789"
	p := newProvider(t, Config{Endpoint: startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
		w.Header().Set("Content-Length", fmt.Sprint(len(content)))
		io.WriteString(w, content)
	})), Region: "us-east-1"})
	ctx := context.Background()
	if rc, err := p.Open(ctx, "f", 3, 4); err == nil {
		rc.Close()
		t.Fatal("Open at 3 succeeded on a server that sent the whole file")
	}
	rc, err := p.Open(ctx, "f", 0, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, err := io.ReadAll(rc); err != nil || string(got) != "0123" {
		t.Fatalf("Open at 0 for 4: %q, %v", got, err)
	}
}

// Edge ranges against gofakes3: at the very end, past it, on an empty file.
func TestOpenEdges(t *testing.T) {
	endpoint, mc := fakeS3(t)
	upload(t, mc, map[string][]byte{"f": []byte("0123456789"), "empty": {}})
	p := newProvider(t, Config{Endpoint: endpoint, Region: "us-east-1"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		path        string
		off, length int64
		want        string
		openErr     error // from Open
		readErr     error // from reading
	}{
		{"f", 10, -1, "", nil, nil},
		{"f", 10, 0, "", nil, nil},
		{"f", 10, 1, "", nil, io.ErrUnexpectedEOF},
		{"f", 8, 5, "89", nil, io.ErrUnexpectedEOF},
		{"f", 11, -1, "", iofs.ErrInvalid, nil},
		{"f", 11, 0, "", iofs.ErrInvalid, nil},
		{"f", -1, 1, "", iofs.ErrInvalid, nil},
		{"f", 2, math.MaxInt64, "", iofs.ErrInvalid, nil},
		{"empty", 0, -1, "", nil, nil},
		{"empty", 0, 1, "", nil, io.ErrUnexpectedEOF},
		{"missing", 0, 0, "", iofs.ErrNotExist, nil},
		{"missing", 5, -1, "", iofs.ErrNotExist, nil},
		{"../f", 0, -1, "", iofs.ErrInvalid, nil},
		{"/f", 0, -1, "", iofs.ErrInvalid, nil},
	} {
		name := fmt.Sprintf("%s@%d+%d", tc.path, tc.off, tc.length)
		rc, err := p.Open(ctx, tc.path, tc.off, tc.length)
		if tc.openErr != nil || err != nil {
			if !errors.Is(err, tc.openErr) || tc.openErr == nil {
				t.Errorf("%s: Open: %v, want %v", name, err, tc.openErr)
			}
			if err == nil {
				rc.Close()
			}
			continue
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if string(got) != tc.want || !errors.Is(err, tc.readErr) || (tc.readErr == nil) != (err == nil) {
			t.Errorf("%s: read %q, %v; want %q, %v", name, got, err, tc.want, tc.readErr)
		}
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"ok", Config{Endpoint: "127.0.0.1:1", Bucket: "b"}, true},
		{"no endpoint", Config{Bucket: "b"}, false},
		{"no bucket", Config{Endpoint: "127.0.0.1:1"}, false},
		{"scheme", Config{Endpoint: "https://s3.example.org", Bucket: "b"}, false},
		{"small parts", Config{Endpoint: "127.0.0.1:1", Bucket: "b", PartSize: 1 << 20}, false},
		{"negative timeout", Config{Endpoint: "127.0.0.1:1", Bucket: "b", Timeout: -1}, false},
		{"bad prefix", Config{Endpoint: "127.0.0.1:1", Bucket: "b", Prefix: "a/../b"}, false},
	} {
		// 127.0.0.1:1 refuses connections: New succeeding there shows it
		// makes no network call.
		p, err := New("n", tc.cfg)
		if tc.ok != (err == nil) {
			t.Errorf("%s: New = %v", tc.name, err)
		}
		if err != nil && !errors.Is(err, iofs.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tc.name, err)
		}
		if err == nil && (p.timeout != DefaultTimeout || p.partSize != DefaultPartSize) {
			t.Errorf("%s: defaults not applied: %v %v", tc.name, p.timeout, p.partSize)
		}
	}
}

// Listing follows continuation tokens past the first 1000-key page.
func TestListMany(t *testing.T) {
	endpoint, mc := fakeS3(t)
	files := map[string][]byte{}
	for i := range 1100 { // more than one 1000-key page
		files[fmt.Sprintf("many/%04d", i)] = nil
	}
	upload(t, mc, files)
	p := newProvider(t, Config{Endpoint: endpoint, Region: "us-east-1"})
	var got []string
	if err := p.List(context.Background(), "many/", func(e backends.Entry) error {
		got = append(got, e.Path)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	if len(got) != len(files) || got[0] != "many/0000" || got[len(got)-1] != "many/1099" {
		t.Fatalf("listed %d entries, want %d", len(got), len(files))
	}
}
