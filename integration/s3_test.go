package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/datagate/datagate/views/audittest"
)

const (
	s3Alice, s3AliceSecret = "AKIAINTALICE", "alice-integration-secret"
	s3Bob, s3BobSecret     = "AKIAINTBOB", "bob-integration-secret"
)

// s3Config enables the S3 front-end on a free loopback port with two
// views of their own and one by metadata over both.
func s3Config(dataDir, addr string) string {
	return fmt.Sprintf(`data: %s
listen: {admin: '127.0.0.1:0', s3: '%s'}
s3: {region: us-east-1, upload_max_age: 1h}
views:
  inbox:  {path: "{path...}", filter: "bucket = inbox", set: {bucket: inbox}}
  bytype: {path: "{type}/{name}"}
users:
  alice:
    s3_keys: [{id: %s, secret: %s}]
    views: {inbox: rwd, bytype: rwd}
    create_views: true
  bob:
    s3_keys: [{id: %s, secret: %s}]
    views: {bytype: r}
`, dataDir, addr, s3Alice, s3AliceSecret, s3Bob, s3BobSecret)
}

type s3Server struct {
	cmd    *exec.Cmd
	addr   string // host:port
	stderr *audittest.Log
	done   chan error
}

func s3FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startS3Server runs `datagate serve` with cfg and waits for its S3
// listener.
func startS3Server(t testing.TB, cfg string) *s3Server {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s3.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(datagateBin, "--config", path, "serve")
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	s := &s3Server{cmd: cmd, stderr: &audittest.Log{}, done: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`s3 API.*addr=https?://(\S+)`)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.stderr.WriteString(sc.Text() + "\n")
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	go func() { s.done <- cmd.Wait(); pw.Close() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	select {
	case s.addr = <-addr:
	case err := <-s.done:
		t.Fatalf("serve exited: %v\n%s", err, s.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("no S3 listener\n%s", s.stderr)
	}
	return s
}

func (s *s3Server) stop(t testing.TB) {
	t.Helper()
	terminate(t, "serve", s.cmd, s.done, s.stderr)
}

func s3Client(t *testing.T, addr, id, secret string) *minio.Client {
	t.Helper()
	c, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(id, secret, ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readObject(t *testing.T, c *minio.Client, bucket, key string, opts minio.GetObjectOptions) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o, err := c.GetObject(ctx, bucket, key, opts)
	if err != nil {
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	return b
}

// minio-go against the real binary: every basic operation, pushing into
// one view and reading through another, and a bucket surviving restart.
func TestS3Minio(t *testing.T) {
	dataDir := t.TempDir()
	port := s3FreePort(t)
	srv := startS3Server(t, s3Config(dataDir, port))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	alice := s3Client(t, srv.addr, s3Alice, s3AliceSecret)
	bob := s3Client(t, srv.addr, s3Bob, s3BobSecret)

	content := []byte("observation 42\n")
	info, err := alice.PutObject(ctx, "inbox", "2026/obs-42.txt", bytes.NewReader(content), int64(len(content)), minio.PutObjectOptions{
		UserMetadata: map[string]string{"type": "obs", "station": "north"}, ContentType: "text/plain",
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum := md5.Sum(content); info.ETag != hex.EncodeToString(sum[:]) {
		t.Errorf("ETag %s", info.ETag)
	}
	// Through the other view, by bob (read-only there).
	if got := readObject(t, bob, "bytype", "obs/obs-42.txt", minio.GetObjectOptions{}); !bytes.Equal(got, content) {
		t.Errorf("bob reads through bytype: %q", got)
	}
	st, err := bob.StatObject(ctx, "bytype", "obs/obs-42.txt", minio.StatObjectOptions{})
	if err != nil || st.UserMetadata["Station"] != "north" || st.ContentType != "text/plain" {
		t.Errorf("metadata through bytype: %v %v", err, st.UserMetadata)
	}
	if _, err := bob.PutObject(ctx, "bytype", "obs/x.txt", strings.NewReader("x"), 1, minio.PutObjectOptions{}); minio.ToErrorResponse(err).Code != "AccessDenied" {
		t.Errorf("bob writes: %v", err)
	}
	if o, err := bob.GetObject(ctx, "inbox", "2026/obs-42.txt", minio.GetObjectOptions{}); err == nil {
		if b, err := io.ReadAll(o); minio.ToErrorResponse(err).Code != "NoSuchBucket" || len(b) != 0 {
			t.Errorf("bob reads alice's inbox: %q %v", b, err)
		}
	}
	var ro minio.GetObjectOptions
	ro.SetRange(0, 10)
	if got := readObject(t, alice, "inbox", "2026/obs-42.txt", ro); string(got) != "observation" {
		t.Errorf("range: %q", got)
	}

	// Multipart with 5 MiB parts.
	big := make([]byte, 12<<20)
	for i := range big {
		big[i] = byte(i ^ i>>9)
	}
	if _, err := alice.PutObject(ctx, "inbox", "big/blob.bin", bytes.NewReader(big), int64(len(big)), minio.PutObjectOptions{PartSize: 5 << 20}); err != nil {
		t.Fatal(err)
	}
	if got := readObject(t, alice, "inbox", "big/blob.bin", minio.GetObjectOptions{}); !bytes.Equal(got, big) {
		t.Error("multipart content differs")
	}
	// The object keeps its multipart ETag (md5-of-md5s-N), also when
	// read through another view.
	if st, err := alice.StatObject(ctx, "inbox", "big/blob.bin", minio.StatObjectOptions{}); err != nil || st.ETag != s3MultipartETag(big, 5<<20) {
		t.Errorf("HEAD after multipart: ETag %q, want %s (%v)", st.ETag, s3MultipartETag(big, 5<<20), err)
	}

	// Presigned GET.
	u, err := alice.PresignedGetObject(ctx, "inbox", "2026/obs-42.txt", time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(b, content) {
		t.Errorf("presigned: %d %q", resp.StatusCode, b)
	}

	// Copy, list, delete.
	if _, err := alice.CopyObject(ctx, minio.CopyDestOptions{Bucket: "inbox", Object: "copies/obs.txt"}, minio.CopySrcOptions{Bucket: "inbox", Object: "2026/obs-42.txt"}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for o := range alice.ListObjects(ctx, "inbox", minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	if strings.Join(keys, ",") != "2026/obs-42.txt,big/blob.bin,copies/obs.txt" {
		t.Errorf("keys %v", keys)
	}
	if err := alice.RemoveObject(ctx, "inbox", "copies/obs.txt", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}

	// A created bucket survives a restart.
	if err := alice.MakeBucket(ctx, "made", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.PutObject(ctx, "made", "k/v.txt", strings.NewReader("kept"), 4, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	srv.stop(t)
	srv = startS3Server(t, s3Config(dataDir, port))
	alice = s3Client(t, srv.addr, s3Alice, s3AliceSecret)
	if got := readObject(t, alice, "made", "k/v.txt", minio.GetObjectOptions{}); string(got) != "kept" {
		t.Errorf("after restart: %q", got)
	}
	srv.stop(t)
}

// The aws CLI: s3 cp/ls/sync/rm and s3api calls.
func TestS3AwsCLI(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("aws CLI not installed (Debian package awscli)")
	}
	dataDir := t.TempDir()
	srv := startS3Server(t, s3Config(dataDir, s3FreePort(t)))
	home := t.TempDir()
	endpoint := "http://" + srv.addr
	aws := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "aws", append([]string{"--endpoint-url", endpoint}, args...)...)
		cmd.Env = append(envWithout("AWS_"), "HOME="+home, "AWS_ACCESS_KEY_ID="+s3Alice, "AWS_SECRET_ACCESS_KEY="+s3AliceSecret,
			"AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE="+filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "none"), "AWS_EC2_METADATA_DISABLED=true")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %s: %v\n%s\nserver log:\n%s", strings.Join(args, " "), err, out, srv.stderr)
		}
		return string(out)
	}
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "sub", "deep"), 0o755)
	files := map[string][]byte{"a.txt": []byte("alpha\n"), "sub/b.txt": []byte("bravo\n"), "sub/deep/c.bin": bytes.Repeat([]byte{7}, 9<<20)}
	for p, b := range files {
		os.WriteFile(filepath.Join(src, p), b, 0o644)
	}
	aws("s3", "cp", filepath.Join(src, "a.txt"), "s3://inbox/single/a.txt")
	aws("s3", "sync", src, "s3://inbox/synced")
	out := aws("s3", "ls", "--recursive", "s3://inbox/")
	for _, k := range []string{"single/a.txt", "synced/a.txt", "synced/sub/b.txt", "synced/sub/deep/c.bin"} {
		if !strings.Contains(out, k) {
			t.Errorf("aws s3 ls lacks %s:\n%s", k, out)
		}
	}
	if out := aws("s3", "ls", "s3://inbox/synced/"); !strings.Contains(out, "PRE sub/") || !strings.Contains(out, "a.txt") {
		t.Errorf("aws s3 ls with delimiter:\n%s", out)
	}
	// A second sync has nothing to do.
	if out := aws("s3", "sync", src, "s3://inbox/synced"); strings.Contains(out, "upload:") {
		t.Errorf("second sync uploaded again:\n%s", out)
	}
	dst := t.TempDir()
	aws("s3", "sync", "s3://inbox/synced", dst)
	for p, want := range files {
		if got, err := os.ReadFile(filepath.Join(dst, p)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("synced back %s: %v (%d bytes, want %d)", p, err, len(got), len(want))
		}
	}
	// c.bin (9 MiB) went up in 8 MiB parts: HEAD gives md5-of-md5s-2.
	out = aws("s3api", "head-object", "--bucket", "inbox", "--key", "synced/sub/deep/c.bin")
	if want := s3MultipartETag(files["sub/deep/c.bin"], 8<<20); !strings.Contains(out, want) {
		t.Errorf("head-object after a multipart upload, want ETag %s:\n%s", want, out)
	}
	out = aws("s3api", "head-object", "--bucket", "inbox", "--key", "single/a.txt")
	if sum := md5.Sum(files["a.txt"]); !strings.Contains(out, hex.EncodeToString(sum[:])) {
		t.Errorf("head-object:\n%s", out)
	}
	aws("s3api", "put-object", "--bucket", "inbox", "--key", "meta.txt", "--body", filepath.Join(src, "a.txt"), "--metadata", "type=note,color=green")
	if out := aws("s3api", "head-object", "--bucket", "inbox", "--key", "meta.txt"); !strings.Contains(out, "green") {
		t.Errorf("metadata:\n%s", out)
	}
	if out := aws("s3", "ls", "s3://bytype/note/"); !strings.Contains(out, "meta.txt") {
		t.Errorf("pushed through inbox, listed through bytype:\n%s", out)
	}
	if out := aws("s3api", "list-objects-v2", "--bucket", "inbox", "--prefix", "synced/", "--max-items", "2"); !strings.Contains(out, "NextToken") {
		t.Errorf("list-objects-v2 paging:\n%s", out)
	}
	aws("s3", "rm", "--recursive", "s3://inbox/synced")
	if out := aws("s3", "ls", "--recursive", "s3://inbox/"); strings.Contains(out, "synced/") {
		t.Errorf("after rm:\n%s", out)
	}
	aws("s3", "mb", "s3://made-by-cli")
	aws("s3", "rb", "s3://made-by-cli")
	srv.stop(t)
}

// rclone's s3 backend: copy a tree in, then check it byte for byte.
func TestS3Rclone(t *testing.T) {
	if _, err := exec.LookPath("rclone"); err != nil {
		t.Skip("rclone not installed")
	}
	srv := startS3Server(t, s3Config(t.TempDir(), s3FreePort(t)))
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "d", "e"), 0o755)
	for p, n := range map[string]int{"one.txt": 10, "d/two.bin": 3 << 20, "d/e/three.txt": 0} {
		os.WriteFile(filepath.Join(src, p), bytes.Repeat([]byte("r"), n), 0o644)
	}
	rclone := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "rclone", args...)
		cmd.Env = append(envWithout("AWS_"), "RCLONE_CONFIG="+filepath.Join(t.TempDir(), "none.conf"),
			"RCLONE_CONFIG_DG_TYPE=s3", "RCLONE_CONFIG_DG_PROVIDER=Other", "RCLONE_CONFIG_DG_ENV_AUTH=false",
			"RCLONE_CONFIG_DG_ACCESS_KEY_ID="+s3Alice, "RCLONE_CONFIG_DG_SECRET_ACCESS_KEY="+s3AliceSecret,
			"RCLONE_CONFIG_DG_ENDPOINT=http://"+srv.addr, "RCLONE_CONFIG_DG_REGION=us-east-1", "RCLONE_CONFIG_DG_FORCE_PATH_STYLE=true")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("rclone %s: %v\n%s\nserver log:\n%s", strings.Join(args, " "), err, out, srv.stderr)
		}
		return string(out)
	}
	rclone("copy", src, "dg:inbox/rc")
	rclone("check", src, "dg:inbox/rc")
	if out := rclone("lsf", "-R", "dg:inbox/rc"); !strings.Contains(out, "d/e/three.txt") {
		t.Errorf("rclone lsf:\n%s", out)
	}
	srv.stop(t)
}

