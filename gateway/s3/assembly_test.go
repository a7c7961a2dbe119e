package s3

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/signer"
)

// upload is a multipart upload driven part by part.
type upload struct {
	t     *testing.T
	e     *testEnv
	core  minio.Core
	key   string
	id    string
	mu    sync.Mutex
	parts map[int][]byte
	etags map[int]string
}

func newUpload(t *testing.T, e *testEnv, key string) *upload {
	t.Helper()
	core := minio.Core{Client: e.alice}
	id, err := core.NewMultipartUpload(ctxT(t), "data", key, minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &upload{t: t, e: e, core: core, key: key, id: id, parts: map[int][]byte{}, etags: map[int]string{}}
}

func (u *upload) dir() string { return filepath.Join(u.e.srv.mp.dir, u.id) }

// put uploads part n (content b) and records it.
func (u *upload) put(n int, b []byte) {
	u.t.Helper()
	p, err := u.core.PutObjectPart(ctxT(u.t), "data", u.key, u.id, n, bytes.NewReader(b), int64(len(b)), minio.PutObjectPartOptions{})
	if err != nil {
		u.t.Fatalf("part %d: %v", n, err)
	}
	u.mu.Lock()
	u.parts[n], u.etags[n] = b, strings.Trim(p.ETag, `"`)
	u.mu.Unlock()
}

// raw sends part n with an unsigned payload: body, announcing size bytes.
func (u *upload) raw(n int, body io.Reader, size int64) error {
	url := fmt.Sprintf("%s/data/%s?partNumber=%d&uploadId=%s", u.e.url, u.key, n, u.id)
	req, err := http.NewRequestWithContext(ctxT(u.t), http.MethodPut, url, body)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	req = signer.SignV4(*req, aliceKey, aliceSecret, "", DefaultRegion)
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("part %d: status %d", n, resp.StatusCode)
	}
	return nil
}

// idle waits until no part of the upload is being written into its
// assembly (a request the client gave up may still be ending).
func (u *upload) idle() {
	u.t.Helper()
	a := u.e.srv.mp.asm.get(u.id, u.dir())
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		a.mu.Lock()
		n := len(a.writing)
		a.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			u.t.Fatal("parts still being written")
		}
	}
}

