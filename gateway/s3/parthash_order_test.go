package s3

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"
)

// spoolPart writes part n (content b) as uploadPart does: to a temporary
// file, fed to the in-order hash when begin gives one, renamed into place.
func spoolPart(t *testing.T, o *orderHashes, u *orderHash, dir string, n int, b []byte) partFile {
	t.Helper()
	tmp, err := os.CreateTemp(dir, "tmp-")
	if err != nil {
		t.Fatal(err)
	}
	w := u.begin(n)
	tmp.Write(b)
	if w != nil {
		w.Write(b)
	}
	fi, err := tmp.Stat()
	if err != nil {
		t.Fatal(err)
	}
	tmp.Close()
	name := filepath.Join(dir, fmt.Sprintf("%05d-x", n))
	if err := os.Rename(tmp.Name(), name); err != nil {
		t.Fatal(err)
	}
	p := partFile{n: n, name: name, fi: fi, data: name, sz: fi.Size()}
	u.end(o, n, &p, w != nil)
	return p
}

func partContent(n, size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i*n + n>>3)
	}
	return b
}

// TestOrderHash: parts spooled in any order, some re-uploaded, some
// replaced behind the hash's back, some left out of the list: Complete's
// sum is the SHA-256 of the listed files, taken from the hashed sequence
// as far as it matches them.
func TestOrderHash(t *testing.T) {
	dir := t.TempDir()
	o := newOrderHashes()
	u := o.get("up")
	content := map[int][]byte{}
	files := map[int]partFile{}
	spool := func(n int, b []byte) {
		content[n] = b
		files[n] = spoolPart(t, o, u, dir, n, b)
	}
	spool(3, partContent(3, 70000)) // ahead of its turn: waits
	spool(2, partContent(2, 65536))
	spool(1, partContent(1, 100000)) // streamed; 2 and 3 then caught up from their files
	o.wait()
	spool(2, partContent(22, 65536)) // re-uploaded after it was hashed
	spool(4, partContent(4, 5))
	o.wait()
	u.mu.Lock()
	hashed := len(u.seq)
	u.mu.Unlock()
	if hashed != 4 {
		t.Fatalf("%d parts hashed in order, want 4", hashed)
	}
	want := func(ns ...int) ([]partFile, []byte) {
		h := sha256.New()
		var ps []partFile
		for _, n := range ns {
			h.Write(content[n])
			ps = append(ps, files[n])
		}
		return ps, h.Sum(nil)
	}
	check := func(what string, wantAhead, wantTail int64, ns ...int) {
		t.Helper()
		ps, sum := want(ns...)
		a0, c0 := o.ahead.Load(), o.atComplete.Load()
		if got := u.sum(o, ps); !bytes.Equal(got, sum) {
			t.Fatalf("%s: sum %x, want %x", what, got, sum)
		}
		if a, c := o.ahead.Load()-a0, o.atComplete.Load()-c0; a != wantAhead || c != wantTail {
			t.Fatalf("%s: %d bytes from the sequence, %d hashed at Complete; want %d and %d", what, a, c, wantAhead, wantTail)
		}
	}
	check("all parts", 100000+65536+70000+5, 0, 1, 2, 3, 4)
	check("part 3 left out", 100000+65536, 5, 1, 2, 4)
	// Part 3 replaced on disk without the hash being told: not trusted.
	b := partContent(33, 70000)
	os.WriteFile(filepath.Join(dir, "new"), b, 0o600)
	os.Rename(filepath.Join(dir, "new"), files[3].name)
	fi, _ := os.Stat(files[3].name)
	content[3], files[3] = b, partFile{n: 3, name: files[3].name, fi: fi, data: files[3].name, sz: fi.Size()}
	check("part 3 replaced", 100000+65536, 70000+5, 1, 2, 3, 4)
	// Without part 1 hashed there is nothing to start from: the store
	// hashes its copy.
	ps, _ := want(2, 3)
	if got := u.sum(o, ps); got != nil {
		t.Fatalf("sum without part 1: %x, want nil", got)
	}
	// Done: no more hashing.
	if w := u.begin(5); w != nil {
		t.Fatal("begin after sum fed the hash")
	}
}