// s3cmd: put (multipart too), ls, get, sync, del.
func TestS3s3cmd(t *testing.T) {
	if _, err := exec.LookPath("s3cmd"); err != nil {
		t.Skip("s3cmd not installed")
	}
	srv := startS3Server(t, s3Config(t.TempDir(), s3FreePort(t)))
	cfg := filepath.Join(t.TempDir(), "s3cfg")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\nuse_https = False\nsignature_v2 = False\nbucket_location = us-east-1\n",
		s3Alice, s3AliceSecret, srv.addr, srv.addr)), 0o600)
	s3cmd := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "s3cmd", append([]string{"-c", cfg}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("s3cmd %s: %v\n%s\nserver log:\n%s", strings.Join(args, " "), err, out, srv.stderr)
		}
		return string(out)
	}
	src := t.TempDir()
	big := bytes.Repeat([]byte("0123456789"), 2<<20) // 20 MiB: multipart at s3cmd's 15 MiB chunks
	os.WriteFile(filepath.Join(src, "big.bin"), big, 0o644)
	os.WriteFile(filepath.Join(src, "small.txt"), []byte("small\n"), 0o644)
	s3cmd("put", filepath.Join(src, "big.bin"), "s3://inbox/cmd/big.bin")
	s3cmd("sync", src+"/", "s3://inbox/synced/")
	if out := s3cmd("ls", "-r", "s3://inbox/"); !strings.Contains(out, "cmd/big.bin") || !strings.Contains(out, "synced/small.txt") {
		t.Errorf("s3cmd ls:\n%s", out)
	}
	dst := filepath.Join(t.TempDir(), "big.bin")
	s3cmd("get", "s3://inbox/cmd/big.bin", dst)
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, big) {
		t.Errorf("s3cmd get: %d bytes, want %d", len(got), len(big))
	}
	s3cmd("del", "s3://inbox/cmd/big.bin")
	if out := s3cmd("ls", "-r", "s3://inbox/"); strings.Contains(out, "cmd/big.bin") {
		t.Errorf("after del:\n%s", out)
	}
	srv.stop(t)
}

// envWithout is the environment minus variables with prefix (an
// AWS_CA_BUNDLE meant for other tools trips rclone's AWS SDK).
// s3MultipartETag is S3's ETag of data uploaded in parts of partSize:
// the MD5 of the parts' MD5s, '-', the number of parts.
func s3MultipartETag(data []byte, partSize int) string {
	var sums []byte
	n := 0
	for off := 0; off < len(data); off += partSize {
		s := md5.Sum(data[off:min(off+partSize, len(data))])
		sums = append(sums, s[:]...)
		n++
	}
	return fmt.Sprintf("%x-%d", md5.Sum(sums), n)
}

func envWithout(prefix string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, prefix) {
			out = append(out, kv)
		}
	}
	return out
}
