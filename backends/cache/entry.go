package cache

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// entry is the cache's view of one key: its files, which chunks are present
// and the fetches under way. One entry object per key lives in Cache.entries
// at a time; a dropped one stays usable by the Files still open on it (its
// files are unlinked, so a new entry of the key can take the paths).
type entry struct {
	// immutable after creation
	key       string
	dataPath  string
	statePath string

	// complete mirrors the complete state so reads of a whole entry need
	// no lock. Set (under mu) only after Verify succeeded.
	complete atomic.Bool

	// guarded by Cache.mu
	elem *list.Element // position in Cache.lru; nil when not in the map

	mu sync.Mutex
	// guarded by mu
	loaded     bool // the sidecar was looked for (by the walk, Open or Lookup)
	hasState   bool // size..bits describe a data file on disk
	size       int64
	chunkSize  int64
	nchunks    int64
	bits       []uint64
	present    int64 // chunks present
	presentB   int64 // bytes present; counted in Cache.usage unless dropped
	refs       int   // Opens and Files (pins) + running fetches + flushes: keep f open
	pins       int   // Opens in progress + open Files: no eviction
	f          *os.File
	src        Source // of the latest Open: whoever fetches next uses it
	inflight   map[int64]*fetch
	verifying  bool
	verifyDone chan struct{} // closed when the running verification ends
	dirty      bool          // bits or complete changed since the last persist
	dg         Digest        // fed the content in order while it arrives; nil once used
	dgOff      int64         // bytes fed to dg
	dgBusy     bool          // a goroutine is feeding dg
	dgIdle     chan struct{} // closed when that goroutine stops
	dgErr      error         // reading the data file back for dg failed
	dropped    bool
	dropErr    error // why reads of a dropped entry fail; nil after Remove/evict
	held       bool  // dropped with f open: counted in Cache.held
}

// fetch is one request filling the consecutive chunks [first, end) in
// order. It owns those chunks in entry.inflight until each is complete (or
// the fetch ends), so every chunk has at most one fetch. Readers do not wait
// for the whole request, nor for a whole chunk: they wait until pos covers
// the bytes they asked for, which are then already in the data file.
type fetch struct {
	// immutable after start
	first, end int64 // chunk indexes
	off, limit int64 // the bytes [off, limit) it fills
	done       chan struct{}
	err        error // set before done is closed
	cancel     context.CancelFunc

	// guarded by entry.mu
	pos        int64         // [off, pos) is written
	next       int64         // first chunk not yet marked present
	progress   chan struct{} // closed and replaced when pos reaches wake
	wake       int64         // the least need of its readers: wake them, write that far at once; noWake if none
	waiters    int
	background bool // read-ahead: not cancelled when its waiters leave
	verify     bool // completing a chunk made the entry whole: verify it
}

func (e *entry) isDropped() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dropped
}

func (e *entry) has(i int64) bool { return e.bits[i>>6]&(1<<(uint(i)&63)) != 0 }

func (e *entry) chunkLen(i int64) int64 { return min(e.chunkSize, e.size-i*e.chunkSize) }

// setState installs a loaded or fresh state. Caller holds e.mu.
func (c *Cache) setStateLocked(e *entry, s state) {
	e.size, e.chunkSize, e.bits = s.size, s.chunkSize, s.bits
	e.nchunks = chunkCount(s.size, s.chunkSize)
	e.present, e.presentB = 0, 0
	for i := int64(0); i < e.nchunks; i++ {
		if e.has(i) {
			e.present++
			e.presentB += e.chunkLen(i)
		}
	}
	e.hasState = true
	// A sidecar claiming completion with bits missing is not trusted.
	e.complete.Store(s.complete && e.present == e.nchunks)
	if !e.dropped {
		c.usage.Add(e.presentB)
	}
}

// loadLocked reads e's sidecar once. A sidecar that does not parse, or was
// written with another chunk size, is discarded with the data file.
func (c *Cache) loadLocked(e *entry) {
	if e.loaded {
		return
	}
	e.loaded = true
	s, ok, err := readState(e.statePath)
	if err != nil || (ok && s.chunkSize != c.chunk) {
		c.log.Warn("cache: discarding entry state", "key", e.key, "err", err, "chunk_size", s.chunkSize)
		if err := removeFiles(e.dataPath, e.statePath); err != nil {
			c.log.Warn("cache: removing entry", "key", e.key, "err", err)
		}
		return
	}
	if ok {
		c.setStateLocked(e, s)
	}
}

