package s3

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/datagate/datagate/views"
)

// sha256Hasher adapts crypto/sha256 to what minio-go's streaming signer
// takes.
type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}

// do sends a request signed by alice (payload hash as given, or the
// SHA-256 of body) and returns the status, S3 error code and body.
func (e *testEnv) do(t *testing.T, method, path string, body []byte, hdr map[string]string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if req.Header.Get("X-Amz-Content-Sha256") == "" {
		s := sha256.Sum256(body)
		req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(s[:]))
	}
	if hdr["Authorization"] == "" && hdr["unsigned"] == "" {
		req = signer.SignV4(*req, aliceKey, aliceSecret, "", DefaultRegion)
	}
	req.Header.Del("unsigned")
	return send(t, req)
}

func send(t *testing.T, req *http.Request) (int, string, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	code := ""
	if i := bytes.Index(b, []byte("<Code>")); i >= 0 {
		rest := b[i+6:]
		code = string(rest[:bytes.IndexByte(rest, '<')])
	}
	return resp.StatusCode, code, string(b)
}

func (e *testEnv) mustNotExist(t *testing.T, bucket, key string) {
	t.Helper()
	if _, err := e.alice.StatObject(ctxT(t), bucket, key, minio.StatObjectOptions{}); s3Code(err) != "NoSuchKey" {
		t.Errorf("%s/%s was stored by a refused request (%v)", bucket, key, err)
	}
}

func TestBadAuth(t *testing.T) {
	e := newTestEnv(t)
	put(t, e.alice, "data", "k", []byte("content"), minio.PutObjectOptions{})
	cases := []struct {
		name   string
		hdr    map[string]string
		status int
		code   string
	}{
		{"missing", map[string]string{"unsigned": "1"}, 403, "AccessDenied"},
		{"malformed", map[string]string{"Authorization": "AWS4-HMAC-SHA256 garbage"}, 400, "AuthorizationHeaderMalformed"},
		{"v2", map[string]string{"Authorization": "AWS AKIAALICE:c2lnbmF0dXJl"}, 400, "InvalidRequest"},
		{"bad signature", map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=AKIAALICE/" + time.Now().UTC().Format("20060102") + "/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=" + strings.Repeat("0", 64), "X-Amz-Date": time.Now().UTC().Format("20060102T150405Z")}, 403, "SignatureDoesNotMatch"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, code, body := e.do(t, http.MethodGet, "/data/k", nil, c.hdr)
			if st != c.status || (c.code != "" && code != c.code) || strings.Contains(body, "content") && !strings.Contains(body, "<Error>") {
				t.Errorf("%d %s: %s", st, code, body)
			}
		})
	}
	// Clock skew over 15 minutes.
	skewed := newTestEnv(t, func(o *Options) { o.Now = func() time.Time { return time.Now().Add(20 * time.Minute) } })
	if _, err := skewed.alice.ListBuckets(ctxT(t)); s3Code(err) != "RequestTimeTooSkewed" {
		t.Errorf("skewed clock: %v", err)
	}
	// Presigned: expired, tampered, expiry over 7 days.
	req, _ := http.NewRequest(http.MethodGet, e.url+"/data/k", nil)
	pre := signer.PreSignV4(*req, aliceKey, aliceSecret, "", DefaultRegion, 1)
	time.Sleep(2100 * time.Millisecond)
	if st, code, _ := send(t, pre); st != 403 || code != "AccessDenied" {
		t.Errorf("expired presigned URL: %d %s", st, code)
	}
	req, _ = http.NewRequest(http.MethodGet, e.url+"/data/k", nil)
	pre = signer.PreSignV4(*req, aliceKey, aliceSecret, "", DefaultRegion, 60)
	pre.URL.Path = "/data/other-key"
	if st, code, _ := send(t, pre); st != 403 || code != "SignatureDoesNotMatch" {
		t.Errorf("tampered presigned URL: %d %s", st, code)
	}
	req, _ = http.NewRequest(http.MethodGet, e.url+"/data/k", nil)
	pre = signer.PreSignV4(*req, aliceKey, aliceSecret, "", DefaultRegion, 8*24*3600)
	if st, code, _ := send(t, pre); st != 400 || code != "AuthorizationQueryParametersError" {
		t.Errorf("presigned for 8 days: %d %s", st, code)
	}
}

