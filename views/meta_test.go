package views

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/datagate/datagate/fs"
)

func TestInfoChecksumsAndETag(t *testing.T) {
	e := newEnv(t, twoViews)
	ctx := ctxT(t)
	tr := e.tree("alice", map[string]Rights{"by-date": All, "by-type": All})
	body := "checksummed"
	md, sh := md5.Sum([]byte(body)), sha256.Sum256([]byte(body))
	ci, err := tr.Create(ctx, "by-date/d1/obs/a.txt", strings.NewReader(body), CreateOptions{Size: -1, ContentType: "text/plain", Meta: map[string]string{"owner": "bob"}})
	if err != nil {
		t.Fatal(err)
	}
	if !ci.Object() || !bytes.Equal(ci.MD5(), md[:]) || !bytes.Equal(ci.SHA256(), sh[:]) || ci.ETag() != hex.EncodeToString(md[:]) {
		t.Fatalf("create info: md5 %x sha %x etag %q", ci.MD5(), ci.SHA256(), ci.ETag())
	}
	// Stat and listings carry the ETag from the path index alone.
	si, err := tr.Stat(ctx, "by-type/obs/d1/a.txt")
	if err != nil || si.ETag() != hex.EncodeToString(md[:]) || si.Object() || si.MD5() != nil {
		t.Fatalf("stat: etag %q object %v md5 %x err %v", si.ETag(), si.Object(), si.MD5(), err)
	}
	page, err := tr.ReadDir(ctx, "by-date/d1/obs", "", 10)
	if err != nil || len(page) != 1 || page[0].ETag() != hex.EncodeToString(md[:]) {
		t.Fatalf("readdir: %v %v", page, err)
	}
	oi, err := tr.StatObject(ctx, "by-date/d1/obs/a.txt")
	if err != nil || !bytes.Equal(oi.SHA256(), sh[:]) || oi.Meta()["owner"] != "bob" || oi.Meta()["type"] != "obs" || oi.ContentType() != "text/plain" {
		t.Fatalf("statobject: %+v %v", oi, err)
	}
	o, err := tr.Object(ctx, "by-date/d1/obs/a.txt")
	if err != nil || o.Meta["owner"] != "bob" || !bytes.Equal(o.MD5, md[:]) {
		t.Fatalf("object: %+v %v", o, err)
	}
	f, err := tr.Open(ctx, "by-date/d1/obs/a.txt")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.Stat().MD5(), md[:]) {
		t.Fatalf("open info md5 %x", f.Stat().MD5())
	}
	f.Close()
	if _, err := tr.Object(ctx, "by-date/d1"); err == nil {
		t.Fatal("object of a directory: no error")
	}
	// A given ETag (S3 multipart) is kept.
	mi, err := tr.Create(ctx, "by-date/d1/obs/m.bin", strings.NewReader("parts"), CreateOptions{Size: -1, ETag: "0123abcd-2"})
	if err != nil || mi.ETag() != "0123abcd-2" {
		t.Fatalf("multipart etag: %v %v", mi, err)
	}
	if si, err := tr.Stat(ctx, "by-type/obs/d1/m.bin"); err != nil || si.ETag() != "0123abcd-2" {
		t.Fatalf("multipart etag via stat: %v %v", si, err)
	}
}

func TestEntryV1StillDecodes(t *testing.T) {
	// A path index written before ETags were kept.
	v1 := []byte{valueV1, 0, 3, 6, 2}
	e, err := decodeEntry(v1)
	if err != nil || e.size != 3 || e.etag != "" || e.modTime.IsZero() {
		t.Fatalf("v1: %+v %v", e, err)
	}
	for _, bad := range [][]byte{{valueV2, 0, 3, 6, 2}, {valueV2, 0, 3, 6, 2, 5, 'a'}} {
		if _, err := decodeEntry(bad); err == nil {
			t.Fatalf("%x: no error", bad)
		}
	}
}

