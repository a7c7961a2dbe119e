package sftp

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"sync"

	"github.com/datagate/datagate/backends/local"
)

// A new or truncated upload is hashed (SHA-256) while it arrives, so that
// close hands the store the spool with its sum and the store links the
// spool in place (store.SpoolFile): close only waits for the tail of the
// hash and the flush, nothing is copied nor read back. Writes land in the
// spool; the stream reads the spool behind the contiguous prefix written
// so far. pkg/sftp runs writes on several workers, so they come slightly
// out of order: ranges beyond the prefix wait in a small set until the
// gap fills. A write the stream cannot follow (below the prefix,
// overlapping, too far ahead, a truncation) breaks it, and close has the
// store copy and hash the spool instead. The upload commits only when
// close (or fsync) says where the content ends, so nobody sees it
// earlier.

// maxAhead bounds the ranges waiting for a gap to fill. pkg/sftp has 8
// write workers and an 8-deep queue; a client writing much further ahead
// is not writing sequentially.
const maxAhead = 64

var errStreamBroken = errors.New("sftp: streamed upload abandoned")

// stream is an upload being hashed from the spool.
type stream struct {
	// immutable after startStream
	u      *upload
	cancel context.CancelFunc
	done   chan struct{} // closed when the hash has ended

	pos int64 // next spool offset to read; the hashing goroutine's alone

	mu   sync.Mutex
	cond *sync.Cond
	// guarded by mu
	wm     int64           // spool bytes [0, wm) are all written
	ahead  map[int64]int64 // written ranges beyond wm: start → end
	final  int64           // where the content ends; -1 until finish
	broken bool
	// set before done is closed
	sum []byte // the SHA-256 of spool bytes [0, final)
	err error
}

// startStream starts hashing what the upload's writes put in the spool.
func (u *upload) startStream() *stream {
	// The upload's context does not end with a handle (upload.ctx): a
	// session that ends closes its handles, and the last close abandons
	// the stream.
	ctx, cancel := context.WithCancel(u.ctx)
	s := &stream{u: u, cancel: cancel, done: make(chan struct{}), ahead: map[int64]int64{}, final: -1}
	s.cond = sync.NewCond(&s.mu)
	stop := context.AfterFunc(ctx, s.breakStream)
	go func() {
		defer close(s.done)
		defer stop()
		h := sha256.New()
		buf := make([]byte, 1<<20)
		var clean int64
		for {
			n, err := s.Read(buf)
			h.Write(buf[:n])
			if s.pos-clean >= spoolWriteback {
				local.StartWriteback(u.f, clean, s.pos-clean)
				clean = s.pos
			}
			if errors.Is(err, io.EOF) {
				s.sum = h.Sum(nil)
				return
			}
			if err != nil {
				s.err = err
				return
			}
		}
	}()
	return s
}

// spoolWriteback is how much of the spool is hashed between two starts of
// its writeback, so that its dirty pages do not pile up for the flush at
// close (the store's own files are written back the same way).
const spoolWriteback = 8 << 20

// Read gives the hash the spool's written prefix, waiting for more until
// finish says where the content ends.
func (s *stream) Read(p []byte) (int, error) {
	s.mu.Lock()
	var limit int64
	for {
		if s.broken {
			s.mu.Unlock()
			return 0, errStreamBroken
		}
		if s.final >= 0 {
			limit = s.final
			if s.pos >= limit {
				s.mu.Unlock()
				return 0, io.EOF
			}
			break
		}
		if limit = s.wm; s.pos < limit {
			break
		}
		s.cond.Wait()
	}
	s.mu.Unlock()
	if int64(len(p)) > limit-s.pos {
		p = p[:limit-s.pos]
	}
	n, err := s.u.f.ReadAt(p, s.pos)
	s.pos += int64(n)
	if errors.Is(err, io.EOF) {
		// Not expected (final is the spool's size when finish is
		// called), but a hole reads as zeros.
		err = nil
		if n < len(p) {
			clear(p[n:])
			s.pos += int64(len(p) - n)
			n = len(p)
		}
	}
	return n, err
}

// wrote records that the spool holds [off, end) now.
func (s *stream) wrote(off, end int64) {
	if end <= off {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.broken:
		return
	case off < s.wm || s.final >= 0 || (off > s.wm && len(s.ahead) >= maxAhead):
		s.breakLocked()
		return
	case off > s.wm:
		s.ahead[off] = end
		return
	}
	s.wm = end
	for {
		e, ok := s.ahead[s.wm]
		if !ok {
			break
		}
		delete(s.ahead, s.wm)
		s.wm = e
	}
	// A range left behind the prefix overlapped another write.
	for start := range s.ahead {
		if start < s.wm {
			s.breakLocked()
			return
		}
	}
	s.cond.Broadcast()
}

func (s *stream) breakStream() {
	s.mu.Lock()
	s.breakLocked()
	s.mu.Unlock()
}

func (s *stream) breakLocked() {
	s.broken = true
	s.cond.Broadcast()
}

// finish says the content ends at size and waits for the hash: the
// SHA-256 of the spool's first size bytes, or the stream's failure (the
// caller then has the store hash the spool).
func (s *stream) finish(size int64) ([]byte, error) {
	s.mu.Lock()
	if s.final < 0 {
		s.final = size
	}
	s.cond.Broadcast()
	s.mu.Unlock()
	<-s.done
	s.cancel()
	return s.sum, s.err
}

// abandon breaks the stream and waits for its hash to end.
func (s *stream) abandon() {
	s.breakStream()
	s.cancel()
	<-s.done
}
