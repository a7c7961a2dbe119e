package s3

import (
	"crypto/sha256"
	"encoding"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// orderHashes keeps, for each multipart upload of this process, the
// SHA-256 of its parts in part-number order as they are spooled: a part
// that is next in order is hashed from its bytes as they arrive, the
// others from their spool files (still in the page cache) once the parts
// before them are hashed. Complete then hands the store the whole
// object's SHA-256 with the part files, hashing only what is left (parts
// listed out of the hashed sequence), instead of the store reading the
// copy back and hashing it in one serial pass while the client waits.
//
// Only bytes hashed here count, and only for the very files Complete
// copies: every hashed part records its spool file's identity (device,
// inode, size, modification time) — for a part in the assembly file, its
// record's: the record is created once the part's bytes are written, and
// its range is never written again while it exists (assembly.go) — and
// the hashed sequence is used up to the first part whose listed file
// differs (re-uploaded, or never seen by this process, e.g. after a
// restart). The state is in memory only; an upload without it is hashed
// by the store as before.
type orderHashes struct {
	mu  sync.Mutex
	ups map[string]*orderHash // by upload id
	wg  sync.WaitGroup        // catch-up goroutines

	// What Completes got: bytes taken hashed from the sequence, bytes
	// hashed at Complete, Completes left to the store's hashing.
	ahead, atComplete, unhashed atomic.Int64
}

func newOrderHashes() *orderHashes { return &orderHashes{ups: map[string]*orderHash{}} }

// orderHash is one upload's in-order hash.
type orderHash struct {
	mu      sync.Mutex
	idle    *sync.Cond       // signalled when catchingUp ends
	h       hash.Hash        // state after seq, unless busy
	seq     []hashedPart     // parts hashed, in order: numbers 1, 2, ...
	spooled map[int]partFile // the latest spool of each part
	busy    bool             // a goroutine feeds h
	// catchingUp: the busy goroutine hashes spool files (bounded work,
	// worth waiting for), not a request's body.
	catchingUp bool
	staleFrom  int  // > 0: a part from this number on was re-uploaded while busy
	done       bool // completed, aborted or removed: no more hashing
}

type hashedPart struct {
	n     int
	fi    os.FileInfo // of the spool file (or record) hashed
	state []byte      // h's state after this part
}

// samePart tells whether two stats are of the same unchanged spool file.
// Spool files are written once and only ever replaced by a rename.
func samePart(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// get returns upload id's hash, created on first use.
func (o *orderHashes) get(id string) *orderHash {
	o.mu.Lock()
	defer o.mu.Unlock()
	u := o.ups[id]
	if u == nil {
		u = &orderHash{h: sha256.New(), spooled: map[int]partFile{}}
		u.idle = sync.NewCond(&u.mu)
		o.ups[id] = u
	}
	return u
}

// take removes upload id's hash and stops it; nil if there was none.
func (o *orderHashes) take(id string) *orderHash {
	o.mu.Lock()
	u := o.ups[id]
	delete(o.ups, id)
	o.mu.Unlock()
	if u != nil {
		u.mu.Lock()
		u.done = true
		u.mu.Unlock()
	}
	return u
}

// wait waits for the catch-up goroutines (Server.Close).
func (o *orderHashes) wait() { o.wg.Wait() }

// next is the part number the hashed sequence continues with. Under mu.
func (u *orderHash) next() int { return len(u.seq) + 1 }

// truncate drops the hashed parts numbered from n on and restores h to
// the state before them. Under mu, not busy.
func (u *orderHash) truncate(n int) {
	if n > len(u.seq) {
		return
	}
	u.seq = u.seq[:n-1]
	u.restore()
}

// restore sets h to the state after seq. Under mu, not busy.
func (u *orderHash) restore() {
	u.h = sha256.New()
	if len(u.seq) > 0 {
		if err := u.h.(encoding.BinaryUnmarshaler).UnmarshalBinary(u.seq[len(u.seq)-1].state); err != nil {
			u.seq = nil // cannot happen: our own marshalled state
			u.h = sha256.New()
		}
	}
}

// begin is called before part n is spooled. It returns the hash to feed
// the part's bytes to when n is next in order and nobody else feeds it,
// else nil. A non-nil answer must be followed by end(..., true).
func (u *orderHash) begin(n int) io.Writer {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done || u.busy {
		return nil
	}
	u.truncate(n) // a new upload of a hashed part
	if n != u.next() {
		return nil
	}
	u.busy = true
	return u.h
}

// end records part n's outcome: the part when it was spooled (renamed
// into place, or recorded in the assembly), nil when it failed. streamed
// says the caller fed h (begin returned it). It starts catching up from
// the spooled parts when the sequence can go on.
func (u *orderHash) end(o *orderHashes, n int, p *partFile, streamed bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if p != nil {
		u.spooled[n] = *p
	}
	if streamed {
		u.busy = false
		if p != nil && !u.done {
			u.seq = append(u.seq, hashedPart{n: n, fi: p.fi, state: marshalState(u.h)})
		} else {
			u.restore()
		}
	} else if p != nil && n < u.next() {
		// Re-uploaded after its first copy was hashed.
		if u.busy {
			u.staleFrom = minPositive(u.staleFrom, n)
		} else {
			u.truncate(n)
		}
	}
	u.settle(o)
}

func minPositive(a, b int) int {
	if a <= 0 {
		return b
	}
	return min(a, b)
}

// settle applies a pending invalidation and starts a catch-up goroutine
// when the next part is spooled and nobody hashes. Under mu.
func (u *orderHash) settle(o *orderHashes) {
	if u.busy {
		return
	}
	if u.staleFrom > 0 {
		u.truncate(u.staleFrom)
		u.staleFrom = 0
	}
	if u.done {
		return
	}
	if _, ok := u.spooled[u.next()]; !ok {
		return
	}
	u.busy, u.catchingUp = true, true
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		u.catchUp(o)
	}()
}

// catchUp hashes spooled parts from their files while they continue the
// sequence. Runs busy.
func (u *orderHash) catchUp(o *orderHashes) {
	for {
		u.mu.Lock()
		p, ok := u.spooled[u.next()]
		n := u.next()
		if !ok || u.done || u.staleFrom > 0 {
			u.busy, u.catchingUp = false, false
			u.idle.Broadcast()
			u.settle(o)
			u.mu.Unlock()
			return
		}
		h := u.h
		u.mu.Unlock()
		err := hashPart(h, p)
		u.mu.Lock()
		if err == nil {
			u.seq = append(u.seq, hashedPart{n: n, fi: p.fi, state: marshalState(h)})
		} else {
			// Replaced or removed meanwhile: a newer spool of part n
			// starts a catch-up of its own when it is recorded.
			u.restore()
			if q, ok := u.spooled[n]; ok && samePart(q.fi, p.fi) {
				delete(u.spooled, n)
			}
		}
		u.mu.Unlock()
	}
}

// sum returns the SHA-256 of the files of parts, in order (Complete's
// list, after its directory rename), from the hashed sequence as far as
// it matches them and hashing the rest from the files; nil if the first
// part is not hashed or a file cannot be read as listed. It stops the
// hashing of the upload.
func (u *orderHash) sum(o *orderHashes, parts []partFile) []byte {
	u.mu.Lock()
	u.done = true
	for u.catchingUp {
		u.idle.Wait()
	}
	seq := u.seq
	u.mu.Unlock()
	h := sha256.New()
	i := 0
	for i < len(parts) && i < len(seq) && seq[i].n == parts[i].n && samePart(seq[i].fi, parts[i].fi) {
		i++
	}
	if i == 0 {
		// Nothing to start from: the store's hashing of its copy, beside
		// the copy, costs less time than a serial pass first.
		o.unhashed.Add(1)
		return nil
	}
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(seq[i-1].state); err != nil {
		o.unhashed.Add(1)
		return nil
	}
	var ahead, tail int64
	for _, p := range parts[:i] {
		ahead += p.size()
	}
	for _, p := range parts[i:] {
		if err := hashPart(h, p); err != nil {
			o.unhashed.Add(1)
			return nil
		}
		tail += p.size()
	}
	o.ahead.Add(ahead)
	o.atComplete.Add(tail)
	return h.Sum(nil)
}

// hashPart feeds h part p's bytes, from its spool file, which must still
// be the one listed, or from the assembly file while p's record is still
// the one listed.
func hashPart(h hash.Hash, p partFile) error {
	f, err := os.Open(p.data)
	if err != nil {
		return err
	}
	defer f.Close()
	var now os.FileInfo
	if p.inAssembly() {
		now, err = os.Stat(p.name)
	} else {
		now, err = f.Stat()
	}
	if err != nil {
		return err
	}
	if !samePart(now, p.fi) {
		return fmt.Errorf("s3: part file %s changed", p.name)
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	n, err := io.CopyBuffer(onlyWriter{h}, onlyReader{io.NewSectionReader(f, p.off, p.sz)}, *bp)
	if err == nil && n != p.sz {
		err = fmt.Errorf("s3: part %s: read %d of %d bytes", p.name, n, p.sz)
	}
	return err
}

// onlyWriter and onlyReader hide ReadFrom/WriteTo so io.CopyBuffer uses
// the buffer given.
type onlyWriter struct{ io.Writer }
type onlyReader struct{ io.Reader }

func marshalState(h hash.Hash) []byte {
	b, _ := h.(encoding.BinaryMarshaler).MarshalBinary()
	return b
}

// prune drops the hashes of uploads that exists says are gone.
func (o *orderHashes) prune(exists func(id string) bool) {
	for _, id := range uploadIDs(&o.mu, o.ups) {
		if !exists(id) {
			o.take(id)
		}
	}
}

// uploadIDs returns the ids of ups, read under mu: the caller then looks
// each up on disk without holding mu.
func uploadIDs[V any](mu *sync.Mutex, ups map[string]V) []string {
	mu.Lock()
	defer mu.Unlock()
	ids := make([]string, 0, len(ups))
	for id := range ups {
		ids = append(ids, id)
	}
	return ids
}