// resetLocked forgets the content of an entry whose data file vanished.
func (c *Cache) resetLocked(e *entry) {
	c.closeFileLocked(e)
	if err := removeFiles(e.dataPath, e.statePath); err != nil {
		c.log.Warn("cache: removing entry", "key", e.key, "err", err)
	}
	if !e.dropped {
		c.usage.Add(-e.presentB)
	}
	e.hasState, e.present, e.presentB, e.bits, e.dirty = false, 0, 0, nil, false
	e.complete.Store(false)
}

// prepareLocked makes e, whose size matches src's (see Cache.Open), ready to
// read: state loaded, data file open. Caller holds e.mu and one of e.refs; a
// closed data file means that ref is the only one, so a missing or truncated
// data file can be reset in place.
func (c *Cache) prepareLocked(e *entry, src Source) error {
	c.loadLocked(e)
	if e.hasState && e.f == nil {
		f, err := os.OpenFile(e.dataPath, os.O_RDWR, 0)
		if err == nil {
			var st os.FileInfo
			if st, err = f.Stat(); err == nil && st.Size() != e.size {
				err = os.ErrNotExist // truncated behind our back: refetch
			}
			if err != nil {
				f.Close()
			}
		}
		switch {
		case err == nil:
			e.f = f
		case errors.Is(err, os.ErrNotExist):
			c.resetLocked(e)
		default:
			return diskErr("open", e.dataPath, err)
		}
	}
	if !e.hasState {
		if err := os.MkdirAll(filepath.Dir(e.dataPath), 0o700); err != nil {
			return diskErr("create", e.dataPath, err)
		}
		f, err := os.OpenFile(e.dataPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return diskErr("create", e.dataPath, err)
		}
		if err := f.Truncate(src.Size); err != nil {
			f.Close()
			os.Remove(e.dataPath)
			return diskErr("create", e.dataPath, err)
		}
		e.f = f
		c.setStateLocked(e, state{size: src.Size, chunkSize: c.chunk, bits: make([]uint64, bitWords(chunkCount(src.Size, c.chunk)))})
	}
	e.src = src
	if src.NewDigest != nil && e.dg == nil && !e.complete.Load() {
		e.dg, e.dgOff, e.dgErr = src.NewDigest(), 0, nil
		c.kickDigestLocked(e) // chunks a previous run cached
	}
	return nil
}

// dropLocked detaches e from the cache and unlinks its files; Files still
// open on it keep reading through their descriptors. Caller holds c.mu and
// e.mu. Unlinking under c.mu guarantees a new entry of the key never finds
// the old files.
func (c *Cache) dropLocked(e *entry, why error) {
	if e.dropped {
		return
	}
	e.dropped, e.dropErr = true, why
	c.drops.Add(1)
	if e.f != nil {
		// Its blocks are freed when the file is closed.
		e.held = true
		c.held.Add(1)
	}
	c.usage.Add(-e.presentB)
	if c.entries[e.key] == e {
		delete(c.entries, e.key)
		c.lru.Remove(e.elem)
		e.elem = nil
	}
	if err := removeFiles(e.dataPath, e.statePath); err != nil {
		c.log.Warn("cache: removing entry", "key", e.key, "err", err)
	}
}

// closeFileLocked closes e's data file, if open. Closing that of a
// dropped entry frees its blocks, which makeRoom may be waiting for.
// Caller holds e.mu.
func (c *Cache) closeFileLocked(e *entry) {
	if e.f == nil {
		return
	}
	e.f.Close()
	e.f = nil
	if e.held {
		e.held = false
		c.held.Add(-1)
		c.drops.Add(1)
	}
}

// release drops a ref taken by a fetch or a flush.
func (c *Cache) release(e *entry) { c.put(e, false, false) }