func TestBadBodies(t *testing.T) {
	e := newTestEnv(t)
	body := []byte("the real body")
	// A body that does not match x-amz-content-sha256.
	other := sha256.Sum256([]byte("another body"))
	st, code, _ := e.do(t, http.MethodPut, "/data/sha.txt", body, map[string]string{"X-Amz-Content-Sha256": hex.EncodeToString(other[:])})
	if st != 400 || code != "XAmzContentSHA256Mismatch" {
		t.Errorf("sha256 mismatch: %d %s", st, code)
	}
	e.mustNotExist(t, "data", "sha.txt")
	// A body that does not match Content-MD5.
	wrong := md5.Sum([]byte("another body"))
	st, code, _ = e.do(t, http.MethodPut, "/data/md5.txt", body, map[string]string{"Content-MD5": base64.StdEncoding.EncodeToString(wrong[:])})
	if st != 400 || code != "BadDigest" {
		t.Errorf("Content-MD5 mismatch: %d %s", st, code)
	}
	e.mustNotExist(t, "data", "md5.txt")
	st, code, _ = e.do(t, http.MethodPut, "/data/md5.txt", body, map[string]string{"Content-MD5": "not base64!"})
	if st != 400 || code != "InvalidDigest" {
		t.Errorf("malformed Content-MD5: %d %s", st, code)
	}
	right := md5.Sum(body)
	if st, _, b := e.do(t, http.MethodPut, "/data/md5.txt", body, map[string]string{"Content-MD5": base64.StdEncoding.EncodeToString(right[:])}); st != 200 {
		t.Errorf("right Content-MD5: %d %s", st, b)
	}

	// A streaming upload with one bad chunk signature.
	data := bytes.Repeat([]byte("0123456789abcdef"), 12<<10) // 3 chunks of 64 KiB
	for _, corrupt := range []bool{false, true} {
		key := fmt.Sprintf("/data/stream-%v.bin", corrupt)
		req, _ := http.NewRequest(http.MethodPut, e.url+key, bytes.NewReader(data))
		req = signer.StreamingSignV4(req, aliceKey, aliceSecret, "", DefaultRegion, int64(len(data)), time.Now().UTC(), sha256Hasher{sha256.New()})
		wire, err := io.ReadAll(req.Body)
		if err != nil {
			t.Fatal(err)
		}
		if corrupt {
			const tag = "chunk-signature="
			first := bytes.Index(wire, []byte(tag))
			second := first + len(tag) + bytes.Index(wire[first+len(tag):], []byte(tag))
			i := second + len(tag)
			if wire[i] == '0' {
				wire[i] = '1'
			} else {
				wire[i] = '0'
			}
		}
		req.Body = io.NopCloser(bytes.NewReader(wire))
		req.ContentLength = int64(len(wire))
		st, code, b := send(t, req)
		switch {
		case !corrupt && st != 200:
			t.Errorf("streaming upload: %d %s", st, b)
		case corrupt && (st != 403 || code != "SignatureDoesNotMatch"):
			t.Errorf("streaming upload with a bad chunk signature: %d %s", st, code)
		}
	}
	if got := get(t, e.alice, "data", "stream-false.bin", minio.GetObjectOptions{}); !bytes.Equal(got, data) {
		t.Errorf("streamed content differs")
	}
	e.mustNotExist(t, "data", "stream-true.bin")
}

