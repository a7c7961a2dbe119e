package cache

import (
	"context"
	"fmt"
	"io"
	"os"
)

// Incremental verification (Source.NewDigest): a goroutine follows the
// entry's contiguous prefix (present chunks and the written part of the
// fetch filling the next one), reads each new stretch back from the data
// file — from the page cache, just written — and feeds the Digest. It runs
// while there is something to feed and exits; the next progress starts it
// again. Reading back instead of hashing inside the fetch keeps hashing off
// the fetch path (a slow hash such as MD5 only delays the verdict) and
// works the same whatever order the chunks arrive in. When the entry
// becomes whole, finishDigest feeds whatever is left and asks the Digest
// for the verdict.

// contiguousLocked returns the end of the bytes written without a gap from
// from on. Caller holds e.mu.
func (c *Cache) contiguousLocked(e *entry, from int64) int64 {
	pos := from
	for pos < e.size {
		i := pos / c.chunk
		if e.has(i) {
			pos = min((i+1)*c.chunk, e.size)
			continue
		}
		if fe := e.inflight[i]; fe != nil && fe.pos > pos {
			pos = fe.pos
			continue
		}
		break
	}
	return pos
}

// kickDigestLocked starts the feeding goroutine if it is idle and has
// something to feed. Caller holds e.mu.
func (c *Cache) kickDigestLocked(e *entry) {
	if e.dg == nil || e.dgBusy || e.dgErr != nil || e.dropped || c.contiguousLocked(e, e.dgOff) <= e.dgOff {
		return
	}
	e.dgBusy, e.dgIdle = true, make(chan struct{})
	e.refs++ // keeps e.f open
	if !c.goOwned(func() { c.feedDigest(e) }) {
		e.refs--
		e.dgBusy = false
		close(e.dgIdle)
	}
}

// feedDigest feeds e's digest as far as the content is contiguous.
func (c *Cache) feedDigest(e *entry) {
	defer c.release(e)
	bp := c.bufs.Get().(*[]byte)
	defer c.bufs.Put(bp)
	for {
		e.mu.Lock()
		from := e.dgOff
		avail := c.contiguousLocked(e, from)
		if avail <= from || e.dropped || e.dg == nil || c.ctx.Err() != nil {
			e.dgBusy = false
			close(e.dgIdle)
			e.mu.Unlock()
			return
		}
		dg, f := e.dg, e.f
		e.mu.Unlock()
		p := (*bp)[:min(avail-from, int64(len(*bp)))]
		_, err := f.ReadAt(p, from)
		e.mu.Lock()
		if err != nil {
			e.dgErr = diskErr("read", e.dataPath, err)
			e.dgBusy = false
			close(e.dgIdle)
			e.mu.Unlock()
			return
		}
		e.mu.Unlock()
		dg.Write(p)
		e.mu.Lock()
		e.dgOff = from + int64(len(p))
		e.mu.Unlock()
	}
}

// finishDigest feeds what the digest has not seen yet of the whole entry
// and returns its verdict. Caller set e.verifying and holds a ref.
func (c *Cache) finishDigest(ctx context.Context, e *entry, src Source, f *os.File) error {
	e.mu.Lock()
	for e.dgBusy {
		idle := e.dgIdle
		e.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
		e.mu.Lock()
	}
	if e.dg == nil {
		if src.NewDigest == nil {
			e.mu.Unlock()
			if src.Verify == nil {
				return nil
			}
			return src.Verify(ctx, f)
		}
		e.dg, e.dgOff, e.dgErr = src.NewDigest(), 0, nil
	}
	if err := e.dgErr; err != nil {
		e.dg, e.dgErr = nil, nil // the next verification starts afresh
		e.mu.Unlock()
		return err
	}
	e.dgBusy, e.dgIdle = true, make(chan struct{})
	dg, from := e.dg, e.dgOff
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.dgBusy = false
		close(e.dgIdle)
		e.mu.Unlock()
	}()

	bp := c.bufs.Get().(*[]byte)
	defer c.bufs.Put(bp)
	sr := io.NewSectionReader(f, from, e.size-from)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := sr.Read(*bp)
		dg.Write((*bp)[:n])
		e.mu.Lock()
		e.dgOff += int64(n)
		e.mu.Unlock()
		if err == io.EOF {
			break
		}
		if err != nil {
			e.mu.Lock()
			e.dg = nil
			e.mu.Unlock()
			return diskErr("read", e.dataPath, err)
		}
	}
	err := dg.Verify(ctx)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ctx.Err(), err) // no verdict: the digest stays for the next try
	}
	e.mu.Lock()
	e.dg = nil // used up
	e.mu.Unlock()
	return err
}
