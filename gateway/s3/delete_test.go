package s3

import (
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