// unpin drops the pin and ref of an Open or a File; touch moves the entry
// to the front of the LRU (a File was used).
func (c *Cache) unpin(e *entry, touch bool) { c.put(e, true, touch) }

func (c *Cache) put(e *entry, pin, touch bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.refs--
	if pin {
		e.pins--
	}
	if e.refs == 0 {
		c.closeFileLocked(e)
	}
	if e.dropped || c.entries[e.key] != e {
		return
	}
	if e.refs == 0 && !e.hasState {
		// An Open that failed before creating anything.
		delete(c.entries, e.key)
		c.lru.Remove(e.elem)
		e.elem = nil
		return
	}
	if touch {
		c.lru.MoveToFront(e.elem)
	}
	if pin && e.pins == 0 && c.opts.MaxSize > 0 && c.usage.Load() > c.opts.MaxSize {
		c.kickEvict() // it was skipped as pinned
	}
}

// markDirtyLocked queues e for the flusher; urgent ones are persisted at
// once rather than on the next tick. Caller holds e.mu.
func (c *Cache) markDirtyLocked(e *entry, urgent bool) {
	if e.dropped {
		return
	}
	e.dirty = true
	c.dirtyMu.Lock()
	c.dirty[e] = struct{}{}
	if urgent {
		c.urgent[e] = struct{}{}
	}
	c.dirtyMu.Unlock()
	if urgent {
		select {
		case c.flushc <- struct{}{}:
		default:
		}
	}
}

// startFetchLocked starts one request for the chunks [first, end), all
// absent and not in flight, in an owned goroutine. Caller holds e.mu and a
// ref (so e.f is open).
func (c *Cache) startFetchLocked(e *entry, first, end int64, background bool) *fetch {
	ctx, cancel := context.WithCancel(c.ctx)
	off := first * c.chunk
	fe := &fetch{
		first: first, end: end, off: off, limit: min(end*c.chunk, e.size),
		done: make(chan struct{}), cancel: cancel,
		pos: off, next: first, progress: make(chan struct{}), wake: noWake, background: background,
	}
	src, f := e.src, e.f
	e.refs++
	if !c.goOwned(func() { c.runFetch(ctx, e, fe, src, f) }) {
		e.refs--
		cancel()
		fe.err = fmt.Errorf("cache: fetch %s: %w", e.key, errClosed)
		close(fe.done)
		return fe
	}
	for i := first; i < end; i++ {
		e.inflight[i] = fe
	}
	return fe
}

func (c *Cache) runFetch(ctx context.Context, e *entry, fe *fetch, src Source, f *os.File) {
	defer fe.cancel()
	err := c.acquireFetcher(ctx)
	if err == nil {
		err = c.copyRun(ctx, e, fe, src, f)
		<-c.sem
	}
	if err != nil && ctx.Err() != nil && c.ctx.Err() != nil {
		err = fmt.Errorf("cache: fetch %s: %w", src.Key, errClosed)
	}

	e.mu.Lock()
	for i := fe.next; i < fe.end; i++ {
		if e.inflight[i] == fe {
			delete(e.inflight, i) // not filled: the next reader fetches it afresh
		}
	}
	verify := fe.verify
	e.mu.Unlock()
	if verify {
		// The readers that completed the entry wait for the verdict
		// (File.ensure); the fetch reports it too.
		err = c.verify(ctx, e, src, f)
	}
	fe.err = err
	close(fe.done)
	c.release(e)
	if c.opts.MaxSize > 0 && c.usage.Load() > c.opts.MaxSize {
		c.kickEvict()
	}
}

func (c *Cache) kickEvict() {
	select {
	case c.evictc <- struct{}{}:
	default:
	}
}

