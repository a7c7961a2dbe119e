package cache

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// File is one open handle on an entry. It is safe for concurrent ReadAt;
// Read and Seek share its cursor.
type File struct {
	// immutable after Open
	c    *Cache
	e    *entry
	fd   *os.File // read-only, this File's own open file description
	size int64

	closed atomic.Bool

	seqMu sync.Mutex
	// guarded by seqMu: the previous read, for read-ahead
	lastStart, lastEnd int64
	run                int // consecutive sequential reads

	posMu sync.Mutex
	pos   int64 // guarded by posMu
}

var (
	_ io.ReaderAt   = (*File)(nil)
	_ io.ReadSeeker = (*File)(nil)
	_ io.Closer     = (*File)(nil)
)

// Size is the content size.
func (f *File) Size() int64 { return f.size }

// Complete reports whether the whole content is cached and verified.
func (f *File) Complete() bool { return f.e.complete.Load() }

// DataFile returns the plain data file once the entry is complete, for
// sendfile or FUSE passthrough. It is this File's own open file description
// (its offset is not shared), owned by the File and valid until Close.
func (f *File) DataFile() (*os.File, bool) {
	if f.closed.Load() || !f.e.complete.Load() {
		return nil, false
	}
	return f.fd, true
}

// ReadAt reads len(p) bytes at off, fetching missing chunks. It uses a
// context owned by the cache, cancelled by Cache.Close.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	return f.ReadAtContext(f.c.ctx, p, off)
}

// ReadAtContext is ReadAt bounded by ctx: when ctx ends it returns
// ctx.Err(), while the fetches it waited for go on for other readers.
func (f *File) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	end, err := f.prepare(ctx, off, len(p))
	if err != nil || end == off {
		return 0, err
	}
	n, err := f.fd.ReadAt(p[:end-off], off)
	if err != nil {
		return n, fmt.Errorf("cache: read %s: %w", f.e.key, err)
	}
	if end-off < int64(len(p)) {
		return n, io.EOF
	}
	return n, nil
}

// ReadFile is ReadAtContext without the copy: it makes the n bytes at off
// readable from the data file and returns that file and how many of them
// the content has (io.EOF with them when it ends within the range), so a
// front-end can splice them to a socket or /dev/fuse. The file is this
// File's own descriptor, valid until Close; read only the range asked for.
func (f *File) ReadFile(ctx context.Context, off int64, n int) (*os.File, int, error) {
	end, err := f.prepare(ctx, off, n)
	if err != nil || end == off {
		return nil, 0, err
	}
	if end-off < int64(n) {
		return f.fd, int(end - off), io.EOF
	}
	return f.fd, n, nil
}

// prepare checks a read of n bytes at off and makes them present; it
// returns where the read ends (off for an empty read).
func (f *File) prepare(ctx context.Context, off int64, n int) (int64, error) {
	if f.closed.Load() {
		return off, fmt.Errorf("cache: read %s: %w", f.e.key, errClosed)
	}
	if off < 0 {
		return off, fmt.Errorf("cache: read %s at %d: %w", f.e.key, off, errInvalid)
	}
	if n == 0 {
		return off, nil
	}
	if off >= f.size {
		return off, io.EOF
	}
	end := min(off+int64(n), f.size)
	if f.e.complete.Load() {
		f.c.st.hits.Add(1)
	} else if err := f.ensure(ctx, off, end); err != nil {
		return off, err
	}
	f.c.st.served.Add(uint64(end - off))
	return end, nil
}

// window returns how many chunks past end to read ahead, and records this
// read. A read is sequential when it starts within a chunk of where the
// previous one did or ended (FUSE and friends issue reads slightly out of
// order); the window grows by one chunk per sequential read.
func (f *File) window(off, end int64) int64 {
	ra := int64(f.c.opts.ReadAhead)
	if ra <= 0 {
		return 0
	}
	f.seqMu.Lock()
	defer f.seqMu.Unlock()
	cs := f.c.chunk
	if off+cs >= f.lastStart && off <= f.lastEnd+cs {
		f.run++
	} else {
		f.run = 0
	}
	f.lastStart, f.lastEnd = off, end
	return min(int64(f.run), ra)
}

// wait is a reader's interest in a fetch: its bytes up to need.
type wait struct {
	fe   *fetch
	need int64
}