// assemblyIno is the inode of the upload's assembly file, 0 if none.
func (u *upload) assemblyIno() uint64 {
	m, _ := filepath.Glob(filepath.Join(u.dir(), assemblyPrefix+"*"))
	if len(m) != 1 {
		return 0
	}
	fi, err := os.Stat(m[0])
	if err != nil {
		return 0
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// complete completes parts ns, checks the stored object (content, SHA-256)
// and tells whether the store holds the assembly file itself: the stored
// file's path, else "".
func (u *upload) complete(ns ...int) (linked string) {
	u.t.Helper()
	ctx := ctxT(u.t)
	ino := u.assemblyIno()
	var cps []minio.CompletePart
	var want []byte
	for _, n := range ns {
		cps = append(cps, minio.CompletePart{PartNumber: n, ETag: u.etags[n]})
		want = append(want, u.parts[n]...)
	}
	if _, err := u.core.CompleteMultipartUpload(ctx, "data", u.key, u.id, cps, minio.PutObjectOptions{}); err != nil {
		u.t.Fatalf("complete %v: %v", ns, err)
	}
	st, err := u.e.srv.tree("alice").Stat(ctx, treePath("data", u.key))
	if err != nil {
		u.t.Fatal(err)
	}
	o, err := u.e.st.Index().Get(ctx, st.ID())
	if sum := sha256.Sum256(want); err != nil || !bytes.Equal(o.SHA256, sum[:]) || o.Size != int64(len(want)) {
		u.t.Fatalf("%s: stored SHA-256 %x size %d, want %x and %d (%v)", u.key, o.SHA256, o.Size, sum, len(want), err)
	}
	if got := get(u.t, u.e.alice, "data", u.key, minio.GetObjectOptions{}); !bytes.Equal(got, want) {
		u.t.Fatalf("%s: read back %d bytes, want %d, differ", u.key, len(got), len(want))
	}
	if _, err := os.Stat(u.dir()); !errors.Is(err, fs.ErrNotExist) {
		u.t.Fatalf("%s: upload directory left: %v", u.key, err)
	}
	if ino == 0 {
		return ""
	}
	filepath.WalkDir(filepath.Join(u.e.dir, "objects"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil && fi.Sys().(*syscall.Stat_t).Ino == ino {
				linked = p
				if fi.Size() != int64(len(want)) {
					u.t.Fatalf("%s: the linked file holds %d bytes, want %d", u.key, fi.Size(), len(want))
				}
			}
		}
		return nil
	})
	return linked
}

// Parts of one size land in the upload's assembly file, which the store
// then takes as the object by a hard link, the last part too, whether it
// arrived in the file (after the first) or in a file of its own (first,
// before the size was known).
func TestAssemblyLinked(t *testing.T) {
	e := newTestEnv(t)
	const S = MinPartSize

	u := newUpload(t, e, "linked.bin")
	u.put(2, partContent(2, S))
	u.put(3, partContent(3, 1000)) // the last, in its slot
	u.put(1, partContent(1, S))
	if u.complete(1, 2, 3) == "" {
		t.Fatal("parts in the assembly: copied, not linked")
	}

	u = newUpload(t, e, "last-first.bin")
	u.put(3, partContent(3, 1000)) // before any part fixed S
	var wg sync.WaitGroup
	for _, n := range []int{1, 2} {
		wg.Add(1)
		go func() { defer wg.Done(); u.put(n, partContent(n, S)) }() // in parallel
	}
	wg.Wait()
	if u.complete(1, 2, 3) == "" {
		t.Fatal("a last part of its own: copied, not linked")
	}

	u = newUpload(t, e, "single.bin")
	u.put(1, partContent(9, S+7))
	if u.complete(1) == "" {
		t.Fatal("a single part: copied, not linked")
	}

	// minio-go's own: 4 parts in parallel.
	data := partContent(5, 3*S+12345)
	if _, err := e.alice.PutObject(ctxT(t), "data", "minio.bin", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{PartSize: S, NumThreads: 4, ConcurrentStreamParts: true}); err != nil {
		t.Fatal(err)
	}
	if got := get(t, e.alice, "data", "minio.bin", minio.GetObjectOptions{}); !bytes.Equal(got, data) {
		t.Fatal("minio-go upload differs")
	}
	if n := e.srv.mp.linked.Load(); n != 4 {
		t.Fatalf("%d Completes handed the store their assembly, want 4", n)
	}
}

// A part sent again goes to a file of its own (an interrupted one leaves
// the first upload's bytes intact), which Complete copies into its slot.
// What the assembly cannot hold whole is copied from where each part is
// into a new file, right: parts larger than the first, a part left out,
// parts with a gap.
func TestAssemblyFallbacks(t *testing.T) {
	e := newTestEnv(t)
	const S = MinPartSize

	// Re-uploaded, once whole and once interrupted half-way.
	u := newUpload(t, e, "redone.bin")
	u.put(1, partContent(1, S))
	u.put(2, partContent(2, S))
	u.put(3, partContent(3, 10))
	u.put(2, partContent(22, S))
	if err := u.raw(1, io.MultiReader(bytes.NewReader(partContent(11, S/2)), failingReader{}), S); err == nil {
		t.Fatal("an interrupted part was taken")
	}
	u.idle()
	if u.complete(1, 2, 3) == "" {
		t.Fatal("a re-uploaded part copied into its slot: not linked")
	}

	// A first upload interrupted in the assembly, then sent again: the
	// same slot.
	u = newUpload(t, e, "retried.bin")
	u.put(1, partContent(1, S))
	if err := u.raw(2, io.MultiReader(bytes.NewReader(partContent(7, S-100)), failingReader{}), S); err == nil {
		t.Fatal("an interrupted part was taken")
	}
	u.idle()
	u.put(2, partContent(2, S))
	if u.complete(1, 2) == "" {
		t.Fatal("a part retried after an interruption was not linked")
	}

	// The last part first, large enough to fix S: the others are larger.
	u = newUpload(t, e, "sizes.bin")
	u.put(3, partContent(3, S))
	u.put(1, partContent(1, S+1))
	u.put(2, partContent(2, S+1))
	if u.complete(1, 2, 3) != "" {
		t.Fatal("parts of another size were linked")
	}

	// A part left out of the list lies past the object: not truncated
	// away, the parts listed are copied.
	u = newUpload(t, e, "left-out.bin")
	u.put(1, partContent(1, S))
	u.put(2, partContent(2, S))
	u.put(3, partContent(3, S))
	if u.complete(1, 2) != "" {
		t.Fatal("an assembly holding a part left out was linked")
	}

	// A short part in its slot is still too small when not the last.
	u = newUpload(t, e, "small.bin")
	u.put(1, partContent(1, S))
	u.put(2, partContent(2, 1000))
	u.put(3, partContent(3, S))
	cps := []minio.CompletePart{{PartNumber: 1, ETag: u.etags[1]}, {PartNumber: 2, ETag: u.etags[2]}, {PartNumber: 3, ETag: u.etags[3]}}
	if _, err := u.core.CompleteMultipartUpload(ctxT(t), "data", u.key, u.id, cps, minio.PutObjectOptions{}); s3Code(err) != "EntityTooSmall" {
		t.Fatalf("a 1000-byte part 2 of 3: %v", err)
	}
	if u.complete(1, 2) != "" {
		t.Fatal("linked with part 3 left out in the assembly")
	}

	// Parts left out before the end: parts 1 and 3.
	u = newUpload(t, e, "gap.bin")
	u.put(1, partContent(1, S))
	u.put(2, partContent(2, S))
	u.put(3, partContent(3, 99))
	if u.complete(1, 3) != "" {
		t.Fatal("parts with a gap were linked")
	}
	// The rest were copied into one file the store could link, the
	// in-order SHA-256 covering them.
	if l, j := e.srv.mp.linked.Load(), e.srv.mp.joined.Load(); l != 2 || j != 4 {
		t.Fatalf("%d assemblies and %d joined files handed to the store, want 2 and 4", l, j)
	}
}

// failingReader fails, as a client that gives up.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("client gave up") }

// blockedReader gives the bytes of first, waits for release, and gives
// those of then.
type blockedReader struct {
	first, then io.Reader
	release     chan struct{}
}

func (b *blockedReader) Read(p []byte) (int, error) {
	n, err := b.first.Read(p)
	if err == io.EOF {
		<-b.release
		return b.then.Read(p)
	}
	return n, err
}

// A part being written into the assembly while Complete takes it (a part
// past the object) writes no more once it resumes: the stored file is the
// object, not one byte longer, and that part fails.
func TestAssemblySealedByComplete(t *testing.T) {
	e := newTestEnv(t)
	const S = MinPartSize
	u := newUpload(t, e, "sealed.bin")
	u.put(1, partContent(1, S))
	u.put(2, partContent(2, 5000))
	four := partContent(4, S)
	br := &blockedReader{first: bytes.NewReader(four[:S/2]), then: bytes.NewReader(four[S/2:]), release: make(chan struct{})}
	failed := make(chan error, 1)
	go func() { failed <- u.raw(4, br, S) }()
	asm := filepath.Join(u.dir(), assemblyName(S))
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if fi, err := os.Stat(asm); err == nil && fi.Size() >= 3*S+S/2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("part 4 not written")
		}
	}
	stored := u.complete(1, 2)
	if stored == "" {
		t.Fatal("not linked")
	}
	close(br.release)
	if err := <-failed; err == nil {
		t.Fatal("a part written into a completed upload was taken")
	}
	if fi, err := os.Stat(stored); err != nil || fi.Size() != S+5000 {
		t.Fatalf("the stored file after part 4 went on: %v, %v", fi.Size(), err)
	}
}

