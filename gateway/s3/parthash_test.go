package s3

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/signer"
)

// Parts of odd sizes uploaded all at once, so most are hashed on the
// SIMD lanes, each written in uneven pieces: every part's ETag is its
// crypto/md5.
func TestPartETagsParallel(t *testing.T) {
	e := newTestEnv(t)
	ctx := ctxT(t)
	core := minio.Core{Client: e.alice}
	id, err := core.NewMultipartUpload(ctx, "data", "odd.bin", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int{1, 55, 63, 64, 65, 127, 4095, 32767, 32768, 32769, 65537, 100003, 777777, 1<<20 + 7, 2<<20 - 1, 3<<20 + 13}
	rng := rand.New(rand.NewPCG(7, 7))
	type part struct {
		data []byte
		w    *io.PipeWriter
		etag string
		err  error
	}
	parts := make([]*part, len(sizes))
	var wg sync.WaitGroup
	for i, n := range sizes {
		p := &part{data: make([]byte, n)}
		for j := range p.data {
			p.data[j] = byte(rng.Uint32())
		}
		parts[i] = p
		r, w := io.Pipe()
		p.w = w
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, fmt.Sprintf("%s/data/odd.bin?partNumber=%d&uploadId=%s", e.url, i+1, id), r)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = int64(n)
		req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		req = signer.SignV4(*req, aliceKey, aliceSecret, "", DefaultRegion)
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				p.err = err
				r.CloseWithError(err)
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				msg, _ := io.ReadAll(resp.Body)
				p.err = fmt.Errorf("%s: %s", resp.Status, msg)
			}
			p.etag = strings.Trim(resp.Header.Get("ETag"), `"`)
		}()
	}
	// Every part has its hash before any byte is sent.
	var lanes int
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		e.srv.md5.mu.Lock()
		n := e.srv.md5.parts
		lanes = e.srv.md5.lanes
		e.srv.md5.mu.Unlock()
		if n == len(sizes) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d part uploads started", n, len(sizes))
		}
	}
	if lanes != len(sizes)-simdMinParts+1 {
		t.Errorf("%d parts on the SIMD lanes, want %d", lanes, len(sizes)-simdMinParts+1)
	}
	for _, p := range parts {
		go func() {
			d := p.data
			for k := 1; len(d) > 0; k = k*3 + 1 {
				n := min(len(d), k)
				if _, err := p.w.Write(d[:n]); err != nil {
					return
				}
				d = d[n:]
			}
			p.w.Close()
		}()
	}
	wg.Wait()
	want := map[int]string{}
	for i, p := range parts {
		sum := md5.Sum(p.data)
		want[i+1] = hex.EncodeToString(sum[:])
		if p.err != nil {
			t.Errorf("part %d (%d bytes): %v", i+1, len(p.data), p.err)
		} else if p.etag != want[i+1] {
			t.Errorf("part %d (%d bytes): ETag %s, want %s", i+1, len(p.data), p.etag, want[i+1])
		}
	}
	lp, err := core.ListObjectParts(ctx, "data", "odd.bin", id, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(lp.ObjectParts) != len(sizes) {
		t.Fatalf("ListParts: %d parts, want %d", len(lp.ObjectParts), len(sizes))
	}
	for _, op := range lp.ObjectParts {
		if got := strings.Trim(op.ETag, `"`); got != want[op.PartNumber] || op.Size != int64(sizes[op.PartNumber-1]) {
			t.Errorf("ListParts part %d: %s %d bytes, want %s %d", op.PartNumber, got, op.Size, want[op.PartNumber], sizes[op.PartNumber-1])
		}
	}
	e.srv.md5.mu.Lock()
	defer e.srv.md5.mu.Unlock()
	if e.srv.md5.parts != 0 || e.srv.md5.lanes != 0 {
		t.Errorf("after the uploads: %d parts, %d on lanes still counted", e.srv.md5.parts, e.srv.md5.lanes)
	}
}

// Closing while streams hash lets them finish; hashes asked for after
// are crypto/md5's.
func TestPartHashesClose(t *testing.T) {
	p := newPartHashes()
	data := []byte(strings.Repeat("datagate", 10000))
	want := md5.Sum(data)
	type held struct {
		h       interface{ Write([]byte) (int, error) }
		sum     func([]byte) []byte
		release func()
	}
	var hs []held
	for range 5 {
		h, rel := p.get()
		hs = append(hs, held{h, h.Sum, rel})
	}
	p.close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, h := range hs {
			h.h.Write(data)
			if got := h.sum(nil); string(got) != string(want[:]) {
				t.Errorf("sum %x, want %x", got, want)
			}
			h.release()
		}
		h, rel := p.get()
		h.Write(data)
		if got := h.Sum(nil); string(got) != string(want[:]) {
			t.Errorf("after close: sum %x, want %x", got, want)
		}
		rel()
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("hashing after close hangs")
	}
	if p.srv != nil {
		t.Error("the md5-simd server is still open")
	}
}