func TestBadKeys(t *testing.T) {
	e := newTestEnv(t)
	for _, c := range []struct {
		name, path, code string
	}{
		{"dotdot", "/data/a/../b", "InvalidArgument"},
		{"dot", "/data/a/./b", "InvalidArgument"},
		{"double slash", "/data/a//b", "InvalidArgument"},
		{"NUL", "/data/a%00b", "InvalidArgument"},
		{"too long", "/data/" + strings.Repeat("k", 1025), "KeyTooLongError"},
		{"no template", "/bytype/only-one-segment", "InvalidArgument"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, code, b := e.do(t, http.MethodPut, c.path, []byte("x"), nil)
			if st != 400 || code != c.code {
				t.Errorf("PUT %s: %d %s", c.path, st, b)
			}
			if c.name == "no template" && !strings.Contains(b, "only-one-segment") {
				t.Errorf("the error should name the key: %s", b)
			}
		})
	}
}

func TestBadXMLBodies(t *testing.T) {
	e := newTestEnv(t)
	put(t, e.alice, "data", "keep", []byte("x"), minio.PutObjectOptions{})
	huge := []byte("<Delete>" + strings.Repeat("<Object><Key>k</Key></Object>", 100000) + "</Delete>")
	for _, b := range [][]byte{[]byte("<Delete><Object><Key>keep"), huge, []byte("not xml at all"), []byte("<Delete></Delete>")} {
		st, code, _ := e.do(t, http.MethodPost, "/data?delete", b, nil)
		if st != 400 || code != "MalformedXML" {
			t.Errorf("DeleteObjects with %.30q (%d bytes): %d %s", b, len(b), st, code)
		}
	}
	if got := get(t, e.alice, "data", "keep", minio.GetObjectOptions{}); string(got) != "x" {
		t.Error("a refused DeleteObjects deleted")
	}
	// Quiet mode lists errors only.
	st, _, b := e.do(t, http.MethodPost, "/data?delete", []byte("<Delete><Quiet>true</Quiet><Object><Key>keep</Key></Object></Delete>"), nil)
	if st != 200 || strings.Contains(b, "<Deleted>") {
		t.Errorf("quiet delete: %d %s", st, b)
	}

	core := minio.Core{Client: e.alice}
	id, err := core.NewMultipartUpload(ctxT(t), "data", "mp", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hugeC := []byte("<CompleteMultipartUpload>" + strings.Repeat("<Part><PartNumber>1</PartNumber><ETag>x</ETag></Part>", 60000) + "</CompleteMultipartUpload>")
	for _, b := range [][]byte{[]byte("<CompleteMultipartUpload><Part>"), hugeC} {
		st, code, _ := e.do(t, http.MethodPost, "/data/mp?uploadId="+id, b, nil)
		if st != 400 || code != "MalformedXML" {
			t.Errorf("Complete with %.30q (%d bytes): %d %s", b, len(b), st, code)
		}
	}
	var many strings.Builder
	many.WriteString("<CompleteMultipartUpload>")
	for i := 1; i <= MaxParts+1; i++ {
		fmt.Fprintf(&many, "<Part><PartNumber>%d</PartNumber><ETag>e</ETag></Part>", i)
	}
	many.WriteString("</CompleteMultipartUpload>")
	if st, code, _ := e.do(t, http.MethodPost, "/data/mp?uploadId="+id, []byte(many.String()), nil); st != 400 || code != "InvalidArgument" {
		t.Errorf("Complete with 10,001 parts: %d %s", st, code)
	}
	if st, code, _ := e.do(t, http.MethodPut, fmt.Sprintf("/data/mp?partNumber=%d&uploadId=%s", MaxParts+1, id), []byte("x"), nil); st != 400 || code != "InvalidArgument" {
		t.Errorf("part 10,001: %d %s", st, code)
	}
	if st, code, _ := e.do(t, http.MethodPut, "/data/mp?partNumber=1&uploadId=00000000000000000000000000000000", []byte("x"), nil); st != 404 || code != "NoSuchUpload" {
		t.Errorf("unknown upload: %d %s", st, code)
	}
	// Continuation tokens: garbage, and one of another bucket.
	for _, tok := range []string{"garbage!", encodeToken("other", "a")} {
		if st, code, _ := e.do(t, http.MethodGet, "/data?list-type=2&continuation-token="+tok, nil, nil); st != 400 || code != "InvalidArgument" {
			t.Errorf("token %q: %d %s", tok, st, code)
		}
	}
	if st, code, _ := e.do(t, http.MethodGet, "/data?list-type=2&max-keys=-1", nil, nil); st != 400 || code != "InvalidArgument" {
		t.Errorf("max-keys=-1: %d %s", st, code)
	}
}

// Virtual-hosted-style addressing with a configured domain.
func TestVirtualHosted(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.Domain = "s3.test" })
	put(t, e.alice, "data", "vh.txt", []byte("virtual"), minio.PutObjectOptions{})
	req, _ := http.NewRequest(http.MethodGet, e.url+"/vh.txt", nil)
	req.Host = "data.s3.test"
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	req = signer.SignV4(*req, aliceKey, aliceSecret, "", DefaultRegion)
	if st, _, b := send(t, req); st != 200 || b != "virtual" {
		t.Errorf("virtual-hosted GET: %d %q", st, b)
	}
}

