package s3

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/datagate/datagate/fs"
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
