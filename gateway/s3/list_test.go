package s3

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/datagate/datagate/views"
)

// Keys chosen so that byte order differs from a naive directory walk:
// "a-b" and "a.txt" sort before "a/", "a0" after it.
var listKeys = []string{
	"a-b", "a/x", "a/y/", "a/y/z", "fold/", // folder objects (PUT of "dir/") before what is in them "a/y-/w", "a.txt", "a0", "a!/q", "b-", "b/c-d", "b/c/d", "b/c/e/f",
	"c d/e", "é/f", "z", "zz/zz/zz",
	// "%" is a key's byte like any other (the Tree's names escape it).
	"100%", "50%/x", "50%25", "%41", "a%/b", "a%2Fb",
}

// listBody is what the tests put at key k: a folder object is empty.
func listBody(k string) []byte {
	if strings.HasSuffix(k, "/") {
		return nil
	}
	return []byte(k)
}

// model lists keys as S3 defines it.
func model(keys []string, prefix, delim, marker string) []item {
	sort.Strings(keys)
	var out []item
	last := ""
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if delim != "" {
			if i := strings.Index(k[len(prefix):], delim); i >= 0 {
				cp := k[:len(prefix)+i+len(delim)]
				if cp != last && cp > marker {
					out = append(out, item{key: cp, prefix: true})
				}
				last = cp
				continue
			}
		}
		if k > marker {
			out = append(out, item{key: k})
		}
	}
	return out
}

func runLister(t *testing.T, tree *views.Tree, prefix, delim, marker string, max int) ([]item, bool) {
	t.Helper()
	var got []item
	truncated := false
	l := &lister{tree: tree, bucket: "data", prefix: prefix, delim: delim, marker: marker, emit: func(it item) bool {
		if len(got) == max {
			truncated = true
			return false
		}
		got = append(got, item{key: it.key, prefix: it.prefix})
		return true
	}}
	if err := l.run(context.Background()); err != nil {
		t.Fatalf("list prefix=%q delim=%q marker=%q: %v", prefix, delim, marker, err)
	}
	return got, truncated
}

func fmtItems(its []item) string {
	var b []string
	for _, it := range its {
		if it.prefix {
			b = append(b, "P:"+it.key)
		} else {
			b = append(b, it.key)
		}
	}
	return strings.Join(b, " ")
}

func TestListerAgainstModel(t *testing.T) {
	e := newTestEnv(t)
	for _, k := range listKeys {
		put(t, e.alice, "data", k, listBody(k), minio.PutObjectOptions{})
	}
	tree := e.srv.trees["alice"]
	prefixes := []string{"", "a", "a/", "a/y", "a/y/", "fold/", "b/c", "b/c/", "zz/", "nothing/", "a/x/", "é", "50%", "a%", "%"}
	delims := []string{"", "/", "-", "c", "/y", "%", "5"}
	markers := []string{"", "a", "a-b", "a/", "a/x", "a/y/", "a/y/z", "a0", "b/c", "b/c/d", "é", "zz", "50%", "50%/", "%41", "a%"}
	for _, p := range prefixes {
		for _, d := range delims {
			for _, m := range markers {
				want := model(append([]string(nil), listKeys...), p, d, m)
				got, _ := runLister(t, tree, p, d, m, 1000)
				if fmtItems(got) != fmtItems(want) {
					t.Errorf("prefix=%q delim=%q marker=%q:\n got  %s\n want %s", p, d, m, fmtItems(got), fmtItems(want))
				}
			}
			// Paging with the last item as the next marker gives the same.
			for _, n := range []int{1, 2, 3} {
				var all []item
				marker := ""
				for i := 0; i < 100; i++ {
					page, more := runLister(t, tree, p, d, marker, n)
					all = append(all, page...)
					if !more {
						break
					}
					marker = page[len(page)-1].key
				}
				if want := model(append([]string(nil), listKeys...), p, d, ""); fmtItems(all) != fmtItems(want) {
					t.Errorf("paged by %d prefix=%q delim=%q:\n got  %s\n want %s", n, p, d, fmtItems(all), fmtItems(want))
				}
			}
		}
	}
}

// ListObjectsV2 through minio-go with small pages and every option.
func TestListObjectsV2Paging(t *testing.T) {
	e := newTestEnv(t)
	ctx := ctxT(t)
	for _, k := range listKeys {
		put(t, e.alice, "data", k, listBody(k), minio.PutObjectOptions{})
	}
	for _, opt := range []minio.ListObjectsOptions{
		{Recursive: true, MaxKeys: 2},
		{Recursive: false, MaxKeys: 1},
		{Prefix: "b/", Recursive: true, MaxKeys: 1},
		{Recursive: true, StartAfter: "a0", MaxKeys: 3, WithMetadata: false},
		{Recursive: true, UseV1: true, MaxKeys: 2},
		{Recursive: false, UseV1: true, MaxKeys: 1},
	} {
		delim := ""
		if !opt.Recursive {
			delim = "/"
		}
		want := model(append([]string(nil), listKeys...), opt.Prefix, delim, opt.StartAfter)
		var got []item
		for o := range e.alice.ListObjects(ctx, "data", opt) {
			if o.Err != nil {
				t.Fatalf("%+v: %v", opt, o.Err)
			}
			got = append(got, item{key: o.Key, prefix: strings.HasSuffix(o.Key, "/") && o.Size == 0 && o.ETag == ""})
		}
		if fmtItems(got) != fmtItems(want) {
			t.Errorf("%+v:\n got  %s\n want %s", opt, fmtItems(got), fmtItems(want))
		}
	}
}

// Directories made by Mkdir (PUT of "dir/") list as folder objects.
func TestFolderObjects(t *testing.T) {
	e := newTestEnv(t)
	ctx := ctxT(t)
	put(t, e.alice, "data", "empty/", nil, minio.PutObjectOptions{})
	put(t, e.alice, "data", "full/x", []byte("x"), minio.PutObjectOptions{})
	var keys []string
	for o := range e.alice.ListObjects(ctx, "data", minio.ListObjectsOptions{Recursive: true}) {
		keys = append(keys, fmt.Sprintf("%s:%d", o.Key, o.Size))
	}
	if strings.Join(keys, ",") != "empty/:0,full/x:1" {
		t.Errorf("keys %v", keys)
	}
	if _, err := e.alice.StatObject(ctx, "data", "empty/", minio.StatObjectOptions{}); err != nil {
		t.Errorf("stat folder: %v", err)
	}
	if _, err := e.alice.StatObject(ctx, "data", "full/", minio.StatObjectOptions{}); s3Code(err) != "NoSuchKey" {
		t.Errorf("an implied directory is not an object: %v", err)
	}
	if err := e.alice.RemoveObject(ctx, "data", "empty/", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.alice.StatObject(ctx, "data", "empty/", minio.StatObjectOptions{}); s3Code(err) != "NoSuchKey" {
		t.Errorf("folder after delete: %v", err)
	}
}
