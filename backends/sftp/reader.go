package sftp

import (
	"context"
	"io"

	pkgsftp "github.com/pkg/sftp"
)

// reader serves a byte range of a remote file. It fetches up to blockSize
// at a time with one ReadAt, which pkg/sftp turns into concurrent requests,
// and hands the block out to Read calls, whatever their size.
type reader struct {
	ctx  context.Context
	p    *Provider
	c    *conn // a reference is held until Close
	f    *pkgsftp.File
	name string

	off       int64 // next offset to fetch
	remaining int64 // bytes still to fetch; < 0: up to EOF
	bufSize   int
	buf       []byte
	pos, end  int   // buf[pos:end] is fetched, not yet returned
	eof       bool  // the file ended
	err       error // sticky
	closed    bool
}

func newReader(ctx context.Context, p *Provider, c *conn, f *pkgsftp.File, name string, off, length, size int64) *reader {
	n := int64(blockSize)
	switch {
	case length >= 0 && length < n:
		n = max(length, 1)
	case length < 0 && size-off < n:
		// A hint: the file may have grown, the reader then goes on.
		n = max(size-off, 32<<10)
	}
	return &reader{ctx: ctx, p: p, c: c, f: f, name: name, off: off, remaining: length, bufSize: int(n)}
}

func (r *reader) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, r.err
	}
	for {
		if r.pos < r.end {
			n := copy(b, r.buf[r.pos:r.end])
			r.pos += n
			return n, nil
		}
		if r.err != nil {
			return 0, r.err
		}
		switch {
		case r.closed:
			r.err = r.p.wrap("read", r.name, errClosed)
		case r.remaining == 0:
			r.err = io.EOF
		case r.eof && r.remaining > 0:
			r.err = io.ErrUnexpectedEOF
		case r.eof:
			r.err = io.EOF
		default:
			r.fill()
		}
	}
}

// fill fetches the next block.
func (r *reader) fill() {
	want := r.bufSize
	if r.remaining >= 0 && r.remaining < int64(want) {
		want = int(r.remaining)
	}
	if r.buf == nil {
		r.buf = make([]byte, r.bufSize)
	}
	buf, off, f := r.buf[:want], r.off, r.f
	var n int
	var eof bool
	err := r.p.run(r.ctx, r.c, "read", func() error {
		var err error
		n, err = f.ReadAt(buf, off)
		if err == io.EOF {
			eof, err = true, nil
		}
		return err
	})
	if err != nil {
		// An abandoned ReadAt may still write to buf: never use it again.
		r.buf = nil
		r.err = r.p.wrap("read", r.name, err)
		return
	}
	r.pos, r.end = 0, n
	r.off += int64(n)
	if r.remaining > 0 {
		r.remaining -= int64(n)
	}
	r.eof = eof
}

// Close releases the remote handle (in the background: a read-only handle
// has nothing to report) and the connection.
func (r *reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.buf = nil
	r.pos, r.end = 0, 0
	r.p.closeFile(r.c, r.f)
	r.p.release(r.c)
	return nil
}