func (c *Cache) acquireFetcher(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// copyRun streams fe's bytes from src into f through a pooled buffer,
// publishing its progress after every write.
//
// Writes end on writeAlign boundaries of the file, except the last of the
// request and one that a waiting reader needs: a socket hands over what
// it has (64 KiB here, 200 KiB there), and writing it as it came costs
// twice the CPU of aligned writes, because the page cache then builds the
// file out of small pages (large folios need aligned ranges). The bytes
// held back until the boundary arrives are fewer than writeAlign.
func (c *Cache) copyRun(ctx context.Context, e *entry, fe *fetch, src Source, f *os.File) error {
	off, n := fe.off, fe.limit-fe.off
	rc, err := src.Fetch(ctx, off, n)
	if err != nil {
		return fmt.Errorf("cache: fetch %s [%d,+%d): %w", src.Key, off, n, err)
	}
	defer rc.Close()
	preallocate(f, off, n)
	bp := c.bufs.Get().(*[]byte)
	defer c.bufs.Put(bp)
	buf := *bp
	var done int64      // written and published
	start, fill := 0, 0 // buf[start:fill] is read, not written; buf[start] is at off+done
	for done < n {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("cache: fetch %s [%d,+%d): %w", src.Key, off, n, err)
		}
		if len(buf)-fill < minWrite {
			fill = copy(buf, buf[start:fill]) // less than writeAlign
			start = 0
		}
		// Write (and publish) what a slow source has as soon as there is a
		// useful amount, rather than when the buffer is full.
		want := min(int64(len(buf)-fill), n-done-int64(fill-start))
		m, rerr := io.ReadAtLeast(rc, buf[fill:fill+int(want)], int(min(want, minWrite)))
		fill += m
		pend := int64(fill - start)
		w := pend
		if done+pend < n && rerr == nil {
			w = c.writeEnd(e, fe, off+done, off+done+pend) - (off + done)
		}
		if w > 0 {
			if err := c.writeRoom(ctx, e, f, buf[start:start+int(w)], off+done, off+n); err != nil {
				return err
			}
			start += int(w)
			done += w
			c.st.fetched.Add(uint64(w))
			c.advance(e, fe, off+done)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("cache: fetch %s [%d,+%d): %w", src.Key, off, n, rerr)
		}
	}
	if done < n {
		return fmt.Errorf("cache: fetch %s [%d,+%d): source yielded %d bytes: %w", src.Key, off, n, done, io.ErrUnexpectedEOF)
	}
	return nil
}

// writeRoom writes p at off of e's data file f. A full disk below
// MaxSize (a cap larger than the disk, or other files on it) is made room
// on by evicting, as the cap would, for the fetch's bytes up to end.
func (c *Cache) writeRoom(ctx context.Context, e *entry, f *os.File, p []byte, off, end int64) error {
	transient := 0
	for {
		drops := c.drops.Load()
		_, err := f.WriteAt(p, off)
		if err == nil {
			return nil
		}
		if !isNoSpace(err) {
			return diskErr("write", f.Name(), err)
		}
		if !c.makeRoom(ctx, e, end-off, drops) {
			// Nothing to evict; but the other fetches' preallocations
			// hold space for a moment even when they fail (tmpfs
			// gives it back then): retry while the disk has room.
			if free, ok := freeBytes(c.dir); !ok || free < int64(len(p)) || transient >= roomWaits/20 || !sleepCtx(ctx, roomWait) {
				return diskErr("write", f.Name(), err)
			}
			transient++
			continue
		}
		preallocate(f, off, end-off)
	}
}

// writeEnd returns where a write of the bytes [from, to) read by fe
// ends: on the last writeAlign boundary, or further as far as a waiting
// reader needs.
func (c *Cache) writeEnd(e *entry, fe *fetch, from, to int64) int64 {
	end := max(to&^(writeAlign-1), from)
	e.mu.Lock()
	if need := fe.wake; need > end && need <= to {
		end = need
	}
	e.mu.Unlock()
	return end
}

