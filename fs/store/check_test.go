package store

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/datagate/datagate/fs"
)

// collect runs a check and returns its findings by where they are.
func collectDamage(t *testing.T, run func(report func(Damage)) (CheckReport, error)) (CheckReport, map[string][]Damage) {
	t.Helper()
	found := map[string][]Damage{}
	rep, err := run(func(d Damage) {
		t.Log(d)
		found[d.Where] = append(found[d.Where], d)
	})
	if err != nil {
		t.Fatal(err)
	}
	return rep, found
}

func TestFsck(t *testing.T) {
	e := newEnvWith(t, nil)
	ctx := ctxT(t)
	a, err := e.st.Put(ctx, PutRequest{Name: "a", Meta: map[string]string{"type": "obs"}, Size: -1}, bytes.NewReader(pattern(3000)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.st.Put(ctx, PutRequest{Name: "b", Meta: map[string]string{"type": "obs"}, Size: -1}, bytes.NewReader(pattern(4000)))
	if err != nil {
		t.Fatal(err)
	}
	e.write(t, "r", pattern(100<<10))
	r := &fs.Object{Size: -1, Meta: map[string]string{"type": "fc"}, Expires: time.Now().Add(time.Hour), Source: fs.Location{Provider: "disk", Path: "r"}}
	gone := &fs.Object{Size: -1, Source: fs.Location{Provider: "disk", Path: "r", Length: 10}}
	register(t, e.st, r, gone)
	if _, err := readObject(t, e.st, gone.ID); err != nil {
		t.Fatal(err)
	}

	rep, _ := collectDamage(t, func(f func(Damage)) (CheckReport, error) { return e.st.Fsck(ctx, CheckOptions{}, f) })
	if rep.Damaged != 0 || rep.Objects != 4 {
		t.Fatalf("fsck of a sound store: %+v", rep)
	}

	// Plant damage of every kind.
	objects := filepath.Join(e.dir, "objects")
	orphanID := e.st.ids.New(time.Now())
	orphan := filepath.Join(objects, filepath.FromSlash(primaryPath(orphanID)))
	os.MkdirAll(filepath.Dir(orphan), 0o755)
	os.WriteFile(orphan, []byte("left by a crash"), 0o644)
	os.WriteFile(filepath.Join(objects, "junk"), []byte("x"), 0o644)
	bPath, _ := e.st.primaryFS.LocalPath(primaryPath(b.ID))
	os.Remove(bPath) // a stored object loses its content
	ghost := e.st.ids.New(time.Now())
	dangling := append([]byte("\x02type\x00obs\x00"), ghost[:]...)
	lost := append([]byte("\x02type\x00fc\x00"), r.ID[:]...) // r loses its posting
	err = e.st.Index().DB().Update(func(txn *badger.Txn) error {
		if err := txn.Set(dangling, nil); err != nil {
			return err
		}
		return txn.Delete(lost)
	})
	if err != nil {
		t.Fatal(err)
	}
	// A cache entry whose object left the catalogue behind the store's back.
	if _, err := e.st.Index().Delete(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	info, ok := e.st.Cache().Lookup(gone.ContentKey())
	if !ok {
		t.Fatal("test setup: no cache entry")
	}
	// Fsck lists the cache from disk; the sidecar is written in the background.
	waitFor(t, func() bool { return exists(t, strings.TrimSuffix(info.Path, ".data")+".state") })

	rep, found := collectDamage(t, func(f func(Damage)) (CheckReport, error) { return e.st.Fsck(ctx, CheckOptions{}, f) })
	if len(found["objects"]) != 2 || len(found["store"]) != 1 || len(found["index"]) != 2 || len(found["cache"]) != 1 {
		t.Fatalf("fsck found %+v", found)
	}
	if rep.Unrepaired != rep.Damaged || rep.Damaged != 6 {
		t.Fatalf("report without repair: %+v", rep)
	}
	if found["store"][0].ID != b.ID || found["cache"][0].ID != gone.ID {
		t.Fatalf("wrong objects blamed: %+v", found)
	}
	for _, d := range found["index"] {
		if !strings.Contains(d.Problem, "dangling") && !strings.Contains(d.Problem, "missing") {
			t.Errorf("index problem %q", d.Problem)
		}
	}

	rep, _ = collectDamage(t, func(f func(Damage)) (CheckReport, error) {
		return e.st.Fsck(ctx, CheckOptions{Repair: true}, f)
	})
	if rep.Damaged != 6 || rep.Unrepaired != 1 {
		t.Fatalf("repair: %+v, want only the missing stored file left", rep)
	}
	if exists(t, orphan) || exists(t, filepath.Join(objects, "junk")) {
		t.Error("orphans not removed")
	}
	if _, ok := e.st.Cache().Lookup(gone.ContentKey()); ok {
		t.Error("cache entry of an unknown object not removed")
	}
	if ids := findIDs(t, e.st, "type", "fc"); len(ids) != 1 || ids[0] != r.ID {
		t.Errorf("missing posting not restored: %v", ids)
	}
	if ids := findIDs(t, e.st, "type", "obs"); len(ids) != 2 {
		t.Errorf("dangling posting still found: %v", ids)
	}
	rep, found = collectDamage(t, func(f func(Damage)) (CheckReport, error) { return e.st.Fsck(ctx, CheckOptions{}, f) })
	if rep.Damaged != 1 || len(found["store"]) != 1 {
		t.Fatalf("after repair: %+v", found)
	}
	if b, err := readObject(t, e.st, a.ID); err != nil || len(b) != 3000 {
		t.Fatalf("sound object after repair: %v", err)
	}
}

func flipByte(t *testing.T, p string, off int64) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	e := newEnvWith(t, nil)
	ctx := ctxT(t)
	storedData := pattern(300 << 10)
	s, err := e.st.Put(ctx, PutRequest{Name: "s", Size: -1}, bytes.NewReader(storedData))
	if err != nil {
		t.Fatal(err)
	}
	good, err := e.st.Put(ctx, PutRequest{Name: "good", Size: -1}, bytes.NewReader(pattern(1000)))
	if err != nil {
		t.Fatal(err)
	}
	data := pattern(200 << 10)
	e.write(t, "c", data)
	c := &fs.Object{Size: -1, SHA256: sha(data), Source: fs.Location{Provider: "disk", Path: "c"}}
	register(t, e.st, c)
	if _, err := readObject(t, e.st, c.ID); err != nil {
		t.Fatal(err)
	}
	rep, _ := collectDamage(t, func(f func(Damage)) (CheckReport, error) { return e.st.Verify(ctx, CheckOptions{}, f) })
	if rep.Damaged != 0 || rep.Objects != 3 || rep.Bytes != int64(len(storedData)+1000+len(data)) {
		t.Fatalf("verify of sound content: %+v", rep)
	}

	o, _ := e.st.Get(ctx, c.ID)
	info, ok := e.st.Cache().Lookup(o.ContentKey())
	if !ok || !info.Complete {
		t.Fatalf("not cached: %+v", info)
	}
	flipByte(t, info.Path, 12345)
	sPath, _ := e.st.primaryFS.LocalPath(primaryPath(s.ID))
	flipByte(t, sPath, 100)

	rep, found := collectDamage(t, func(f func(Damage)) (CheckReport, error) { return e.st.Verify(ctx, CheckOptions{}, f) })
	if rep.Damaged != 2 || rep.Unrepaired != 2 || len(found["cache"]) != 1 || len(found["store"]) != 1 {
		t.Fatalf("verify of damaged content: %+v %+v", rep, found)
	}
	if found["cache"][0].ID != c.ID || found["store"][0].ID != s.ID {
		t.Fatalf("wrong objects blamed: %+v", found)
	}

	rep, _ = collectDamage(t, func(f func(Damage)) (CheckReport, error) {
		return e.st.Verify(ctx, CheckOptions{Repair: true}, f)
	})
	if rep.Damaged != 2 || rep.Unrepaired != 1 {
		t.Fatalf("repair: %+v", rep)
	}
	if o, _ := e.st.Get(ctx, c.ID); o.State != fs.StateRegistered {
		t.Errorf("state after dropping the bad copy: %v", o.State)
	}
	// The cache copy is fetched again, good this time.
	if b, err := readObject(t, e.st, c.ID); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("read after repair: %v", err)
	}
	rep, found = collectDamage(t, func(f func(Damage)) (CheckReport, error) { return e.st.Verify(ctx, CheckOptions{}, f) })
	if rep.Damaged != 1 || len(found["store"]) != 1 {
		t.Fatalf("after repair: %+v", found)
	}
	if b, err := readObject(t, e.st, good.ID); err != nil || len(b) != 1000 {
		t.Fatalf("sound object: %v", err)
	}
}
