package sftp

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/datagate/datagate/views"
)

// A new or truncated upload is streamed into Tree.Create while it
// arrives, so that close only waits for the tail instead of pushing the
// whole spool then (hashing and storing 256 MiB takes as long as sending
// it). Writes still land in the spool first; the stream reads the spool
// behind the contiguous prefix written so far. pkg/sftp runs writes on
// several workers, so they come slightly out of order: ranges beyond the
// prefix wait in a small set until the gap fills. A write the stream
// cannot follow (below the prefix, overlapping, too far ahead, a
// truncation) breaks it: its Create fails, leaving nothing, and close
// pushes the spool as before. The upload commits only when close (or
// fsync) says where the content ends, so nobody sees it earlier.

// maxAhead bounds the ranges waiting for a gap to fill. pkg/sftp has 8
// write workers and an 8-deep queue; a client writing much further ahead
// is not writing sequentially.
const maxAhead = 64

var errStreamBroken = errors.New("sftp: streamed upload abandoned")

// stream is an upload being streamed from the spool into Tree.Create.
type stream struct {
	// immutable after startStream
	u      *upload
	cancel context.CancelFunc
	done   chan struct{} // closed when Create has returned

	pos int64 // next spool offset to read; the Create goroutine's alone

	mu   sync.Mutex
	cond *sync.Cond
	// guarded by mu
	wm     int64           // spool bytes [0, wm) are all written
	ahead  map[int64]int64 // written ranges beyond wm: start → end
	final  int64           // where the content ends; -1 until finish
	broken bool
	err    error // Create's, once done is closed
}

// startStream starts the Create that the upload's writes feed.
func (u *upload) startStream() *stream {
	// The handle's context ends with the session: that abandons the
	// stream too.
	ctx, cancel := context.WithCancel(u.ctx)
	s := &stream{u: u, cancel: cancel, done: make(chan struct{}), ahead: map[int64]int64{}, final: -1}
	s.cond = sync.NewCond(&s.mu)
	stop := context.AfterFunc(ctx, s.breakStream)
	id := u.h.tree.NewID() // the upload's place among those to its path
	go func() {
		defer close(s.done)
		defer stop()
		_, err := u.h.tree.Create(ctx, u.path, s, views.CreateOptions{Size: -1, ID: id})
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
	}()
	return s
}

// Read gives Create the spool's written prefix, waiting for more until
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

// finish says the content ends at size and waits for Create: nil once
// the upload is stored, else the stream's failure (the caller then
// pushes the spool).
func (s *stream) finish(size int64) error {
	s.mu.Lock()
	if s.final < 0 {
		s.final = size
	}
	s.cond.Broadcast()
	s.mu.Unlock()
	<-s.done
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// abandon breaks the stream and waits for its Create to fail.
func (s *stream) abandon() {
	s.breakStream()
	s.cancel()
	<-s.done
}