// TestOrderHashConcurrent: many parts spooled at once, each re-uploaded
// once, hash with the race detector; the sum is that of the last files.
func TestOrderHashConcurrent(t *testing.T) {
	dir := t.TempDir()
	o := newOrderHashes()
	u := o.get("up")
	const parts = 24
	var mu sync.Mutex
	files := make([]partFile, parts)
	var wg sync.WaitGroup
	for n := 1; n <= parts; n++ {
		for round := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := filepath.Join(dir, fmt.Sprint(n, round))
				os.Mkdir(d, 0o700)
				p := spoolPart(t, o, u, d, n, partContent(n+round*100, 30000+n))
				mu.Lock()
				if files[n-1].fi == nil || round == 1 {
					files[n-1] = p
				}
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	o.wait()
	h := sha256.New()
	for _, p := range files {
		b, _ := os.ReadFile(p.name)
		h.Write(b)
	}
	if got := u.sum(o, files); got != nil && !bytes.Equal(got, h.Sum(nil)) {
		t.Fatalf("sum %x, want %x", got, h.Sum(nil))
	}
}

// TestMultipartSHA256InOrder: an upload of parts in parallel gets its
// SHA-256 from the in-order hash (nothing hashed by the store's
// read-back), a re-uploaded part included; the stored object carries the
// content's SHA-256 and reads back whole; completed and aborted uploads
// leave no state.
func TestMultipartSHA256InOrder(t *testing.T) {
	e := newTestEnv(t)
	ctx := ctxT(t)
	data := partContent(7, 4*MinPartSize+12345)
	info, err := e.alice.PutObject(ctx, "data", "ordered.bin", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{PartSize: MinPartSize, NumThreads: 4, ConcurrentStreamParts: true})
	if err != nil {
		t.Fatal(err)
	}
	if info.ETag != multipartETag(data, MinPartSize) {
		t.Fatalf("ETag %q", info.ETag)
	}
	order := e.srv.mp.order
	if a, c, f := order.ahead.Load(), order.atComplete.Load(), order.unhashed.Load(); a+c != int64(len(data)) || a == 0 || f != 0 {
		t.Fatalf("hashed %d bytes in order and %d at Complete of %d, %d left to the store", a, c, len(data), f)
	}
	checkStored := func(key string, want []byte) {
		t.Helper()
		st, err := e.srv.tree("alice").Stat(ctx, treePath("data", key))
		if err != nil {
			t.Fatal(err)
		}
		o, err := e.st.Index().Get(ctx, st.ID())
		if sum := sha256.Sum256(want); err != nil || !bytes.Equal(o.SHA256, sum[:]) {
			t.Fatalf("%s: stored SHA-256 %x, want %x (%v)", key, o.SHA256, sum, err)
		}
		if got := get(t, e.alice, "data", key, minio.GetObjectOptions{}); !bytes.Equal(got, want) {
			t.Fatalf("%s: read back %d bytes, differ", key, len(got))
		}
	}
	checkStored("ordered.bin", data)

	// Part 1 re-uploaded with other content after 2 was hashed on it.
	core := minio.Core{Client: e.alice}
	id, err := core.NewMultipartUpload(ctx, "data", "redone.bin", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	one, two := partContent(1, MinPartSize), partContent(2, 1000)
	var cps []minio.CompletePart
	for i, b := range [][]byte{one, two, partContent(9, MinPartSize)} {
		n := []int{1, 2, 1}[i]
		p, err := core.PutObjectPart(ctx, "data", "redone.bin", id, n, bytes.NewReader(b), int64(len(b)), minio.PutObjectPartOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			cps = append(cps, minio.CompletePart{PartNumber: n, ETag: p.ETag})
		}
	}
	cps[0], cps[1] = cps[1], cps[0]
	a0, c0 := order.ahead.Load(), order.atComplete.Load()
	if _, err := core.CompleteMultipartUpload(ctx, "data", "redone.bin", id, cps, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if a, c := order.ahead.Load()-a0, order.atComplete.Load()-c0; a+c != MinPartSize+1000 {
		t.Errorf("re-uploaded part: %d bytes from the sequence, %d at Complete", a, c)
	}
	checkStored("redone.bin", append(partContent(9, MinPartSize), two...))

	id2, err := core.NewMultipartUpload(ctx, "data", "dropped.bin", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := core.PutObjectPart(ctx, "data", "dropped.bin", id2, 1, bytes.NewReader(one), int64(len(one)), minio.PutObjectPartOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := core.AbortMultipartUpload(ctx, "data", "dropped.bin", id2); err != nil {
		t.Fatal(err)
	}
	order.wait()
	order.mu.Lock()
	left := len(order.ups)
	order.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d in-order hashes left after Complete and Abort", left)
	}
	ents, _ := os.ReadDir(e.srv.mp.dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 0 {
		t.Fatalf("upload directory holds %s", strings.Join(names, ", "))
	}
}