func TestSetMeta(t *testing.T) {
	defs := map[string]Def{
		"by-date": {Path: "{date}/{type}/{name}"},
		"by-type": {Path: "{type}/{date}/{name}", Filter: "type in (obs, fc)"},
		"inbox":   {Path: "{date}/{name}", Set: map[string]string{"type": "obs", "src": "inbox"}},
		"up":      {Path: "{path...}"},
	}
	e := newEnv(t, defs)
	ctx := ctxT(t)
	tr := e.tree("alice", map[string]Rights{"by-date": All, "by-type": All, "inbox": All, "up": All})
	if _, err := tr.Create(ctx, "by-date/d1/obs/a.txt", strings.NewReader("a"), CreateOptions{Size: -1}); err != nil {
		t.Fatal(err)
	}
	// A key no template uses: the file stays put, the metadata changes.
	i, err := tr.SetMeta(ctx, "by-date/d1/obs/a.txt", map[string]string{"owner": "bob", "x": "1"}, nil)
	if err != nil || i.Name() != "a.txt" || i.Meta()["owner"] != "bob" {
		t.Fatalf("setmeta: %v %v", i, err)
	}
	if _, err := tr.SetMeta(ctx, "by-date/d1/obs/a.txt", map[string]string{"owner": "carol"}, []string{"x", "absent"}); err != nil {
		t.Fatal(err)
	}
	o, err := tr.Object(ctx, "by-type/obs/d1/a.txt")
	if err != nil || o.Meta["owner"] != "carol" || o.Meta["x"] != "" || len(o.Meta) != 3 {
		t.Fatalf("after set+del: %v %v", o, err)
	}
	// A template key moves the file in every view.
	i, err = tr.SetMeta(ctx, "by-date/d1/obs/a.txt", map[string]string{"date": "d2"}, nil)
	if err != nil || i.Name() != "a.txt" {
		t.Fatalf("move: %v %v", i, err)
	}
	if got := names(t, tr, "by-date", 10); !slices.Equal(got, []string{"d2/"}) {
		t.Fatalf("by-date after move: %v", got)
	}
	if got := names(t, tr, "by-type/obs", 10); !slices.Equal(got, []string{"d2/"}) {
		t.Fatalf("by-type after move: %v", got)
	}
	// Errors.
	if _, err := tr.Create(ctx, "by-date/d2/obs/b.txt", strings.NewReader("b"), CreateOptions{Size: -1}); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Create(ctx, "by-date/d3/obs/a.txt", strings.NewReader("c"), CreateOptions{Size: -1}); err != nil {
		t.Fatal(err)
	}
	ro := e.tree("bob", map[string]Rights{"by-date": Read})
	for _, c := range []struct {
		name string
		tr   *Tree
		p    string
		set  map[string]string
		del  []string
		kind fs.Kind
	}{
		{"taken", tr, "by-date/d2/obs/a.txt", map[string]string{"date": "d3"}, nil, fs.Exist},
		{"filter refuses", tr, "by-type/obs/d2/a.txt", map[string]string{"type": "model"}, nil, fs.Invalid},
		{"template key removed", tr, "by-date/d2/obs/a.txt", nil, []string{"date"}, fs.Invalid},
		{"name", tr, "by-date/d2/obs/a.txt", map[string]string{"name": "z"}, nil, fs.Invalid},
		{"reserved", tr, "by-date/d2/obs/a.txt", map[string]string{"dg.view": "z"}, nil, fs.Invalid},
		{"value too long", tr, "by-date/d2/obs/a.txt", map[string]string{"k": strings.Repeat("v", 5000)}, nil, fs.Invalid},
		{"fixed by set:", tr, "inbox/d2/a.txt", map[string]string{"src": "other"}, nil, fs.Permission},
		{"fixed by set: (del)", tr, "inbox/d2/a.txt", nil, []string{"src"}, fs.Permission},
		{"read only", ro, "d2/obs/a.txt", map[string]string{"k": "v"}, nil, fs.Permission},
		{"directory", tr, "by-date/d2", map[string]string{"k": "v"}, nil, fs.IsDir},
		{"missing", tr, "by-date/d2/obs/nope", map[string]string{"k": "v"}, nil, fs.NotExist},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.tr.SetMeta(ctx, c.p, c.set, c.del)
			wantKind(t, c.name, err, c.kind)
		})
	}
	// A directory in the way ({path...} lets a directory be anywhere).
	if _, err := tr.Create(ctx, "up/f", strings.NewReader("f"), CreateOptions{Size: -1}); err != nil {
		t.Fatal(err)
	}
	if err := tr.Mkdir(ctx, "up/g"); err != nil {
		t.Fatal(err)
	}
	_, err = tr.SetMeta(ctx, "up/f", map[string]string{"path": "g"}, nil)
	wantKind(t, "directory in the way", err, fs.Exist)
	if _, err := tr.SetMeta(ctx, "up/f", map[string]string{"path": "h/i"}, nil); err != nil {
		t.Fatal(err)
	}
	if got := names(t, tr, "up/h", 10); !slices.Equal(got, []string{"i"}) {
		t.Fatalf("up/h: %v", got)
	}
	// Nothing moved by the failures.
	if got := names(t, tr, "by-date/d2/obs", 10); !slices.Equal(got, []string{"a.txt", "b.txt"}) {
		t.Fatalf("d2 after failures: %v", got)
	}
}

