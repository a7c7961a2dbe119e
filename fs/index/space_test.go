package index

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/datagate/datagate/fs"
)

// On a file system that fills up, Badger's writes through its memory maps
// killed the process with SIGBUS (a large `register`). Writes that add
// to the catalogue are refused with NoSpace while less than MinFree is
// free; reads, deletes, Close and a reopen work.
func TestFullFileSystemRefusesWrites(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root (CI runs as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ix, err := Open(Options{Dir: dir, MinFree: 40 << 20, BlockCacheSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var ids []fs.ID
	refused := false
	for b := 0; b < 2000 && !refused; b++ {
		batch := make([]*fs.Object, 1000)
		for i := range batch {
			batch[i] = newObj(fmt.Sprintf("object-with-a-long-name-%d-%d.grib", b, i),
				map[string]string{"date": fmt.Sprint(b), "n": fmt.Sprint(i), "pad": fmt.Sprintf("%0200d", i)})
			batch[i].Source = fs.Location{Provider: "p", Path: fmt.Sprintf("d/%d/%d", b, i)}
		}
		_, err := ix.Register(ctx, batch)
		switch {
		case err == nil:
			ids = append(ids, batch[0].ID)
		case fs.KindOf(err) == fs.NoSpace:
			refused = true
			t.Logf("after %d batches: %v", b, err)
		default:
			t.Fatalf("batch %d: %v", b, err)
		}
	}
	if !refused || len(ids) == 0 {
		t.Fatalf("%d batches registered, refused: %v", len(ids), refused)
	}
	if err := ix.Insert(ctx, newObj("more", nil)); fs.KindOf(err) != fs.NoSpace {
		t.Fatalf("insert on a full file system: %v", err)
	}
	if _, err := ix.Get(ctx, ids[0]); err != nil {
		t.Fatalf("get on a full file system: %v", err)
	}
	if _, err := ix.Delete(ctx, ids[0]); err != nil {
		t.Fatalf("delete on a full file system: %v", err)
	}
	if err := ix.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	ix, err = Open(Options{Dir: dir, MinFree: -1, BlockCacheSize: 8 << 20})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer ix.Close()
	if _, err := ix.Get(ctx, ids[len(ids)-1]); err != nil {
		t.Fatalf("the last batch registered before the refusal: %v", err)
	}
}
