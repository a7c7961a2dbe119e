package store

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"sync"
)

// Put hashes what it stores with MD5 and SHA-256. MD5 cannot be split
// within one stream and runs at about 700 MB/s, so hashing in the
// writer's goroutine caps a push at well under the disk's speed. The
// content therefore flows through a pipeline of goroutines — reading the
// source, MD5, SHA-256, and the store's writer pulling from the end — in
// buffers big enough that a hand-off costs nothing next to hashing one
// (a hand-off per small write was measured slower than no pipeline).
const (
	pipeBufSize = 1 << 20
	// pipeDepth buffers at most per put: the memory one upload may hold,
	// and the slack that lets each stage work while the others do.
	pipeDepth = 6
)

type pipeBuf = [pipeBufSize]byte

var pipeBufs = sync.Pool{New: func() any { return new(pipeBuf) }}

// chunk is one buffer's worth of content on its way through the pipeline.
type chunk struct {
	b      []byte
	err    error    // after b: io.EOF at the end, or why reading stopped
	pooled *pipeBuf // b's buffer when it comes from pipeBufs
}

// hashPipe is the io.Reader Put hands to the store: it yields the
// source's bytes after both hashes have seen them. Content that fits in
// one buffer is hashed in the caller's goroutine and starts nothing.
// Longer content skips MD5 when deferMD5 is set: Put then has it
// computed in the background (md5job.go) and sums returns no MD5.
// Read and finish are for one goroutine; finish must be called once.
type hashPipe struct {
	ctx      context.Context
	src      io.Reader
	sizeHint int64
	deferMD5 bool
	md5, sha hash.Hash // md5 nil once deferred
	n        int64     // bytes passed on by Read

	started bool
	cur     chunk // being passed on
	off     int   // into cur.b

	out       <-chan chunk // from the last stage
	free      chan *pipeBuf
	allocated int // buffers taken from pipeBufs; the reading stage's
	stop      chan struct{}
	wg        sync.WaitGroup
}

func newHashPipe(ctx context.Context, src io.Reader, sizeHint int64, deferMD5 bool) *hashPipe {
	return &hashPipe{
		ctx: ctx, src: src, sizeHint: sizeHint, deferMD5: deferMD5, md5: md5.New(), sha: sha256.New(),
		free: make(chan *pipeBuf, pipeDepth), stop: make(chan struct{}),
	}
}

func (p *hashPipe) Read(b []byte) (int, error) {
	for p.off == len(p.cur.b) {
		if p.cur.err != nil {
			return 0, p.cur.err
		}
		if err := p.next(); err != nil {
			return 0, err
		}
	}
	n := copy(b, p.cur.b[p.off:])
	p.off += n
	p.n += int64(n)
	return n, nil
}

// WriteTo writes the content to w in the pipeline's own buffers, as they
// come out of it: a store taking it this way (backends/local) saves
// copying it into a buffer of its own.
func (p *hashPipe) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		for p.off == len(p.cur.b) {
			if p.cur.err != nil {
				if errors.Is(p.cur.err, io.EOF) {
					return total, nil
				}
				return total, p.cur.err
			}
			if err := p.next(); err != nil {
				return total, err
			}
		}
		n, err := w.Write(p.cur.b[p.off:])
		p.off += n
		p.n += int64(n)
		total += int64(n)
		if err == nil && p.off < len(p.cur.b) {
			err = io.ErrShortWrite
		}
		if err != nil {
			return total, err
		}
	}
}

// LargeBuffers tells a store that WriteTo writes buffers of pipeBufSize.
func (p *hashPipe) LargeBuffers() {}