func TestCheckCreate(t *testing.T) {
	e := newEnv(t, map[string]Def{"by-date": twoViews["by-date"], "by-type": twoViews["by-type"], "up": {Path: "{path...}"}})
	ctx := ctxT(t)
	tr := e.tree("alice", map[string]Rights{"by-date": All, "by-type": Read | Write, "up": All})
	if err := tr.Mkdir(ctx, "up/x"); err != nil {
		t.Fatal(err)
	}
	ro := e.tree("bob", map[string]Rights{"by-date": Read})
	if _, err := tr.Create(ctx, "by-date/d1/obs/a.txt", strings.NewReader("a"), CreateOptions{Size: -1}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"by-date/d1/obs/new.txt", "by-date/d1/obs/a.txt"} {
		if err := tr.CheckCreate(ctx, p); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	for _, c := range []struct {
		tr   *Tree
		p    string
		kind fs.Kind
	}{
		{tr, "by-date/d1/obs", fs.Invalid}, // the template wants a file deeper
		{tr, "up/x", fs.IsDir},
		{tr, "by-date/d1/obs/x/", fs.IsDir},
		{tr, "by-date", fs.IsDir},
		{tr, "/", fs.IsDir},
		{tr, "by-date/d1/too/deep/x", fs.Invalid},
		{tr, "by-type/model/d1/x", fs.Invalid}, // the filter refuses
		{tr, "nope/x", fs.NotExist},
		{ro, "d1/obs/b.txt", fs.Permission},
	} {
		err := c.tr.CheckCreate(ctx, c.p)
		wantKind(t, c.p, err, c.kind)
		// Create says the same.
		_, cerr := c.tr.Create(ctx, c.p, strings.NewReader("x"), CreateOptions{Size: -1})
		wantKind(t, c.p+" (create)", cerr, c.kind)
	}
}

// An index whose path values predate the ETag (v1), built before the
// format was kept, is rebuilt once at the next start.
func TestV1PathIndexRebuilt(t *testing.T) {
	e := newEnv(t, twoViews)
	tr := e.tree("u", map[string]Rights{"by-date": All, "by-type": All})
	var ids []fs.ID
	for i := range 5 {
		info, err := tr.Create(ctxT(t), fmt.Sprintf("by-date/d/obs/f%d", i), strings.NewReader("x"), CreateOptions{Size: 1})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, info.ID())
	}
	// Make it look like an index written before: v1 values, no format key.
	const pDerived = 0x05 // fs/index's prefix of derived keys
	err := e.st.Index().DB().Update(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pDerived, keyView}, PrefetchValues: true})
		defer it.Close()
		var keys, vals [][]byte
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			ent, err := decodeEntry(v)
			if err != nil {
				return err
			}
			v1 := []byte{valueV1, 0, byte(ent.state)}
			v1 = binary.AppendVarint(v1, ent.size)
			v1 = binary.AppendVarint(v1, ent.modTime.UnixNano())
			keys, vals = append(keys, it.Item().KeyCopy(nil)), append(vals, v1)
		}
		if len(keys) != 10 {
			return fmt.Errorf("%d path keys, want 10", len(keys))
		}
		for i := range keys {
			if err := txn.Set(keys[i], vals[i]); err != nil {
				return err
			}
		}
		return txn.Delete(append([]byte{defsPrefix}, formatKey...))
	})
	if err != nil {
		t.Fatal(err)
	}
	// Written past the index: Sync moves the readers' snapshot on.
	if err := e.st.Index().Sync(); err != nil {
		t.Fatal(err)
	}
	if si, err := tr.Stat(ctxT(t), "by-type/obs/d/f0"); err != nil || si.ETag() != "" {
		t.Fatalf("v1 value: etag %q %v", si.ETag(), err)
	}
	e.st.Close()
	set, err := NewSet(twoViews, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.set = set
	e.open(t)
	checkIndex(t, e, current(t, e, ids))
	tr = e.tree("u", map[string]Rights{"by-date": All, "by-type": All})
	if si, err := tr.Stat(ctxT(t), "by-type/obs/d/f0"); err != nil || si.ETag() == "" {
		t.Fatalf("after the rebuild: etag %q %v", si.ETag(), err)
	}
}

