package s3

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/views/audittest"
)

// An object whose metadata value holds a "/" (registered metadata, or a
// type sent as x-amz-meta-type) is listed under the Tree's escaped
// segment ("a%2Fb/s.txt" in bytype): that key reads, stats, copies,
// tags, overwrites and deletes it. treeKey took "a%2Fb" for a name of
// its own ("a%252Fb"), so the listed key was NoSuchKey for everything.
// A key that names a file "x%2Fy" literally stays such a name.
func TestListedKeyOfValueWithSlash(t *testing.T) {
	e := newTestEnv(t)
	ctx := ctxT(t)
	put(t, e.alice, "data", "s.txt", []byte("slash"), minio.PutObjectOptions{UserMetadata: map[string]string{"type": "a/b"}})
	var listed []string
	for o := range e.alice.ListObjects(ctx, "bytype", minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		listed = append(listed, o.Key)
	}
	const key = "a%2Fb/s.txt"
	if len(listed) != 1 || listed[0] != key {
		t.Fatalf("bytype lists %q, want [%q]", listed, key)
	}
	if got := get(t, e.alice, "bytype", key, minio.GetObjectOptions{}); string(got) != "slash" {
		t.Errorf("get by the listed key: %q", got)
	}
	if st, err := e.alice.StatObject(ctx, "bytype", key, minio.StatObjectOptions{}); err != nil || st.Size != 5 {
		t.Errorf("stat by the listed key: %+v, %v", st.Size, err)
	}
	if _, err := e.alice.CopyObject(ctx, minio.CopyDestOptions{Bucket: "data", Object: "copy.txt"}, minio.CopySrcOptions{Bucket: "bytype", Object: key}); err != nil {
		t.Errorf("copy from the listed key: %v", err)
	} else if got := get(t, e.alice, "data", "copy.txt", minio.GetObjectOptions{}); string(got) != "slash" {
		t.Errorf("copy: %q", got)
	}
	if _, err := e.alice.GetObjectTagging(ctx, "bytype", key, minio.GetObjectTaggingOptions{}); err != nil {
		t.Errorf("tagging of the listed key: %v", err)
	}
	// Overwritten through that key: the same path, not a new file at
	// "a%252Fb/s.txt".
	put(t, e.alice, "bytype", key, []byte("slash 2"), minio.PutObjectOptions{})
	listed = listed[:0]
	for o := range e.alice.ListObjects(ctx, "bytype", minio.ListObjectsOptions{Recursive: true}) {
		listed = append(listed, o.Key)
	}
	if want := []string{"a%2Fb/copy.txt", key}; !slices.Equal(listed, want) { // the copy kept type
		t.Errorf("after an overwrite bytype lists %q, want %q", listed, want)
	}
	if got := get(t, e.alice, "bytype", key, minio.GetObjectOptions{}); string(got) != "slash 2" {
		t.Errorf("after an overwrite: %q", got)
	}
	if err := e.alice.RemoveObject(ctx, "bytype", key, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	e.mustNotExist(t, "bytype", key)

	// A name holding "%2F" as text is still that name, both ways.
	put(t, e.alice, "data", "lit/x%2Fy.txt", []byte("literal"), minio.PutObjectOptions{UserMetadata: map[string]string{"type": "lit"}})
	if got := get(t, e.alice, "bytype", "lit/x%2Fy.txt", minio.GetObjectOptions{}); !bytes.Equal(got, []byte("literal")) {
		t.Errorf("literal name through bytype: %q", got)
	}
	if err := e.alice.RemoveObject(ctx, "data", "lit/x%2Fy.txt", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	e.mustNotExist(t, "data", "lit/x%2Fy.txt")
}

// HeadObject of an object registered without a size and not read yet
// gives the size a GET sends (it said Content-Length: 0, so a client
// comparing sizes — rclone, aws s3 sync — saw a transfer gone wrong), and
// NoSuchKey, as the GET, when the provider's file is gone (it said 200).
func TestHeadOfRegisteredObjectWithoutSize(t *testing.T) {
	e := newTestEnv(t)
	ctx := ctxT(t)
	if err := os.MkdirAll(filepath.Join(e.dir, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	content := []byte("registered without a size")
	for _, n := range []string{"here", "gone"} {
		if err := os.WriteFile(filepath.Join(e.dir, "src", n), content, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := e.st.Register(ctx, []*fs.Object{{Name: n, Size: -1, Meta: map[string]string{"bucket": "data", "path": n},
			Source: fs.Location{Provider: "disk", Path: n}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(e.dir, "src", "gone")); err != nil {
		t.Fatal(err)
	}
	st, err := e.alice.StatObject(ctx, "data", "here", minio.StatObjectOptions{})
	if err != nil || st.Size != int64(len(content)) {
		t.Errorf("HEAD here: size %d, %v; want %d", st.Size, err, len(content))
	}
	if got := get(t, e.alice, "data", "here", minio.GetObjectOptions{}); !bytes.Equal(got, content) {
		t.Errorf("GET here: %q", got)
	}
	if _, err := e.alice.StatObject(ctx, "data", "gone", minio.StatObjectOptions{}); s3Code(err) != "NoSuchKey" {
		t.Errorf("HEAD of an object whose provider file is gone: %v, want NoSuchKey as GET", err)
	}
}

// A GET whose content cannot be fetched is an S3 error answer: the
// provider's file gone is NoSuchKey, an unknown provider
// ServiceUnavailable with S3's message, not the cause, a provider's file
// that is a directory InternalError (it was InvalidArgument, the
// client's fault, naming the provider and its path). The first was a
// 200 whose connection was cut before any byte (curl: "Empty reply from
// server"; clients retried in vain), the second carried the cause, which
// may name a provider's URL or a path in the server's data directory.
func TestUnreadableContentIsAnErrorAnswer(t *testing.T) {
	e := newTestEnv(t)
	ctx := ctxT(t)
	if err := os.MkdirAll(filepath.Join(e.dir, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Register(ctx, []*fs.Object{
		{Name: "lost", Size: 100, Meta: map[string]string{"bucket": "data", "path": "lost"}, Source: fs.Location{Provider: "disk", Path: "lost"}},
		{Name: "nowhere", Size: 100, Meta: map[string]string{"bucket": "data", "path": "nowhere"}, Source: fs.Location{Provider: "disk", Path: "secret/nowhere"}},
		{Name: "adir", Size: 100, Meta: map[string]string{"bucket": "data", "path": "adir"}, Source: fs.Location{Provider: "disk", Path: "adir"}},
	}); err != nil {
		t.Fatal(err)
	}
	// One attempt: minio-go retries a 503 ten times.
	once, err := minio.New(e.host, &minio.Options{Creds: credentials.NewStaticV4(aliceKey, aliceSecret, ""), Region: DefaultRegion, BucketLookup: minio.BucketLookupPath, MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(e.dir, "src", "adir"), 0o755); err != nil { // the provider's "file" is a directory
		t.Fatal(err)
	}
	for _, c := range []struct{ key, code string }{{"lost", "NoSuchKey"}, {"adir", "InternalError"}, {"nowhere", "ServiceUnavailable"}} {
		if c.key == "nowhere" {
			e.st.SetProviders(map[string]backends.Provider{}) // its provider is gone from the configuration
		}
		for _, rng := range []bool{false, true} {
			opts := minio.GetObjectOptions{}
			if rng {
				opts.SetRange(10, 19)
			}
			o, err := once.GetObject(ctx, "data", c.key, opts)
			if err == nil {
				_, err = io.ReadAll(o)
				o.Close()
			}
			resp := minio.ToErrorResponse(err)
			if resp.Code != c.code {
				t.Errorf("GET %s (range %v): %v (code %q), want %s", c.key, rng, err, resp.Code, c.code)
			}
			if strings.Contains(resp.Message, "provider") || strings.Contains(resp.Message, "disk") {
				t.Errorf("GET %s: the message tells the cause: %q", c.key, resp.Message)
			}
		}
	}
}

// Failed logins are recorded at most failAuditBurst a window per
// address, and the next record says how many were not: every anonymous
// request was recorded, so one client on one connection wrote 700 KiB
// of audit log a second to the data directory's disk.
func TestFailedLoginAuditIsBounded(t *testing.T) {
	audit := &audittest.Log{}
	e := newTestEnv(t, func(o *Options) { o.Views.SetAudit(audit.JSON()) })
	e.srv.failAudit = newAuditLimit(failAuditBurst, 300*time.Millisecond) // before any request
	ctx := ctxT(t)
	get := func() {
		r, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/data/k", nil)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("anonymous GET: %d", resp.StatusCode)
		}
	}
	logins := func() []string {
		var out []string
		for _, l := range strings.Split(audit.String(), "\n") {
			if strings.Contains(l, `"op":"login"`) {
				out = append(out, l)
			}
		}
		return out
	}
	for range 3 * failAuditBurst {
		get()
	}
	if n := len(logins()); n != failAuditBurst {
		t.Fatalf("%d anonymous requests: %d audit records, want %d", 3*failAuditBurst, n, failAuditBurst)
	}
	time.Sleep(350 * time.Millisecond)
	get()
	l := logins()
	if len(l) != failAuditBurst+1 || !strings.Contains(l[len(l)-1], fmt.Sprintf("%d more from this address", 2*failAuditBurst)) {
		t.Errorf("after the window: %d records, the last %s", len(l), l[len(l)-1])
	}
}

// An ACL PUT is a write: AccessDenied without the w right on the bucket
// (PutObjectAcl and PutBucketAcl succeeded for a user who may only
// read), and the ACL a user reads grants READ without it (it granted
// FULL_CONTROL).
func TestACLsFollowRights(t *testing.T) {
	e := newTestEnv(t)
	put(t, e.alice, "data", "acl.txt", []byte("x"), minio.PutObjectOptions{})
	as := func(id, secret, method, path string) (int, string, string) {
		t.Helper()
		req, err := http.NewRequest(method, e.url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		if method == "PUT" {
			req.Header.Set("X-Amz-Acl", "public-read")
		}
		return send(t, signer.SignV4(*req, id, secret, "", DefaultRegion))
	}
	for _, p := range []string{"/data/acl.txt?acl", "/data?acl"} {
		if code, s3code, _ := as(bobKey, bobSecret, "PUT", p); code != http.StatusForbidden || s3code != "AccessDenied" {
			t.Errorf("bob (read only) PUT %s: %d %s, want 403 AccessDenied", p, code, s3code)
		}
		if code, _, body := as(aliceKey, aliceSecret, "PUT", p); code != http.StatusOK {
			t.Errorf("alice PUT %s: %d %s", p, code, body)
		}
		if _, _, body := as(bobKey, bobSecret, "GET", p); !strings.Contains(body, "<Permission>READ</Permission>") {
			t.Errorf("bob GET %s: %s, want a READ grant", p, body)
		}
		if _, _, body := as(aliceKey, aliceSecret, "GET", p); !strings.Contains(body, "<Permission>FULL_CONTROL</Permission>") {
			t.Errorf("alice GET %s: %s, want FULL_CONTROL", p, body)
		}
	}
}

// An object with more metadata than S3 carries (registered, or set
// through WebDAV's PROPPATCH) is answered with at most maxMetaHeaders
// x-amz-meta-* headers of at most maxMetaOut bytes, the first keys in
// order, and x-amz-missing-meta counting the rest: 5,000 keys made 5,000
// headers and the aws CLI could no longer HEAD or GET the object.
func TestMetadataHeadersAreBounded(t *testing.T) {
	e := newTestEnv(t)
	ctx := ctxT(t)
	meta := map[string]string{"bucket": "data", "path": "many"}
	for i := range 500 {
		meta[fmt.Sprintf("k%03d", i)] = strings.Repeat("v", 100)
	}
	if _, err := e.st.Register(ctx, []*fs.Object{{Name: "many", Size: 0, Meta: meta, Source: fs.Location{Provider: "disk", Path: "many"}}}); err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{"HEAD", "GET"} {
		req, _ := http.NewRequestWithContext(ctx, method, e.url+"/data/many", nil)
		req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		resp, err := http.DefaultClient.Do(signer.SignV4(*req, aliceKey, aliceSecret, "", DefaultRegion))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		n, size := 0, 0
		for k, v := range resp.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-amz-meta-") {
				n++
				size += len(k) - len("x-amz-meta-") + len(v[0])
			}
		}
		missing := resp.Header.Get("X-Amz-Missing-Meta")
		if resp.StatusCode != http.StatusOK || n > maxMetaHeaders || size > maxMetaOut || n == 0 || missing != fmt.Sprint(502-n) {
			t.Errorf("%s: %d, %d metadata headers (%d bytes), x-amz-missing-meta %q", method, resp.StatusCode, n, size, missing)
		}
		if resp.Header.Get("X-Amz-Meta-Bucket") != "data" { // the first keys in order
			t.Errorf("%s: x-amz-meta-bucket %q", method, resp.Header.Get("X-Amz-Meta-Bucket"))
		}
	}
	// Metadata S3 carries comes whole, with no x-amz-missing-meta.
	put(t, e.alice, "data", "few", []byte("x"), minio.PutObjectOptions{UserMetadata: map[string]string{"a": "1", "b": "2"}})
	st, err := e.alice.StatObject(ctx, "data", "few", minio.StatObjectOptions{})
	if err != nil || st.Metadata.Get("X-Amz-Missing-Meta") != "" || st.UserMetadata["A"] != "1" || st.UserMetadata["B"] != "2" {
		t.Errorf("few: %v %v %v", err, st.Metadata, st.UserMetadata)
	}
}
