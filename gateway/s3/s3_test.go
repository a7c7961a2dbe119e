package s3

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

func put(t *testing.T, c *minio.Client, bucket, key string, data []byte, opts minio.PutObjectOptions) minio.UploadInfo {
	t.Helper()
	info, err := c.PutObject(ctxT(t), bucket, key, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
	return info
}

func get(t *testing.T, c *minio.Client, bucket, key string, opts minio.GetObjectOptions) []byte {
	t.Helper()
	o, err := c.GetObject(ctxT(t), bucket, key, opts)
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

// multipartETag is S3's ETag of data uploaded in parts of partSize:
// the MD5 of the parts' MD5s, '-', the number of parts.
func multipartETag(data []byte, partSize int) string {
	var sums []byte
	n := 0
	for off := 0; off < len(data); off += partSize {
		s := md5.Sum(data[off:min(off+partSize, len(data))])
		sums = append(sums, s[:]...)
		n++
	}
	all := md5.Sum(sums)
	return fmt.Sprintf("%x-%d", all, n)
}

func s3Code(err error) string {
	return minio.ToErrorResponse(err).Code
}

func TestMinioBasics(t *testing.T) {
	e := newTestEnv(t)
	ctx := ctxT(t)

	bs, err := e.alice.ListBuckets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range bs {
		names = append(names, b.Name)
	}
	if strings.Join(names, ",") != "bytype,data,other" {
		t.Fatalf("alice's buckets: %v", names)
	}
	if ok, err := e.alice.BucketExists(ctx, "data"); !ok || err != nil {
		t.Fatalf("BucketExists(data) = %v, %v", ok, err)
	}
	if ok, err := e.alice.BucketExists(ctx, "secret"); ok || err != nil {
		t.Fatalf("BucketExists(secret) for alice = %v, %v (bob's bucket must not be revealed)", ok, err)
	}
	if loc, err := e.alice.GetBucketLocation(ctx, "data"); err != nil || loc != DefaultRegion {
		t.Fatalf("location = %q, %v", loc, err)
	}

	content := []byte("hello, s3 world\n")
	sum := md5.Sum(content)
	info := put(t, e.alice, "data", "dir/hello.txt", content, minio.PutObjectOptions{
		ContentType: "text/plain", UserMetadata: map[string]string{"Color": "blue", "type": "greeting"}, SendContentMd5: true,
	})
	if info.ETag != hex.EncodeToString(sum[:]) {
		t.Errorf("ETag %q, want the MD5 %x", info.ETag, sum)
	}
	if got := get(t, e.alice, "data", "dir/hello.txt", minio.GetObjectOptions{}); !bytes.Equal(got, content) {
		t.Fatalf("got %q", got)
	}
	st, err := e.alice.StatObject(ctx, "data", "dir/hello.txt", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != int64(len(content)) || st.ContentType != "text/plain" || st.ETag != hex.EncodeToString(sum[:]) {
		t.Errorf("stat: size %d type %q etag %q", st.Size, st.ContentType, st.ETag)
	}
	if st.UserMetadata["Color"] != "blue" || st.UserMetadata["Type"] != "greeting" {
		t.Errorf("user metadata: %v", st.UserMetadata)
	}

	// The same object through another view (bucket): by type, then name.
	if got := get(t, e.alice, "bytype", "greeting/hello.txt", minio.GetObjectOptions{}); !bytes.Equal(got, content) {
		t.Errorf("through bytype: %q", got)
	}

	// Range.
	var ro minio.GetObjectOptions
	ro.SetRange(7, 8)
	if got := get(t, e.alice, "data", "dir/hello.txt", ro); string(got) != "s3" {
		t.Errorf("range 7-8: %q", got)
	}
	ro = minio.GetObjectOptions{}
	ro.SetRange(0, -6) // last 6 bytes
	if got := get(t, e.alice, "data", "dir/hello.txt", ro); string(got) != "world\n" {
		t.Errorf("suffix range: %q", got)
	}

	// Conditionals.
	co := minio.GetObjectOptions{}
	co.SetMatchETag("nope")
	if _, err := e.alice.StatObject(ctx, "data", "dir/hello.txt", minio.StatObjectOptions(co)); err == nil {
		t.Error("If-Match with a wrong ETag succeeded")
	}
	co = minio.GetObjectOptions{}
	co.SetMatchETag(info.ETag)
	if got := get(t, e.alice, "data", "dir/hello.txt", co); !bytes.Equal(got, content) {
		t.Error("If-Match with the right ETag failed")
	}

	// Presigned GET, with a response override.
	u, err := e.alice.PresignedGetObject(ctx, "data", "dir/hello.txt", time.Minute, url.Values{"response-content-type": {"application/x-test"}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(b, content) || resp.Header.Get("Content-Type") != "application/x-test" {
		t.Errorf("presigned GET: %d %q type %q", resp.StatusCode, b, resp.Header.Get("Content-Type"))
	}
	// Presigned PUT.
	pu, err := e.alice.PresignedPutObject(ctx, "data", "presigned.bin", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, pu.String(), strings.NewReader("via presign"))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("presigned PUT: %d", resp.StatusCode)
	}
	if got := get(t, e.alice, "data", "presigned.bin", minio.GetObjectOptions{}); string(got) != "via presign" {
		t.Errorf("presigned PUT stored %q", got)
	}

	// Copy within a bucket (metadata kept), across buckets with REPLACE.
	if _, err := e.alice.CopyObject(ctx, minio.CopyDestOptions{Bucket: "data", Object: "copy.txt"}, minio.CopySrcOptions{Bucket: "data", Object: "dir/hello.txt"}); err != nil {
		t.Fatal(err)
	}
	st, err = e.alice.StatObject(ctx, "data", "copy.txt", minio.StatObjectOptions{})
	if err != nil || st.UserMetadata["Color"] != "blue" || st.ContentType != "text/plain" || st.ETag != info.ETag {
		t.Errorf("copy: %v %+v", err, st)
	}
	if _, err := e.alice.CopyObject(ctx, minio.CopyDestOptions{Bucket: "other", Object: "x/copied.txt", ReplaceMetadata: true, UserMetadata: map[string]string{"shape": "round"}},
		minio.CopySrcOptions{Bucket: "data", Object: "dir/hello.txt"}); err != nil {
		t.Fatal(err)
	}
	st, err = e.alice.StatObject(ctx, "other", "x/copied.txt", minio.StatObjectOptions{})
	if err != nil || st.UserMetadata["Shape"] != "round" || st.UserMetadata["Color"] != "" {
		t.Errorf("copy with REPLACE: %v %v", err, st.UserMetadata)
	}
	if got := get(t, e.alice, "other", "x/copied.txt", minio.GetObjectOptions{}); !bytes.Equal(got, content) {
		t.Errorf("cross-bucket copy: %q", got)
	}

	// Listing.
	var keys []string
	for o := range e.alice.ListObjects(ctx, "data", minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
		if o.Key == "dir/hello.txt" && (o.ETag != info.ETag || o.Size != int64(len(content))) {
			t.Errorf("listed %+v", o)
		}
	}
	if strings.Join(keys, ",") != "copy.txt,dir/hello.txt,presigned.bin" {
		t.Errorf("keys: %v", keys)
	}

	// Delete; deleting a missing key succeeds.
	if err := e.alice.RemoveObject(ctx, "data", "copy.txt", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.alice.RemoveObject(ctx, "data", "copy.txt", minio.RemoveObjectOptions{}); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
	if _, err := e.alice.StatObject(ctx, "data", "copy.txt", minio.StatObjectOptions{}); s3Code(err) != "NoSuchKey" {
		t.Errorf("stat after delete: %v", err)
	}
	if _, err := e.alice.GetObject(ctx, "data", "nope", minio.GetObjectOptions{}); err != nil {
		t.Fatal(err) // minio-go reports at first read
	}
	o, _ := e.alice.GetObject(ctx, "data", "nope", minio.GetObjectOptions{})
	if _, err := io.ReadAll(o); s3Code(err) != "NoSuchKey" {
		t.Errorf("get missing: %v", err)
	}

	// Multi-object delete.
	for i := range 5 {
		put(t, e.alice, "data", fmt.Sprintf("many/%d", i), []byte{byte(i)}, minio.PutObjectOptions{})
	}
	ch := make(chan minio.ObjectInfo, 6)
	for i := range 5 {
		ch <- minio.ObjectInfo{Key: fmt.Sprintf("many/%d", i)}
	}
	ch <- minio.ObjectInfo{Key: "many/missing"}
	close(ch)
	for re := range e.alice.RemoveObjects(ctx, "data", ch, minio.RemoveObjectsOptions{}) {
		t.Errorf("RemoveObjects: %v %v", re.ObjectName, re.Err)
	}
	for o := range e.alice.ListObjects(ctx, "data", minio.ListObjectsOptions{Prefix: "many/", Recursive: true}) {
		t.Errorf("left after RemoveObjects: %v %v", o.Key, o.Err)
	}
}

func TestMinioUsersAndRights(t *testing.T) {
	e := newTestEnv(t)
	ctx := ctxT(t)
	put(t, e.alice, "data", "shared.txt", []byte("shared"), minio.PutObjectOptions{})
	put(t, e.bob, "secret", "mine.txt", []byte("bob's"), minio.PutObjectOptions{})
	if got := get(t, e.bob, "data", "shared.txt", minio.GetObjectOptions{}); string(got) != "shared" {
		t.Errorf("bob reads data: %q", got)
	}
	_, err := e.bob.PutObject(ctx, "data", "bob.txt", strings.NewReader("x"), 1, minio.PutObjectOptions{})
	if s3Code(err) != "AccessDenied" {
		t.Errorf("bob writes a read-only bucket: %v", err)
	}
	if err := e.bob.RemoveObject(ctx, "data", "shared.txt", minio.RemoveObjectOptions{}); s3Code(err) != "AccessDenied" {
		t.Errorf("bob deletes in a read-only bucket: %v", err)
	}
	// Alice cannot see bob's bucket, nor its content.
	for o := range e.alice.ListObjects(ctx, "secret", minio.ListObjectsOptions{Recursive: true}) {
		if s3Code(o.Err) != "NoSuchBucket" {
			t.Errorf("alice lists secret: %v %v", o.Key, o.Err)
		}
	}
	o, _ := e.alice.GetObject(ctx, "secret", "mine.txt", minio.GetObjectOptions{})
	if b, err := io.ReadAll(o); s3Code(err) != "NoSuchBucket" || len(b) != 0 {
		t.Errorf("alice gets bob's object: %q %v", b, err)
	}
	// A wrong secret and an unknown key.
	bad := e.client(t, aliceKey, "wrong-secret-key")
	if _, err := bad.ListBuckets(ctx); s3Code(err) != "SignatureDoesNotMatch" {
		t.Errorf("wrong secret: %v", err)
	}
	unknown := e.client(t, "AKIANOBODY", "whatever-secret")
	if _, err := unknown.ListBuckets(ctx); s3Code(err) != "InvalidAccessKeyId" {
		t.Errorf("unknown key: %v", err)
	}
}

func TestMinioMultipart(t *testing.T) {
	e := newTestEnv(t)
	ctx := ctxT(t)
	data := make([]byte, 11<<20+123)
	for i := range data {
		data[i] = byte(i * 31 >> 7)
	}
	info, err := e.alice.PutObject(ctx, "data", "big/multi.bin", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
		PartSize: 5 << 20, UserMetadata: map[string]string{"kind": "multi"}, ContentType: "application/x-big",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := multipartETag(data, 5<<20)
	if info.ETag != want {
		t.Errorf("multipart ETag %q, want md5-of-md5s-3 %q", info.ETag, want)
	}
	got := get(t, e.alice, "data", "big/multi.bin", minio.GetObjectOptions{})
	if !bytes.Equal(got, data) {
		t.Fatalf("multipart content differs (%d bytes, want %d)", len(got), len(data))
	}
	// The object keeps the multipart ETag: HEAD, GET, conditions and
	// listings give it, not the MD5 of the whole.
	st, err := e.alice.StatObject(ctx, "data", "big/multi.bin", minio.StatObjectOptions{})
	if err != nil || st.UserMetadata["Kind"] != "multi" || st.ContentType != "application/x-big" || st.ETag != want {
		t.Errorf("stat: %v %+v, want ETag %s", err, st, want)
	}
	var gm minio.GetObjectOptions
	gm.SetMatchETag(want)
	if got := get(t, e.alice, "data", "big/multi.bin", gm); len(got) != len(data) {
		t.Errorf("GET If-Match the multipart ETag: %d bytes", len(got))
	}
	for o := range e.alice.ListObjects(ctx, "data", minio.ListObjectsOptions{Prefix: "big/", Recursive: true}) {
		if o.Err != nil || (o.Key == "big/multi.bin" && o.ETag != want) {
			t.Errorf("listed %s: ETag %q, want %q (%v)", o.Key, o.ETag, want, o.Err)
		}
	}
	// Parts copied from an object (UploadPartCopy via ComposeObject).
	srcs := []minio.CopySrcOptions{
		{Bucket: "data", Object: "big/multi.bin", MatchRange: true, Start: 0, End: 5<<20 - 1},
		{Bucket: "data", Object: "big/multi.bin", MatchRange: true, Start: 5 << 20, End: int64(len(data)) - 1},
	}
	if _, err := e.alice.ComposeObject(ctx, minio.CopyDestOptions{Bucket: "other", Object: "composed.bin"}, srcs...); err != nil {
		t.Fatal(err)
	}
	if got := get(t, e.alice, "other", "composed.bin", minio.GetObjectOptions{}); !bytes.Equal(got, data) {
		t.Errorf("composed content differs")
	}

	// Core API: list uploads and parts, abort, small part refused.
	core := minio.Core{Client: e.alice}
	id, err := core.NewMultipartUpload(ctx, "data", "pending.bin", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p1, err := core.PutObjectPart(ctx, "data", "pending.bin", id, 1, bytes.NewReader([]byte("small")), 5, minio.PutObjectPartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := core.PutObjectPart(ctx, "data", "pending.bin", id, 2, bytes.NewReader([]byte("last")), 4, minio.PutObjectPartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lp, err := core.ListObjectParts(ctx, "data", "pending.bin", id, 0, 100)
	if err != nil || len(lp.ObjectParts) != 2 || strings.Trim(lp.ObjectParts[0].ETag, `"`) != strings.Trim(p1.ETag, `"`) {
		t.Fatalf("ListObjectParts: %v %+v", err, lp)
	}
	lu, err := core.ListMultipartUploads(ctx, "data", "", "", "", "", 100)
	if err != nil || len(lu.Uploads) != 1 || lu.Uploads[0].UploadID != id {
		t.Fatalf("ListMultipartUploads: %v %+v", err, lu)
	}
	_, err = core.CompleteMultipartUpload(ctx, "data", "pending.bin", id, []minio.CompletePart{{PartNumber: 1, ETag: p1.ETag}, {PartNumber: 2, ETag: p2.ETag}}, minio.PutObjectOptions{})
	if s3Code(err) != "EntityTooSmall" {
		t.Errorf("a 5-byte first part: %v", err)
	}
	_, err = core.CompleteMultipartUpload(ctx, "data", "pending.bin", id, []minio.CompletePart{{PartNumber: 2, ETag: p2.ETag}, {PartNumber: 1, ETag: p1.ETag}}, minio.PutObjectOptions{})
	if s3Code(err) != "InvalidPartOrder" {
		t.Errorf("parts out of order: %v", err)
	}
	_, err = core.CompleteMultipartUpload(ctx, "data", "pending.bin", id, []minio.CompletePart{{PartNumber: 1, ETag: "0123456789abcdef0123456789abcdef"}}, minio.PutObjectOptions{})
	if s3Code(err) != "InvalidPart" {
		t.Errorf("wrong part ETag: %v", err)
	}
	// A single small part is also the last: fine.
	if _, err := core.CompleteMultipartUpload(ctx, "data", "pending.bin", id, []minio.CompletePart{{PartNumber: 2, ETag: p2.ETag}}, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := get(t, e.alice, "data", "pending.bin", minio.GetObjectOptions{}); string(got) != "last" {
		t.Errorf("completed: %q", got)
	}
	// A key that fits no template is refused when the upload starts.
	if _, err := core.NewMultipartUpload(ctx, "bytype", "no-type-segment", minio.PutObjectOptions{}); s3Code(err) != "InvalidArgument" {
		t.Errorf("multipart upload to a key the template refuses: %v", err)
	}
	id2, err := core.NewMultipartUpload(ctx, "data", "aborted.bin", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := core.AbortMultipartUpload(ctx, "data", "aborted.bin", id2); err != nil {
		t.Fatal(err)
	}
	if _, err := core.PutObjectPart(ctx, "data", "aborted.bin", id2, 1, strings.NewReader("x"), 1, minio.PutObjectPartOptions{}); s3Code(err) != "NoSuchUpload" {
		t.Errorf("part after abort: %v", err)
	}
	// Bob cannot touch alice's upload even in a bucket he reads.
	id3, err := core.NewMultipartUpload(ctx, "data", "alices.bin", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bcore := minio.Core{Client: e.bob}
	if _, err := bcore.ListObjectParts(ctx, "data", "alices.bin", id3, 0, 10); s3Code(err) != "NoSuchUpload" {
		t.Errorf("bob lists alice's parts: %v", err)
	}
}

func TestStaleUploadsCleaned(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.UploadMaxAge = time.Hour })
	ctx := ctxT(t)
	core := minio.Core{Client: e.alice}
	id, err := core.NewMultipartUpload(ctx, "data", "stale.bin", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.srv.mp.clean(time.Now())
	if _, err := core.ListObjectParts(ctx, "data", "stale.bin", id, 0, 10); err != nil {
		t.Fatalf("a fresh upload was cleaned: %v", err)
	}
	e.srv.mp.clean(time.Now().Add(2 * time.Hour))
	if _, err := core.ListObjectParts(ctx, "data", "stale.bin", id, 0, 10); s3Code(err) != "NoSuchUpload" {
		t.Fatalf("a stale upload survived: %v", err)
	}
}

func TestRequestQuery(t *testing.T) {
	for raw, want := range map[string]string{
		"":                                        "map[]",
		"X-Amz-Algorithm=a&X-Amz-Signature=b":     "map[]",
		"uploads&X-Amz-Signature=b":               "map[uploads:[]]",
		"response-content-type=x&X-Amz-Date=1":    "map[response-content-type:[x]]",
		"list-type=2&prefix=a%2Fb":                "map[list-type:[2] prefix:[a/b]]",
		"X-Amz-Expires=1&partNumber=2&uploadId=u": "map[partNumber:[2] uploadId:[u]]",
	} {
		if got := fmt.Sprint(requestQuery(raw)); got != want {
			t.Errorf("%q: %s, want %s", raw, got, want)
		}
	}
}

func TestCreateDeleteBucket(t *testing.T) {
	e := newTestEnv(t)
	ctx := ctxT(t)
	if err := e.alice.MakeBucket(ctx, "fresh", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.alice.MakeBucket(ctx, "fresh", minio.MakeBucketOptions{}); s3Code(err) != "BucketAlreadyOwnedByYou" {
		t.Errorf("again: %v", err)
	}
	if err := e.bob.MakeBucket(ctx, "bobs", minio.MakeBucketOptions{}); s3Code(err) != "AccessDenied" {
		t.Errorf("bob may not create buckets: %v", err)
	}
	if err := e.alice.MakeBucket(ctx, "secret", minio.MakeBucketOptions{}); s3Code(err) != "BucketAlreadyExists" {
		t.Errorf("a name taken by a view alice does not see: %v", err)
	}
	put(t, e.alice, "fresh", "a/b/c.txt", []byte("in fresh"), minio.PutObjectOptions{})
	st, err := e.alice.StatObject(ctx, "fresh", "a/b/c.txt", minio.StatObjectOptions{})
	if err != nil || st.UserMetadata["Bucket"] != "fresh" {
		t.Errorf("object in a created bucket: %v %v", err, st.UserMetadata)
	}
	if err := e.alice.RemoveBucket(ctx, "fresh"); s3Code(err) != "BucketNotEmpty" {
		t.Errorf("delete non-empty: %v", err)
	}
	if err := e.alice.RemoveBucket(ctx, "data"); s3Code(err) != "AccessDenied" {
		t.Errorf("delete a configured view: %v", err)
	}
	if err := e.alice.RemoveObject(ctx, "fresh", "a/b/c.txt", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.alice.RemoveBucket(ctx, "fresh"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := e.alice.BucketExists(ctx, "fresh"); ok {
		t.Error("bucket still there")
	}
	// Presigned: the signature's X-Amz-* parameters are no sub-resource.
	for _, m := range []string{http.MethodPut, http.MethodDelete} {
		u, err := e.alice.Presign(ctx, m, "presigned", "", time.Minute, nil)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(ctx, m, u.String(), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Errorf("presigned %s of a bucket: %s", m, resp.Status)
		}
		if ok, _ := e.alice.BucketExists(ctx, "presigned"); ok != (m == http.MethodPut) {
			t.Errorf("after a presigned %s, the bucket exists: %v", m, ok)
		}
	}
	// Versions: the current objects, version null.
	put(t, e.alice, "data", "v.txt", []byte("v"), minio.PutObjectOptions{})
	var vs []string
	for o := range e.alice.ListObjects(ctx, "data", minio.ListObjectsOptions{WithVersions: true, Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		vs = append(vs, o.Key+"@"+o.VersionID)
	}
	if strings.Join(vs, ",") != "v.txt@null" {
		t.Errorf("versions: %v", vs)
	}
	if got := get(t, e.alice, "data", "v.txt", minio.GetObjectOptions{VersionID: "null"}); string(got) != "v" {
		t.Errorf("versionId=null: %q", got)
	}
	o, _ := e.alice.GetObject(ctx, "data", "v.txt", minio.GetObjectOptions{VersionID: "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"})
	if _, err := io.ReadAll(o); err == nil {
		t.Error("a real version id was accepted")
	}
}