// ensure makes the bytes [off, end) readable from the data file: it joins
// the fetches under way for them or starts new ones, starts read-ahead, and
// waits until the fetches have written those bytes (not for whole chunks or
// requests). When a fetch it waited for made the entry whole, it also waits
// for the verification verdict, so the read that completes wrong content
// fails.
func (f *File) ensure(ctx context.Context, off, end int64) error {
	e, c := f.e, f.c
	first, last := off/c.chunk, (end-1)/c.chunk
	ahead := f.window(off, end)
	// Read-ahead requests span half the window: long requests, and still
	// two or three of them in flight to spread the work over cores and
	// connections.
	run := (ahead + 1) / 2
	var buf [4]wait
	waits := buf[:0]

	e.mu.Lock()
	if e.dropErr != nil {
		e.mu.Unlock()
		return e.dropErr
	}
	for i := first; i <= last; {
		if e.has(i) {
			i++
			continue
		}
		fe := e.inflight[i]
		if fe == nil {
			// One request for this chunk and the absent ones after
			// it, through the read and a read-ahead run.
			fe = c.startFetchLocked(e, i, f.runEnd(i, max(last+1, i+run)), ahead > 0)
		}
		fe.waiters++
		need := min(end, fe.limit)
		fe.wake = min(fe.wake, need) // also tells the fetch to write up to it at once
		waits = append(waits, wait{fe, need})
		i = max(i+1, fe.end)
	}
	for i := last + 1; i <= last+ahead && i < e.nchunks; {
		if e.has(i) {
			i++
			continue
		}
		if fe := e.inflight[i]; fe != nil {
			fe.background = true
			i = max(i+1, fe.end)
			continue
		}
		fe := c.startFetchLocked(e, i, f.runEnd(i, i+run), true)
		i = fe.end
	}
	e.mu.Unlock()
	if len(waits) == 0 {
		c.st.hits.Add(1)
		return nil
	}
	c.st.misses.Add(1)

	for k, w := range waits {
		if err := f.await(ctx, w); err != nil {
			f.leave(waits[k:])
			return err
		}
	}
	// Also when the verification it waits for is interrupted (Close, or
	// its fetch cancelled): it is then run again under ctx.
	return f.Verified(ctx)
}

// runEnd returns where a fetch starting at absent chunk i ends: before
// want, the end of the entry, or the first chunk present or in flight.
// Caller holds e.mu.
func (f *File) runEnd(i, want int64) int64 {
	e := f.e
	j := i + 1
	for j < want && j < e.nchunks && !e.has(j) && e.inflight[j] == nil {
		j++
	}
	return j
}

// await waits until w.fe has written w.need or failed before. On success
// the wait is over (waiters decremented); on error the caller leaves.
func (f *File) await(ctx context.Context, w wait) error {
	e, fe := f.e, w.fe
	e.mu.Lock()
	for fe.pos < w.need {
		select {
		case <-fe.done:
			e.mu.Unlock()
			if fe.err != nil {
				return fe.err
			}
			return fmt.Errorf("cache: fetch %s ended at %d before %d: %w", e.key, fe.pos, w.need, io.ErrUnexpectedEOF)
		default:
		}
		progress := fe.progress
		fe.wake = min(fe.wake, w.need)
		e.mu.Unlock()
		select {
		case <-progress:
		case <-fe.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		e.mu.Lock()
	}
	fe.waiters--
	e.mu.Unlock()
	return nil
}

// leave gives up waiting on fetches. A fetch nobody waits for any more is
// cancelled unless it is read-ahead, and forgotten at once so the next
// reader starts afresh rather than joining a dying fetch.
func (f *File) leave(waits []wait) {
	e := f.e
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, w := range waits {
		fe := w.fe
		fe.waiters--
		if fe.waiters > 0 || fe.background {
			continue
		}
		select {
		case <-fe.done:
		default:
			fe.cancel()
			for i := fe.next; i < fe.end; i++ {
				if e.inflight[i] == fe {
					delete(e.inflight, i)
				}
			}
		}
	}
}

// Read reads from the File's cursor.
func (f *File) Read(p []byte) (int, error) {
	f.posMu.Lock()
	defer f.posMu.Unlock()
	n, err := f.ReadAt(p, f.pos)
	f.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek moves the File's cursor.
func (f *File) Seek(off int64, whence int) (int64, error) {
	f.posMu.Lock()
	defer f.posMu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += f.pos
	case io.SeekEnd:
		off += f.size
	default:
		return f.pos, fmt.Errorf("cache: seek %s: whence %d: %w", f.e.key, whence, errInvalid)
	}
	if off < 0 {
		return f.pos, fmt.Errorf("cache: seek %s to %d: %w", f.e.key, off, errInvalid)
	}
	f.pos = off
	return off, nil
}

// Close releases the File. The entry's last use is now (for the LRU, also
// across restarts through the sidecar's mtime).
func (f *File) Close() error {
	if f.closed.Swap(true) {
		return fmt.Errorf("cache: close %s: %w", f.e.key, errClosed)
	}
	err := f.fd.Close()
	now := time.Now()
	os.Chtimes(f.e.statePath, now, now) // best effort; absent before the first persist
	f.c.unpin(f.e, true)
	return err
}

// Verified waits for the verdict on the content: nil when the entry is
// complete (verified) or not yet whole (nothing to judge), the verification
// error when the content was found wrong. A whole but unverified entry is
// verified now. Readers call it when they reach the end, so a sequential
// reader never ends without error on content that failed its checksum,
// even when read-ahead, not the reader, completed the entry.
func (f *File) Verified(ctx context.Context) error {
	e := f.e
	e.mu.Lock()
	err := e.verdictLocked(ctx)
	whole := e.present == e.nchunks
	e.mu.Unlock()
	switch {
	case err != nil:
		return err
	case e.complete.Load() || !whole:
		return nil
	}
	return f.c.verifyOnOpen(ctx, e)
}
