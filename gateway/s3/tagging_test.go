package s3

import (
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/tags"
)

// DeleteObjectTagging deleted the object (DELETE ?tagging went to
// DeleteObject); GetObjectTagging was NotImplemented, which fails the
// aws CLI's copies of large objects. Objects have no tags: the empty
// set, and nothing to delete.
func TestObjectTagging(t *testing.T) {
	e := newTestEnv(t)
	ctx := ctxT(t)
	put(t, e.alice, "data", "tagged", []byte("t"), minio.PutObjectOptions{})
	if err := e.alice.RemoveObjectTagging(ctx, "data", "tagged", minio.RemoveObjectTaggingOptions{}); err != nil {
		t.Errorf("DeleteObjectTagging: %v", err)
	}
	if got := get(t, e.alice, "data", "tagged", minio.GetObjectOptions{}); string(got) != "t" {
		t.Fatalf("after DeleteObjectTagging: %q", got)
	}
	tg, err := e.alice.GetObjectTagging(ctx, "data", "tagged", minio.GetObjectTaggingOptions{})
	if err != nil || len(tg.ToMap()) != 0 {
		t.Errorf("GetObjectTagging: %v %v", tg, err)
	}
	if _, err := e.alice.GetObjectTagging(ctx, "data", "missing", minio.GetObjectTaggingOptions{}); s3Code(err) != "NoSuchKey" {
		t.Errorf("GetObjectTagging of a missing key: %v", err)
	}
	if err := e.bob.RemoveObjectTagging(ctx, "data", "tagged", minio.RemoveObjectTaggingOptions{}); s3Code(err) != "AccessDenied" {
		t.Errorf("bob's DeleteObjectTagging: %v", err)
	}
	set, _ := tags.NewTags(map[string]string{"k": "v"}, true)
	if err := e.alice.PutObjectTagging(ctx, "data", "tagged", set, minio.PutObjectTaggingOptions{}); s3Code(err) != "NotImplemented" {
		t.Errorf("PutObjectTagging: %v", err)
	}
	if got := get(t, e.alice, "data", "tagged", minio.GetObjectOptions{}); string(got) != "t" {
		t.Errorf("at the end: %q", got)
	}
}