// An upload aborted while a part is being written into its assembly
// leaves nothing: the part fails, the directory is gone.
func TestAssemblyAbortedWhileWriting(t *testing.T) {
	e := newTestEnv(t)
	const S = MinPartSize
	u := newUpload(t, e, "aborted.bin")
	u.put(1, partContent(1, S))
	two := partContent(2, S)
	br := &blockedReader{first: bytes.NewReader(two[:S/2]), then: bytes.NewReader(two[S/2:]), release: make(chan struct{})}
	failed := make(chan error, 1)
	go func() { failed <- u.raw(2, br, S) }()
	asm := filepath.Join(u.dir(), assemblyName(S))
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if fi, err := os.Stat(asm); err == nil && fi.Size() >= S+S/2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("part 2 not written")
		}
	}
	if err := u.core.AbortMultipartUpload(ctxT(t), "data", u.key, u.id); err != nil {
		t.Fatal(err)
	}
	close(br.release)
	if err := <-failed; err == nil {
		t.Fatal("a part of an aborted upload was taken")
	}
	ents, err := os.ReadDir(e.srv.mp.dir)
	if err != nil || len(ents) != 0 {
		t.Fatalf("left in the upload directory: %v %v", ents, err)
	}
}

// Parts survive a restart: a new server lists them, takes a part sent
// again alone, and completes the upload from the assembly (copied: the
// in-order hash is gone with the old process, so the store hashes its
// copy).
func TestAssemblyAfterRestart(t *testing.T) {
	e := newTestEnv(t)
	const S = MinPartSize
	u := newUpload(t, e, "restart.bin")
	u.put(1, partContent(1, S))
	u.put(2, partContent(2, 333))
	srv, host := serve(t, e.srv.opts)
	e2 := *e
	e2.srv, e2.url, e2.host = srv, "http://"+host, host
	e2.alice = e2.client(t, aliceKey, aliceSecret)
	u.e, u.core = &e2, minio.Core{Client: e2.alice}
	lp, err := u.core.ListObjectParts(ctxT(t), "data", u.key, u.id, 0, 10)
	if err != nil || len(lp.ObjectParts) != 2 || lp.ObjectParts[0].Size != S || lp.ObjectParts[1].Size != 333 {
		t.Fatalf("parts after a restart: %v %+v", err, lp)
	}
	// Part 2 has data: sent again, it goes to a file of its own.
	u.put(2, partContent(22, 334))
	if _, err := os.Stat(filepath.Join(u.dir(), partName(2, u.etags[2], -1))); err != nil {
		t.Fatalf("part 2 sent again after a restart: %v", err)
	}
	if u.complete(1, 2) != "" {
		t.Fatal("linked without the in-order hash")
	}
	if srv.mp.linked.Load() != 1 {
		t.Fatal("the assembly was not handed to the store")
	}
}

