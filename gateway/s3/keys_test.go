package s3

import (
	"bytes"
	"sort"
	"testing"

	"github.com/minio/minio-go/v7"
)

// Keys holding "%" — "50%.txt", "a%20b" as rclone and the aws CLI send
// file names — are keys like any other: put, read, listed, copied and
// deleted under the name the client gave, and the object's name is that
// name (read through the view by type). They were InvalidArgument
// ("malformed escape") before.
func TestKeysWithPercent(t *testing.T) {
	e := newTestEnv(t)
	ctx := ctxT(t)
	keys := []string{"p/50%.txt", "p/h é%20x.txt", "p/%41/%2F%", "p/100%25", "p/back\\slash"}
	for _, k := range keys {
		put(t, e.alice, "data", k, []byte(k), minio.PutObjectOptions{UserMetadata: map[string]string{"type": "pct"}})
		if got := get(t, e.alice, "data", k, minio.GetObjectOptions{}); !bytes.Equal(got, []byte(k)) {
			t.Errorf("get %q: %q", k, got)
		}
	}
	// The object's name is the key's last segment, as the client gave it.
	if got := get(t, e.alice, "bytype", "pct/50%.txt", minio.GetObjectOptions{}); string(got) != "p/50%.txt" {
		t.Errorf("through bytype: %q", got)
	}
	var listed []string
	for o := range e.alice.ListObjects(ctx, "data", minio.ListObjectsOptions{Prefix: "p/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		listed = append(listed, o.Key)
	}
	want := append([]string(nil), keys...)
	sort.Strings(want)
	sort.Strings(listed)
	if len(listed) != len(want) {
		t.Fatalf("listed %q, want %q", listed, want)
	}
	for i := range want {
		if listed[i] != want[i] {
			t.Errorf("listed %q, want %q", listed, want)
			break
		}
	}
	var prefixes []string
	for o := range e.alice.ListObjects(ctx, "data", minio.ListObjectsOptions{Prefix: "p/%"}) {
		prefixes = append(prefixes, o.Key)
	}
	if len(prefixes) != 1 || prefixes[0] != "p/%41/" {
		t.Errorf("prefix p/%%: %q", prefixes)
	}
	if _, err := e.alice.CopyObject(ctx, minio.CopyDestOptions{Bucket: "data", Object: "q/copy 100%"}, minio.CopySrcOptions{Bucket: "data", Object: "p/50%.txt"}); err != nil {
		t.Fatal(err)
	}
	if got := get(t, e.alice, "data", "q/copy 100%", minio.GetObjectOptions{}); string(got) != "p/50%.txt" {
		t.Errorf("copy: %q", got)
	}
	for _, k := range append(keys, "q/copy 100%") {
		if err := e.alice.RemoveObject(ctx, "data", k, minio.RemoveObjectOptions{}); err != nil {
			t.Errorf("remove %q: %v", k, err)
		}
		e.mustNotExist(t, "data", k)
	}
	// An empty template value is the segment "%-" in listings, and the
	// object can be read and deleted by that key.
	put(t, e.alice, "data", "empty-type.txt", []byte("e"), minio.PutObjectOptions{UserMetadata: map[string]string{"type": ""}})
	var inBytype []string
	for o := range e.alice.ListObjects(ctx, "bytype", minio.ListObjectsOptions{Recursive: true}) {
		inBytype = append(inBytype, o.Key)
	}
	if len(inBytype) != 1 || inBytype[0] != "%-/empty-type.txt" {
		t.Errorf("bytype lists %q", inBytype)
	}
	if got := get(t, e.alice, "bytype", "%-/empty-type.txt", minio.GetObjectOptions{}); string(got) != "e" {
		t.Errorf("read by its listed key: %q", got)
	}
	if err := e.alice.RemoveObject(ctx, "bytype", "%-/empty-type.txt", minio.RemoveObjectOptions{}); err != nil {
		t.Error(err)
	}
	e.mustNotExist(t, "data", "empty-type.txt")
	// Multipart to such a key; the answer's Location is its URL.
	big := bytes.Repeat([]byte("%"), 6<<20)
	info := put(t, e.alice, "data", "mp/100% sure.bin", big, minio.PutObjectOptions{PartSize: 5 << 20})
	if want := e.url + "/data/mp/100%25%20sure.bin"; info.Location != want {
		t.Errorf("Location %q, want %q", info.Location, want)
	}
	if got := get(t, e.alice, "data", "mp/100% sure.bin", minio.GetObjectOptions{}); !bytes.Equal(got, big) {
		t.Errorf("multipart: %d bytes", len(got))
	}
}

func TestTreeKeyRoundTrip(t *testing.T) {
	for _, c := range []struct{ key, tree string }{
		{"plain/key.txt", "plain/key.txt"},
		{"a/50%.txt", "a/50%25.txt"},
		{"a%2Fb/c", "a%252Fb/c"},
		{"back\\slash\x01", "back%5Cslash%01"},
		{"é/ü", "é/ü"},
		{"a/../b", "a/../b"},       // refused by the Tree, as sent
		{"a//b%", "a//b%25"},       // the empty segment too
		{"nul\x00%", "nul\x00%"},   // and NUL
		{"type/%-/x", "type/%-/x"}, // the empty value's segment, as listed
		{"%2E/%2E%2E/%2E%", "%2E/%2E%2E/%252E%25"},
	} {
		if got := treeKey(c.key); got != c.tree {
			t.Errorf("treeKey(%q) = %q, want %q", c.key, got, c.tree)
		}
		if got := keyOf(c.tree); got != c.key && c.key != "nul\x00%" {
			t.Errorf("keyOf(%q) = %q, want %q", c.tree, got, c.key)
		}
	}
}
