package sftp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	mrand "math/rand/v2"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

func TestFsyncMakesWritesVisibleBeforeClose(t *testing.T) {
	e := newTestEnv(t, nil)
	c, _ := e.client(t)
	reader, _ := e.client(t)
	if v, ok := c.HasExtension("fsync@openssh.com"); !ok || v != "1" {
		t.Fatalf("fsync@openssh.com not offered: %q %v", v, ok)
	}
	if _, ok := c.HasExtension("hardlink@openssh.com"); ok {
		t.Fatal("hardlink@openssh.com offered, though links are unsupported")
	}
	p := "/by-date/2026-03-03/obs/synced.bin"
	a, b, d := randBytes(t, 100<<10), randBytes(t, 70<<10), []byte("tail")
	f, err := c.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(a); err != nil {
		t.Fatal(err)
	}
	if _, err := reader.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("visible before fsync: %v", err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	// Another session reads it, in both views, with the handle still open.
	if got := get(t, reader, p); !bytes.Equal(got, a) {
		t.Fatalf("after the first fsync: %d bytes, want %d", len(got), len(a))
	}
	if got := get(t, reader, "/by-type/obs/2026-03-03/synced.bin"); !bytes.Equal(got, a) {
		t.Fatalf("in the other view: %d bytes", len(got))
	}
	// Writes go on after an fsync; the next one publishes them.
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("second fsync: %v", err)
	}
	if got := get(t, reader, p); !bytes.Equal(got, append(append([]byte{}, a...), b...)) {
		t.Fatalf("after the second fsync: %d bytes", len(got))
	}
	// An fsync with nothing new written is a no-op; close publishes
	// what came after the last fsync.
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Write(d)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want := append(append(append([]byte{}, a...), b...), d...)
	if got := get(t, reader, p); !bytes.Equal(got, want) {
		t.Fatalf("after close: %d bytes, want %d", len(got), len(want))
	}
	// fsync of a read handle: nothing to do, and fine.
	r, err := c.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(); err != nil {
		t.Fatalf("fsync of a read handle: %v", err)
	}
	r.Close()
	// fsync after close: the handle is gone.
	if err := f.Sync(); err == nil {
		t.Fatal("fsync of a closed file succeeded")
	}
}

func TestFsyncOfOneOfSeveralHandles(t *testing.T) {
	e := newTestEnv(t, nil)
	c, _ := e.client(t)
	reader, _ := e.client(t)
	// Three handles open at once, two of one path: fsync publishes the
	// file its handle names, and the two handles of x share that file
	// (as two descriptors of a local file do).
	f1, _ := c.Create("/by-date/2026-03-03/obs/x")
	f2, _ := c.Create("/by-date/2026-03-03/obs/y")
	f3, err := c.Create("/by-date/2026-03-03/obs/x")
	if err != nil {
		t.Fatal(err)
	}
	f1.Write([]byte("first x, longer"))
	f2.Write([]byte("y"))
	f3.Write([]byte("second x"))
	if err := f1.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := string(get(t, reader, "/by-date/2026-03-03/obs/x")); got != "second x longer" {
		t.Fatalf("fsync of the first handle of x published %q", got)
	}
	if _, err := reader.Stat("/by-date/2026-03-03/obs/y"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("y published by x's fsync: %v", err)
	}
	f3.WriteAt([]byte("SECOND"), 0)
	if err := f3.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := string(get(t, reader, "/by-date/2026-03-03/obs/x")); got != "SECOND x longer" {
		t.Fatalf("fsync of the second handle of x published %q", got)
	}
	for _, f := range []io.Closer{f1, f2, f3} {
		f.Close()
	}
}