// TestObjectWaitsForBackgroundMD5: content above one buffer gets its MD5
// after the push (fs/store md5job.go); the record read right after the
// create carries it all the same (FUSE user.datagate.md5, WebDAV).
func TestObjectWaitsForBackgroundMD5(t *testing.T) {
	e := newEnv(t, twoViews)
	ctx := ctxT(t)
	tr := e.tree("alice", map[string]Rights{"by-date": All, "by-type": All})
	body := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB
	md := md5.Sum(body)
	if _, err := tr.Create(ctx, "by-date/d1/obs/big.bin", bytes.NewReader(body), CreateOptions{Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	o, err := tr.Object(ctx, "by-date/d1/obs/big.bin")
	if err != nil || !bytes.Equal(o.MD5, md[:]) {
		t.Fatalf("object right after create: md5 %x, want %x (err %v)", o.MD5, md, err)
	}
}

// Metadata changes may not grow an object past MaxMeta bytes of metadata
// (each key indexed, a header of every S3 HEAD, a property of every
// PROPFIND): setfattr or PROPPATCH in a loop grew one without bound.
// Removals and changes that do not grow it are always allowed.
func TestSetMetaIsBounded(t *testing.T) {
	e := newEnv(t, map[string]Def{"up": {Path: "{path...}"}})
	ctx := ctxT(t)
	tr := e.tree("alice", map[string]Rights{"up": All})
	if _, err := tr.Create(ctx, "a.txt", strings.NewReader("a"), CreateOptions{Size: -1}); err != nil {
		t.Fatal(err)
	}
	val := strings.Repeat("v", 1000)
	var err error
	n := 0
	for ; n < 100 && err == nil; n++ {
		_, err = tr.SetMeta(ctx, "a.txt", map[string]string{fmt.Sprintf("k%03d", n): val}, nil)
	}
	if fs.KindOf(err) != fs.NoSpace || n < 15 || n > 17 {
		t.Fatalf("after %d keys of 1,000 bytes: %v; want NoSpace near 16", n, err)
	}
	o, _ := tr.Object(ctx, "a.txt")
	if got := metaBytes(o.Meta); got > MaxMeta {
		t.Fatalf("the object holds %d bytes of metadata", got)
	}
	// A value the same size, and a removal, still go.
	if _, err := tr.SetMeta(ctx, "a.txt", map[string]string{"k000": strings.Repeat("w", 1000)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.SetMeta(ctx, "a.txt", nil, []string{"k001"}); err != nil {
		t.Fatal(err)
	}
}