// Conditional and range requests answer S3's statuses and codes.
func TestConditionsAndRanges(t *testing.T) {
	e := newTestEnv(t)
	info := put(t, e.alice, "data", "c.txt", []byte("0123456789"), minio.PutObjectOptions{})
	etag := `"` + info.ETag + `"`
	past := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	future := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	for _, c := range []struct {
		method string
		hdr    map[string]string
		status int
		code   string
		body   string
	}{
		{"GET", map[string]string{"If-None-Match": etag}, 304, "", ""},
		{"GET", map[string]string{"If-None-Match": `"other"`}, 200, "", "0123456789"},
		{"GET", map[string]string{"If-Match": `"other"`}, 412, "PreconditionFailed", ""},
		{"HEAD", map[string]string{"If-Match": `"other"`}, 412, "", ""},
		{"GET", map[string]string{"If-Modified-Since": future}, 304, "", ""},
		{"GET", map[string]string{"If-Modified-Since": past}, 200, "", "0123456789"},
		{"GET", map[string]string{"If-Unmodified-Since": past}, 412, "PreconditionFailed", ""},
		{"GET", map[string]string{"If-Match": etag, "If-Unmodified-Since": past}, 200, "", "0123456789"},
		{"GET", map[string]string{"If-None-Match": `"other"`, "If-Modified-Since": future}, 200, "", "0123456789"},
		{"GET", map[string]string{"Range": "bytes=2-4"}, 206, "", "234"},
		{"GET", map[string]string{"Range": "bytes=8-"}, 206, "", "89"},
		{"GET", map[string]string{"Range": "bytes=-3"}, 206, "", "789"},
		{"GET", map[string]string{"Range": "bytes=5-100"}, 206, "", "56789"},
		{"GET", map[string]string{"Range": "bytes=10-"}, 416, "InvalidRange", ""},
		{"GET", map[string]string{"Range": "bytes=0-1,3-4"}, 200, "", "0123456789"},
		{"GET", map[string]string{"Range": "items=1-2"}, 200, "", "0123456789"},
	} {
		st, code, b := e.do(t, c.method, "/data/c.txt", nil, c.hdr)
		if st != c.status || code != c.code || (c.body != "" && b != c.body) {
			t.Errorf("%s %v: %d %s %q, want %d %s %q", c.method, c.hdr, st, code, b, c.status, c.code, c.body)
		}
	}
}

// A panic in a handler becomes an InternalError answer, not a dead
// connection or a crashed server.
func TestPanicRecovered(t *testing.T) {
	e := newTestEnv(t)
	e.srv.trees["alice"] = views.NewTree(views.TreeOptions{}) // no view set: any use panics
	st, code, _ := e.do(t, http.MethodGet, "/", nil, nil)
	if st != 500 || code != "InternalError" {
		t.Errorf("after a panic: %d %s", st, code)
	}
	if _, err := e.bob.ListBuckets(ctxT(t)); err != nil {
		t.Errorf("the server did not survive: %v", err)
	}
}