// A client may send fsync right behind its writes, without waiting for
// their replies: the fsync waits for them, and its reply comes last.
func TestFsyncAfterPipelinedWrites(t *testing.T) {
	e := newTestEnv(t, nil)
	reader, _ := e.client(t)
	raw := newRaw(t, e)
	p := "/by-date/2026-03-04/obs/piped.bin"
	open := appendString(nil, p)
	open = binary.BigEndian.AppendUint32(open, 0x02|0x08|0x10) // WRITE|CREAT|TRUNC
	open = binary.BigEndian.AppendUint32(open, 0)
	typ, body := raw.request(3, open)
	if typ != 102 {
		t.Fatalf("open: type %d %v", typ, body)
	}
	handle := string(body[4 : 4+binary.BigEndian.Uint32(body)])
	data := randBytes(t, 64*32<<10)
	const chunk = 32 << 10
	first := raw.id + 1
	for off := 0; off < len(data); off += chunk {
		raw.id++
		w := binary.BigEndian.AppendUint32(nil, raw.id)
		w = appendString(w, handle)
		w = binary.BigEndian.AppendUint64(w, uint64(off))
		w = appendString(w, string(data[off:off+chunk]))
		raw.send(6, w)
	}
	raw.id++
	fsyncID := raw.id
	raw.send(200, appendString(appendString(binary.BigEndian.AppendUint32(nil, fsyncID), "fsync@openssh.com"), handle))
	for id := first; id <= fsyncID; id++ {
		typ, body := raw.recv()
		got := binary.BigEndian.Uint32(body)
		if typ != 101 || got != id || binary.BigEndian.Uint32(body[4:]) != 0 {
			t.Fatalf("reply %d: type %d id %d status %d", id, typ, got, binary.BigEndian.Uint32(body[4:]))
		}
	}
	if got := get(t, reader, p); !bytes.Equal(got, data) {
		t.Fatalf("after pipelined writes and fsync: %d bytes, want %d", len(got), len(data))
	}
}

// nopChannel collects what the shim writes.
type nopChannel struct{ bytes.Buffer }

func (*nopChannel) Close() error { return nil }

// The shim finds packet boundaries however the replies are cut into
// Writes, and edits only VERSION.
func TestShimFramesRepliesWrittenInPieces(t *testing.T) {
	var in, want []byte
	pkt := func(typ byte, body []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(body)+1))
		return append(append(b, typ), body...)
	}
	version := pkt(2, appendString(appendString(appendString(appendString(binary.BigEndian.AppendUint32(nil, 3),
		"hardlink@openssh.com"), "1"), "statvfs@openssh.com"), "2"))
	in = append(in, version...)
	ext := binary.BigEndian.AppendUint32(nil, 3)
	for _, s := range []string{"statvfs@openssh.com", "2", "fsync@openssh.com", "1", "limits@openssh.com", "1"} {
		ext = appendString(ext, s)
	}
	want = append(want, pkt(2, ext)...)
	for i := range 50 {
		var p []byte
		switch i % 3 {
		case 0: // DATA
			p = pkt(103, appendString(binary.BigEndian.AppendUint32(nil, uint32(i)), string(bytes.Repeat([]byte{byte(i)}, i*97))))
		case 1: // STATUS
			p = pkt(101, appendString(appendString(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, uint32(i)), 0), "OK"), ""))
		case 2: // HANDLE, to no OPEN the shim saw
			p = pkt(102, appendString(binary.BigEndian.AppendUint32(nil, uint32(i)), "7"))
		}
		in = append(in, p...)
		want = append(want, p...)
	}
	for seed := range uint64(20) {
		ch := &nopChannel{}
		s := newPacketShim(ch, &handlers{})
		rnd := mrand.New(mrand.NewPCG(seed, 1))
		for rest := in; len(rest) > 0; {
			n := min(len(rest), 1+rnd.IntN(40))
			if seed == 0 {
				n = len(rest) // all at once
			}
			if k, err := s.Write(rest[:n]); err != nil || k != n {
				t.Fatalf("seed %d: write %d: %d %v", seed, n, k, err)
			}
			rest = rest[n:]
		}
		if !bytes.Equal(ch.Bytes(), want) {
			t.Fatalf("seed %d: output differs (%d bytes, want %d)", seed, ch.Len(), len(want))
		}
		if s.pending.Load() != -51 {
			t.Fatalf("seed %d: %d replies counted, want 51", seed, -s.pending.Load())
		}
	}
}

// A path the view's template cannot take fails at open, before any data.
func TestCreateRefusedAtOpen(t *testing.T) {
	e := newTestEnv(t, nil)
	c, _ := e.client(t)
	for _, p := range []string{"/by-date/2026-01-01/obs/too/deep", "/by-date/2026-01-01/obs"} {
		f, err := c.Create(p)
		if err == nil {
			f.Close()
			t.Fatalf("create %s: opened", p)
		}
		wantStatus(t, "create "+p, err, fxBadMessage)
	}
	if _, err := c.OpenFile("/by-date/2026-01-01/x", os.O_WRONLY|os.O_CREATE|os.O_EXCL); err == nil {
		t.Fatal("create where the template wants a type: opened")
	}
}