// next makes the following chunk current.
func (p *hashPipe) next() error {
	if !p.started {
		p.started = true
		return p.first()
	}
	p.recycle(p.cur)
	p.cur, p.off = chunk{}, 0
	select {
	case c, ok := <-p.out:
		if !ok {
			return errors.New("hash pipeline stopped")
		}
		p.cur = c
		return nil
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
}

// first reads the first buffer. If that is the whole content (or reading
// failed), it is hashed here; otherwise the pipeline starts with it.
func (p *hashPipe) first() error {
	var c chunk
	if p.sizeHint >= 0 && p.sizeHint < pipeBufSize {
		// One byte more than announced shows a longer source at once.
		c.b = make([]byte, p.sizeHint+1)
	} else {
		c.pooled = p.getBuf()
		c.b = c.pooled[:]
	}
	n, err := p.fill(c.b)
	c.b, c.err = c.b[:n], err
	if err != nil {
		p.md5.Write(c.b)
		p.sha.Write(c.b)
		p.cur = c
		return nil
	}
	read := make(chan chunk, pipeDepth)
	out := make(chan chunk, pipeDepth)
	read <- c // buffered: cannot block
	p.out = out
	p.wg.Add(2)
	go p.read(read)
	if p.deferMD5 {
		p.md5 = nil
		go p.hash(p.sha, read, out)
		return p.next()
	}
	summed := make(chan chunk, pipeDepth)
	p.wg.Add(1)
	go p.hash(p.md5, read, summed)
	go p.hash(p.sha, summed, out)
	return p.next()
}

// read is the first stage: it fills buffers from the source until the
// source ends or fails, or the pipeline stops.
func (p *hashPipe) read(out chan<- chunk) {
	defer p.wg.Done()
	defer close(out)
	for {
		buf := p.waitBuf()
		if buf == nil {
			return
		}
		n, err := p.fill(buf[:])
		select {
		case out <- chunk{b: buf[:n], err: err, pooled: buf}:
		case <-p.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

// hash is a hashing stage.
func (p *hashPipe) hash(h hash.Hash, in <-chan chunk, out chan<- chunk) {
	defer p.wg.Done()
	defer close(out)
	for c := range in {
		h.Write(c.b)
		select {
		case out <- c:
		case <-p.stop:
			return
		}
	}
}

// fill reads from the source until b is full, the source ends or fails,
// or the context is done.
func (p *hashPipe) fill(b []byte) (int, error) {
	n, empty := 0, 0
	for n < len(b) {
		if err := p.ctx.Err(); err != nil {
			return n, err
		}
		m, err := p.src.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
		if m == 0 {
			if empty++; empty >= 100 {
				return n, io.ErrNoProgress
			}
		}
	}
	return n, nil
}

// getBuf gives the reading stage a buffer: a recycled one, else a new one
// while fewer than pipeDepth are out.
func (p *hashPipe) getBuf() *pipeBuf {
	p.allocated++
	return pipeBufs.Get().(*pipeBuf)
}

// waitBuf is getBuf that waits for a recycled buffer once pipeDepth are
// out (back-pressure from the slowest stage); nil once the pipeline stops.
func (p *hashPipe) waitBuf() *pipeBuf {
	select {
	case b := <-p.free:
		return b
	default:
	}
	if p.allocated < pipeDepth {
		return p.getBuf()
	}
	select {
	case b := <-p.free:
		return b
	case <-p.stop:
		return nil
	}
}

// recycle hands a passed-on chunk's buffer back to the reading stage. It
// cannot block: at most pipeDepth pooled buffers exist per pipe.
func (p *hashPipe) recycle(c chunk) {
	if c.pooled != nil {
		p.free <- c.pooled
	}
}

// finish stops the pipeline, waits until none of its goroutines runs (the
// source is not read after finish returns: an HTTP handler's body must
// not be) and gives back its buffers. A read-ahead blocked in the source
// is waited for, so a store failing under a stalled client reports only
// once the client sends or goes; the serial code did not read ahead.
// Buffers still in the stages' channels are left to the collector.
func (p *hashPipe) finish() {
	close(p.stop)
	p.wg.Wait()
	p.recycle(p.cur)
	p.cur, p.off = chunk{}, 0
	for {
		select {
		case b := <-p.free:
			pipeBufs.Put(b)
		default:
			return
		}
	}
}

// end makes sure the store took the source up to its end, so the sums
// cover exactly the bytes passed on: a store may stop reading once it has
// the size announced.
func (p *hashPipe) end() error {
	var one [1]byte
	n, err := p.Read(one[:])
	switch {
	case n > 0:
		return errLonger
	case errors.Is(err, io.EOF):
		return nil
	}
	return err
}

var errLonger = errors.New("the content is longer than announced")

// sums gives the content's checksums; md5sum is nil when deferred.
func (p *hashPipe) sums() (md5sum, sha []byte) {
	if p.md5 != nil {
		md5sum = p.md5.Sum(nil)
	}
	return md5sum, p.sha.Sum(nil)
}