// Complete copies a part's own file into its slot only when no record
// names the slot: an earlier upload's record still there (listed again
// if Complete failed) keeps its bytes.
func TestTakeAssemblyKeepsRecordedSlots(t *testing.T) {
	dir := t.TempDir()
	const S = MinPartSize
	asm := filepath.Join(dir, assemblyName(S))
	if err := os.WriteFile(asm, partContent(1, S+10), 0o600); err != nil {
		t.Fatal(err)
	}
	record := filepath.Join(dir, partName(2, strings.Repeat("a", 32), 10))
	own := filepath.Join(dir, partName(2, strings.Repeat("b", 32), -1))
	os.WriteFile(record, nil, 0o600)
	os.WriteFile(own, partContent(2, 10), 0o600)
	rec1 := filepath.Join(dir, partName(1, strings.Repeat("c", 32), S))
	os.WriteFile(rec1, nil, 0o600)
	fi1, _ := os.Stat(rec1)
	fi2, _ := os.Stat(own)
	parts := []partFile{
		{n: 1, name: rec1, fi: fi1, data: asm, sz: S},
		{n: 2, name: own, fi: fi2, data: own, sz: 10},
	}
	p, ok := assembled(parts)
	if !ok || p != asm {
		t.Fatalf("assembled: %q %v", p, ok)
	}
	u := &assembly{writing: map[int]bool{}, held: map[int]bool{}}
	if f, err := takeAssembly(u, dir, asm, parts, S+10); f != nil || err != nil {
		t.Fatalf("taken with part 2's slot recorded: %v", err)
	}
	os.Remove(record)
	f, err := takeAssembly(u, dir, asm, parts, S+10)
	if f == nil || err != nil {
		t.Fatalf("not taken: %v", err)
	}
	f.Close()
	got, _ := os.ReadFile(asm)
	if want := append(partContent(1, S+10)[:S], partContent(2, 10)...); !bytes.Equal(got, want) {
		t.Fatal("part 2 not copied into its slot")
	}
}

// partsReader reads parts from their files and from ranges of the
// assembly, in order (the copy when nothing else applies, e.g. after a
// restart, without the in-order hash, for parts that do not fit).
func TestPartsReaderSections(t *testing.T) {
	dir := t.TempDir()
	asm := filepath.Join(dir, "asm")
	own := filepath.Join(dir, "own")
	os.WriteFile(asm, append(partContent(1, 3000), partContent(3, 500)...), 0o600)
	os.WriteFile(own, partContent(2, 7000), 0o600)
	parts := []partFile{
		{n: 1, name: "r1", data: asm, sz: 3000},
		{n: 2, name: own, data: own, sz: 7000},
		{n: 3, name: "r3", data: asm, off: 3000, sz: 500},
		{n: 4, name: "r4", data: asm, off: 100, sz: 0},
	}
	got, err := io.ReadAll(&partsReader{ctx: ctxT(t), parts: parts})
	want := append(append(partContent(1, 3000), partContent(2, 7000)...), partContent(3, 500)...)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want %d: %v", len(got), len(want), err)
	}
	parts[2].sz = 501 // past the file's end
	if _, err := io.ReadAll(&partsReader{ctx: ctxT(t), parts: parts}); err == nil {
		t.Fatal("a short range read without error")
	}
}

// The cleaner forgets the assembly state of an upload that is gone, and
// seals it: a part still writing stops. One being completed is not gone.
func TestAssemblyPruneSeals(t *testing.T) {
	e := newTestEnv(t)
	const S = MinPartSize
	u := newUpload(t, e, "pruned.bin")
	a := e.srv.mp.asm.get(u.id, u.dir())
	p := a.claim(u.dir(), 1, S)
	if p == nil {
		t.Fatal("no claim")
	}
	defer p.finish("")
	if _, err := p.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	busy := u.dir() + ".completing"
	if err := os.Rename(u.dir(), busy); err != nil {
		t.Fatal(err)
	}
	e.srv.mp.clean(time.Now())
	if _, err := p.Write(make([]byte, 1000)); err != nil {
		t.Fatalf("the state of an upload being completed was pruned: %v", err)
	}
	os.RemoveAll(busy)
	e.srv.mp.clean(time.Now())
	if _, err := p.Write(make([]byte, 1000)); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("write after the upload went: %v", err)
	}
}