// limits@openssh.com tells OpenSSH's client to use 255 KiB reads and
// writes; the server then answers reads that large.
func TestLimitsAndLargeReads(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.MaxHandles = 100 })
	c, _ := e.client(t)
	data := randBytes(t, 1<<20)
	put(t, c, "/by-date/2026-01-01/obs/l", data)
	raw := newRaw(t, e)
	typ, body := raw.request(200, appendString(nil, "limits@openssh.com"))
	if typ != 201 || len(body) != 32 {
		t.Fatalf("limits: type %d, %d bytes", typ, len(body))
	}
	var got [4]uint64
	for i := range got {
		got[i] = binary.BigEndian.Uint64(body[8*i:])
	}
	if got != [4]uint64{256 << 10, 255 << 10, 255 << 10, 100} {
		t.Fatalf("limits: %v", got)
	}
	open := appendString(nil, "/by-date/2026-01-01/obs/l")
	open = binary.BigEndian.AppendUint32(open, 1)
	open = binary.BigEndian.AppendUint32(open, 0)
	typ, body = raw.request(3, open)
	if typ != 102 {
		t.Fatalf("open: type %d", typ)
	}
	handle := string(body[4 : 4+binary.BigEndian.Uint32(body)])
	rd := appendString(nil, handle)
	rd = binary.BigEndian.AppendUint64(rd, 1000)
	rd = binary.BigEndian.AppendUint32(rd, 255<<10)
	typ, body = raw.request(5, rd)
	if typ != 103 || binary.BigEndian.Uint32(body) != 255<<10 || !bytes.Equal(body[4:], data[1000:1000+255<<10]) {
		t.Fatalf("read of 255 KiB: type %d, %d bytes", typ, binary.BigEndian.Uint32(body))
	}
}

// rwChannel is a fake SSH channel: reads from r, writes to w.
type rwChannel struct {
	r io.Reader
	w bytes.Buffer
}

func (*rwChannel) Close() error                  { return nil }
func (c *rwChannel) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *rwChannel) Write(p []byte) (int, error) { return c.w.Write(p) }

// The shim hands the request server every packet but the fsyncs it
// answers, however the client's bytes are cut.
func TestShimFramesRequestsReadInPieces(t *testing.T) {
	pkt := func(typ byte, id uint32, body []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(body)+5))
		b = append(b, typ)
		return append(binary.BigEndian.AppendUint32(b, id), body...)
	}
	fsync := pkt(200, 1, appendString(appendString(nil, "fsync@openssh.com"), "9"))
	var rest []byte
	rest = append(rest, pkt(3, 2, binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(appendString(nil, "/a/b"), 0x1a), 0))...)
	rest = append(rest, pkt(6, 3, append(binary.BigEndian.AppendUint64(appendString(nil, "1"), 0), appendString(nil, strings.Repeat("x", 70000))...))...)
	rest = append(rest, pkt(200, 4, appendString(nil, "other@example.com"))...)
	rest = append(rest, pkt(4, 5, appendString(nil, "1"))...)
	for _, cut := range []func(io.Reader) io.Reader{iotest.OneByteReader, iotest.HalfReader, func(r io.Reader) io.Reader { return r }} {
		ch := &rwChannel{r: cut(bytes.NewReader(append(append([]byte{}, fsync...), rest...)))}
		s := newPacketShim(ch, &handlers{})
		var got bytes.Buffer
		buf := make([]byte, 7) // small reads, as io.ReadFull of a header does
		if _, err := io.CopyBuffer(&got, struct{ io.Reader }{s}, buf); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), rest) {
			t.Fatalf("passed on %d bytes, want %d", got.Len(), len(rest))
		}
		reply := ch.w.Bytes()
		if len(reply) < 13 || reply[4] != 101 || binary.BigEndian.Uint32(reply[5:]) != 1 || binary.BigEndian.Uint32(reply[9:]) != fxFailure {
			t.Fatalf("fsync of no open file: reply %v", reply)
		}
		if s.pending.Load() != 4 {
			t.Fatalf("%d requests counted as passed, want 4", s.pending.Load())
		}
	}
}
