package s3

import (
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
)

// DeleteObject of "dir/" where dir is only implied by the keys under it
// deletes nothing and succeeds, as in S3 (the key holds no object); it
// was BucketNotEmpty ("aws s3 rm s3://b/dir/" printed "delete failed").
// The keys under it stay.
func TestDeleteImpliedFolderKey(t *testing.T) {
	e := newTestEnv(t)
	ctx := ctxT(t)
	put(t, e.alice, "data", "d/x", []byte("x"), minio.PutObjectOptions{})
	put(t, e.alice, "data", "d/e/y", []byte("y"), minio.PutObjectOptions{})
	if err := e.alice.RemoveObject(ctx, "data", "d/", minio.RemoveObjectOptions{}); err != nil {
		t.Errorf("DeleteObject d/: %v", err)
	}
	objs := make(chan minio.ObjectInfo, 2)
	objs <- minio.ObjectInfo{Key: "d/e/"}
	objs <- minio.ObjectInfo{Key: "nothing/"}
	close(objs)
	for r := range e.alice.RemoveObjects(ctx, "data", objs, minio.RemoveObjectsOptions{}) {
		t.Errorf("DeleteObjects %s: %v", r.ObjectName, r.Err)
	}
	for _, k := range []string{"d/x", "d/e/y"} {
		if got := get(t, e.alice, "data", k, minio.GetObjectOptions{}); len(got) != 1 {
			t.Errorf("%s after deleting its folder key: %q", k, got)
		}
	}
	// Without the right to delete, still AccessDenied.
	if err := e.bob.RemoveObject(ctx, "data", "d/", minio.RemoveObjectOptions{}); s3Code(err) != "AccessDenied" {
		t.Errorf("bob deletes d/: %v", err)
	}
}

// A DeleteObjects batch in key order holds a folder object before what is
// in it (s3cmd del --recursive, rclone purge, minio-go RemoveObjects of a
// listing): the folders are removed after the rest of the batch, so the
// whole tree goes (the folder failed with BucketNotEmpty before).
func TestDeleteObjectsFolderFirst(t *testing.T) {
	e := newTestEnv(t)
	ctx := ctxT(t)
	put(t, e.alice, "data", "tree/", nil, minio.PutObjectOptions{})
	put(t, e.alice, "data", "tree/sub/", nil, minio.PutObjectOptions{})
	put(t, e.alice, "data", "tree/sub/f", []byte("f"), minio.PutObjectOptions{})
	put(t, e.alice, "data", "tree/g", []byte("g"), minio.PutObjectOptions{})
	objs := make(chan minio.ObjectInfo)
	go func() {
		defer close(objs)
		for o := range e.alice.ListObjects(ctx, "data", minio.ListObjectsOptions{Prefix: "tree/", Recursive: true}) {
			objs <- o
		}
	}()
	n := 0
	for r := range e.alice.RemoveObjectsWithResult(ctx, "data", objs, minio.RemoveObjectsOptions{}) {
		if r.Err != nil {
			t.Errorf("delete %s: %v", r.ObjectName, r.Err)
		}
		n++
	}
	if n != 4 {
		t.Errorf("%d keys deleted, want 4 (tree/, tree/g, tree/sub/, tree/sub/f)", n)
	}
	for o := range e.alice.ListObjects(ctx, "data", minio.ListObjectsOptions{Recursive: true}) {
		t.Errorf("left: %s %v", o.Key, o.Err)
	}
}

// A user who may not delete in a bucket gets AccessDenied for a missing
// key too (it answered 204 and "aws s3 rm" printed "delete:"), one by
// one in DeleteObjects.
func TestDeleteWithoutRight(t *testing.T) {
	e := newTestEnv(t)
	ctx := ctxT(t)
	put(t, e.alice, "data", "kept", []byte("k"), minio.PutObjectOptions{})
	for _, k := range []string{"kept", "missing", "missing-dir/"} {
		if err := e.bob.RemoveObject(ctx, "data", k, minio.RemoveObjectOptions{}); s3Code(err) != "AccessDenied" {
			t.Errorf("bob deletes %s: %v", k, err)
		}
	}
	objs := make(chan minio.ObjectInfo, 2)
	objs <- minio.ObjectInfo{Key: "kept"}
	objs <- minio.ObjectInfo{Key: "missing"}
	close(objs)
	n := 0
	for r := range e.bob.RemoveObjectsWithResult(ctx, "data", objs, minio.RemoveObjectsOptions{}) {
		if s3Code(r.Err) != "AccessDenied" {
			t.Errorf("bob's DeleteObjects %s: %v", r.ObjectName, r.Err)
		}
		n++
	}
	if n != 2 {
		t.Errorf("%d results, want 2", n)
	}
	if got := get(t, e.alice, "data", "kept", minio.GetObjectOptions{}); string(got) != "k" {
		t.Errorf("kept: %q", got)
	}
}

