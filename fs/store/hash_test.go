package store

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"io"
	"path/filepath"
	"runtime"
	"testing"
	"testing/iotest"
	"time"

	"github.com/datagate/datagate/fs"
)

// Content of several pipeline buffers, not a multiple of one, through
// every way a source may hand it out.
func TestPutPipelineHashesWhatItStores(t *testing.T) {
	e := newEnv(t)
	data := pattern(5*pipeBufSize + 12345)
	ms, ss := md5.Sum(data), sha256.Sum256(data)
	sources := map[string]func() io.Reader{
		"whole":       func() io.Reader { return bytes.NewReader(data) },
		"byte a read": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data[:3*pipeBufSize/2])) },
		"data+EOF":    func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) },
		"half reads":  func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
	}
	for name, src := range sources {
		for _, known := range []bool{true, false} {
			want, wantMD5, wantSHA := data, ms[:], ss[:]
			if name == "byte a read" {
				want = data[:3*pipeBufSize/2]
				m, s := md5.Sum(want), sha256.Sum256(want)
				wantMD5, wantSHA = m[:], s[:]
			}
			size := int64(-1)
			if known {
				size = int64(len(want))
			}
			o, err := e.st.Put(ctxT(t), PutRequest{Name: "p", Size: size}, src())
			if err != nil {
				t.Fatalf("%s, size %d: %v", name, size, err)
			}
			if o.Size != int64(len(want)) || !bytes.Equal(o.MD5, wantMD5) || !bytes.Equal(o.SHA256, wantSHA) {
				t.Fatalf("%s, size %d: record %d bytes md5 %x sha %x", name, size, o.Size, o.MD5, o.SHA256)
			}
			got, err := readObject(t, e.st, o.ID)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: read back %d bytes, %v", name, len(got), err)
			}
		}
	}
}

// Failures after the pipeline started leave nothing behind and no
// goroutine running.
func TestPutPipelineFailuresLeaveNothing(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	data := pattern(4*pipeBufSize + 7)
	midway, cancelMidway := context.WithCancel(ctx)
	defer cancelMidway()
	blocked, cancelBlocked := context.WithCancel(ctx)
	defer cancelBlocked()
	sha := sha256.Sum256([]byte("other"))
	before := runtime.NumGoroutine()
	cases := []struct {
		name string
		ctx  context.Context
		req  PutRequest
		r    io.Reader
		kind fs.Kind
	}{
		{"reader error after 2 buffers", ctx, PutRequest{Name: "x", Size: -1},
			io.MultiReader(bytes.NewReader(data[:2*pipeBufSize+5]), iotest.ErrReader(errors.New("client went away"))), anyKind},
		{"longer than announced", ctx, PutRequest{Name: "x", Size: int64(len(data)) - 3}, bytes.NewReader(data), fs.Invalid},
		{"shorter than announced", ctx, PutRequest{Name: "x", Size: int64(len(data)) + 1}, bytes.NewReader(data), fs.Invalid},
		{"sha256 mismatch", ctx, PutRequest{Name: "x", Size: -1, SHA256: sha[:]}, bytes.NewReader(data), fs.Invalid},
		{"cancelled mid-put", midway, PutRequest{Name: "x", Size: int64(len(data))},
			&cancelAfter{r: bytes.NewReader(data), n: 2 * pipeBufSize, cancel: cancelMidway}, fs.Invalid},
		{"cancelled while the source blocks", blocked, PutRequest{Name: "x", Size: -1},
			&blockAfter{r: bytes.NewReader(data), n: 3 * pipeBufSize, ctx: blocked, cancel: cancelBlocked}, fs.Invalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.st.Put(c.ctx, c.req, c.r)
			if err == nil {
				t.Fatal("put succeeded")
			}
			if c.kind != anyKind && fs.KindOf(err) != c.kind {
				t.Errorf("error kind %q, want %q: %v", fs.KindOf(err), c.kind, err)
			}
			if n := countFiles(t, filepath.Join(e.dir, "objects")); n != 0 {
				t.Fatalf("%d files left in the store", n)
			}
		})
	}
	// Goroutines end before Put returns; allow the runtime a moment for
	// its own.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

const anyKind fs.Kind = 255

// blockAfter gives n bytes, then blocks until ctx is done, as a stalled
// client does; it cancels ctx itself once the first n bytes are out.
type blockAfter struct {
	r      io.Reader
	n      int
	ctx    context.Context
	cancel func()
}

func (b *blockAfter) Read(p []byte) (int, error) {
	if b.n <= 0 {
		go func() { time.Sleep(20 * time.Millisecond); b.cancel() }()
		<-b.ctx.Done()
		return 0, errors.New("connection closed")
	}
	if len(p) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= n
	return n, err
}

// A store may stop reading once it has the size announced: the sums must
// then still cover exactly what it took, and a longer source is refused.
func TestHashPipeEnd(t *testing.T) {
	data := pattern(3*pipeBufSize + 1)
	for _, extra := range []int{0, 1} {
		src := bytes.NewReader(append(data, make([]byte, extra)...))
		p := newHashPipe(context.Background(), src, int64(len(data)))
		got, err := io.ReadAll(io.LimitReader(p, int64(len(data))))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %d bytes, %v", len(got), err)
		}
		err = p.end()
		p.finish()
		if extra == 1 {
			if !errors.Is(err, errLonger) {
				t.Fatalf("a longer source ends with %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		m, s := p.sums()
		wm, ws := md5.Sum(data), sha256.Sum256(data)
		if !bytes.Equal(m, wm[:]) || !bytes.Equal(s, ws[:]) {
			t.Fatal("sums differ")
		}
	}
}