// advance records that fe wrote up to pos: the chunks it completed become
// present (and the entry whole, to be verified by fe), and the readers
// waiting on fe wake up once one of them has its bytes. A fetch writes
// every 64 KiB or so while a reader typically waits for 1 MiB: waking
// them all at every write cost a futile wake-up and sleep of each reader
// (with FUSE, of four or so at a time) per write.
func (c *Cache) advance(e *entry, fe *fetch, pos int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fe.pos = pos
	for fe.next < fe.end && min((fe.next+1)*c.chunk, e.size) <= pos {
		i := fe.next
		fe.next++
		if e.inflight[i] == fe {
			delete(e.inflight, i)
		}
		if e.has(i) {
			continue // filled meanwhile by a fetch that replaced a cancelled one
		}
		e.bits[i>>6] |= 1 << (uint(i) & 63)
		e.present++
		e.presentB += e.chunkLen(i)
		if !e.dropped {
			c.usage.Add(e.chunkLen(i))
		}
		c.markDirtyLocked(e, false)
		if e.present == e.nchunks && !e.complete.Load() && !e.verifying && e.dropErr == nil {
			e.verifying, e.verifyDone, fe.verify = true, make(chan struct{}), true
		}
	}
	if pos >= fe.wake {
		close(fe.progress)
		fe.progress, fe.wake = make(chan struct{}), noWake
	}
	c.kickDigestLocked(e)
}

// verify runs src.Verify on the whole entry, then marks it complete, or
// drops it when the content is wrong. If ctx ended the verdict is unknown:
// the entry stays whole but incomplete and the next Open verifies it.
// Caller set e.verifying and holds a ref.
func (c *Cache) verify(ctx context.Context, e *entry, src Source, f *os.File) error {
	var err error
	switch {
	case e.dg != nil || src.NewDigest != nil:
		err = c.finishDigest(ctx, e, src, f)
	case src.Verify != nil:
		err = src.Verify(ctx, f)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.verifying = false
	close(e.verifyDone)
	switch {
	case err == nil:
		e.complete.Store(true)
		c.markDirtyLocked(e, true)
		stamp(f, e.key, c.log)
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("cache: verify %s: %w", e.key, err)
	default:
		err = fmt.Errorf("cache: verify %s: %w", e.key, err)
		c.log.Warn("cache: content failed verification, dropped", "key", e.key, "err", err)
		c.dropLocked(e, err)
		e.dropErr = err // also when Remove dropped it first
		return err
	}
}

// verdictLocked waits for a running verification and returns why the
// entry was dropped, if it was (or ctx.Err()). Caller holds e.mu; it is
// released while waiting and held again on return.
func (e *entry) verdictLocked(ctx context.Context) error {
	for e.verifying {
		done := e.verifyDone
		e.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			e.mu.Lock()
			return ctx.Err()
		}
		e.mu.Lock()
	}
	return e.dropErr
}

// verifyOnOpen completes an entry that is whole but not verified: a size-0
// entry, or one whose verification was interrupted (by Close, or because
// every reader waiting for it left). Caller holds a ref.
func (c *Cache) verifyOnOpen(ctx context.Context, e *entry) error {
	e.mu.Lock()
	if err := e.verdictLocked(ctx); err != nil {
		e.mu.Unlock()
		return err
	}
	if e.complete.Load() || e.present < e.nchunks {
		e.mu.Unlock()
		return nil
	}
	if err := ctx.Err(); err != nil {
		e.mu.Unlock()
		return err // no verdict: not started
	}
	e.verifying, e.verifyDone = true, make(chan struct{})
	src, f := e.src, e.f
	e.mu.Unlock()
	return c.verify(ctx, e, src, f)
}

// flush persists e's state if it changed: fdatasync the data first, then
// write the sidecar, so the sidecar never claims unsynced chunks.
func (c *Cache) flush(e *entry) error {
	e.mu.Lock()
	if e.dropped || !e.dirty || !e.hasState {
		e.mu.Unlock()
		return nil
	}
	if e.f == nil {
		f, err := os.OpenFile(e.dataPath, os.O_RDWR, 0)
		if err != nil {
			e.mu.Unlock()
			return diskErr("open", e.dataPath, err)
		}
		e.f = f
	}
	e.refs++
	f := e.f
	snap := state{size: e.size, chunkSize: e.chunkSize, complete: e.complete.Load(), bits: append([]uint64(nil), e.bits...)}
	e.dirty = false
	e.mu.Unlock()

	err := datasync(f)
	if err != nil {
		err = diskErr("sync", e.dataPath, err)
	}
	e.mu.Lock()
	if err == nil && !e.dropped && e.hasState {
		err = writeState(e.statePath, &snap)
	}
	if err != nil {
		c.markDirtyLocked(e, false)
	}
	e.mu.Unlock()
	c.release(e)
	return err
}