// CopyObject of a folder object ("dir/") onto another folder key makes
// that folder (a client renaming a folder copies its placeholder); it
// was InvalidArgument. An object onto a folder key stays refused.
func TestCopyFolderObject(t *testing.T) {
	e := newTestEnv(t)
	ctx := ctxT(t)
	put(t, e.alice, "data", "from/", nil, minio.PutObjectOptions{})
	put(t, e.alice, "data", "obj", []byte("o"), minio.PutObjectOptions{})
	if _, err := e.alice.CopyObject(ctx, minio.CopyDestOptions{Bucket: "data", Object: "to/"}, minio.CopySrcOptions{Bucket: "data", Object: "from/"}); err != nil {
		t.Fatalf("copy from/ to to/: %v", err)
	}
	if st, err := e.alice.StatObject(ctx, "data", "to/", minio.StatObjectOptions{}); err != nil || st.Size != 0 {
		t.Errorf("to/ after the copy: %v %v", st, err)
	}
	if _, err := e.alice.CopyObject(ctx, minio.CopyDestOptions{Bucket: "data", Object: "to2/"}, minio.CopySrcOptions{Bucket: "data", Object: "obj"}); s3Code(err) != "InvalidArgument" {
		t.Errorf("an object onto a folder key: %v", err)
	}
	if _, err := e.alice.CopyObject(ctx, minio.CopyDestOptions{Bucket: "data", Object: "to3/"}, minio.CopySrcOptions{Bucket: "data", Object: "none/"}); s3Code(err) != "NoSuchKey" {
		t.Errorf("a missing folder: %v", err)
	}
	if _, err := e.bob.CopyObject(ctx, minio.CopyDestOptions{Bucket: "data", Object: "bobs/"}, minio.CopySrcOptions{Bucket: "data", Object: "from/"}); s3Code(err) != "AccessDenied" {
		t.Errorf("bob copies a folder: %v", err)
	}
}

// DeleteObject of a folder object with keys under it removes the folder
// object alone, as S3 does ("aws s3 rm --recursive s3://b/dir/" deletes
// key by key in listing order, the folder object first: it failed with
// BucketNotEmpty and stayed).
func TestDeleteFolderObjectWithContent(t *testing.T) {
	e := newTestEnv(t)
	ctx := ctxT(t)
	put(t, e.alice, "data", "dir/", nil, minio.PutObjectOptions{})
	put(t, e.alice, "data", "dir/sub/", nil, minio.PutObjectOptions{})
	put(t, e.alice, "data", "dir/sub/f", []byte("f"), minio.PutObjectOptions{})
	for _, k := range []string{"dir/", "dir/sub/"} {
		if err := e.alice.RemoveObject(ctx, "data", k, minio.RemoveObjectOptions{}); err != nil {
			t.Fatalf("DeleteObject %s: %v", k, err)
		}
	}
	var keys []string
	for o := range e.alice.ListObjects(ctx, "data", minio.ListObjectsOptions{Prefix: "dir/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	if strings.Join(keys, ",") != "dir/sub/f" {
		t.Fatalf("left %v, want only dir/sub/f", keys)
	}
	if got := get(t, e.alice, "data", "dir/sub/f", minio.GetObjectOptions{}); string(got) != "f" {
		t.Fatalf("dir/sub/f: %q", got)
	}
	if err := e.bob.RemoveObject(ctx, "data", "dir/", minio.RemoveObjectOptions{}); s3Code(err) != "AccessDenied" {
		t.Errorf("bob deletes dir/: %v", err)
	}
}
