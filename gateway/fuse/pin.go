package fuse

import (
	"context"
	"sync"

	"github.com/datagate/datagate/fs"
)

// A small file opens without asking the store (quickOpen) and its handle
// opens the object, by id, at the first READ the kernel's page cache does
// not serve. When this mount drops that object in between (unlink, rename
// over it, a push replacing it), the handle opens it first (pins), so a
// file open for reading stays readable, as on a local file system. The
// same object may be open through several inodes (a name looked up again
// once replaced, other views), so handles are found by object id.
type pins struct {
	mu       sync.Mutex
	lazy     map[fs.ID]map[*readHandle]bool // quick opens that have not opened their object
	dropping map[fs.ID]int                  // objects being dropped: no quick opens of them
}

// add records a quick open of h.id; false when the object is being
// dropped, and the open must open it at once instead.
func (p *pins) add(h *readHandle) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dropping[h.id] > 0 {
		return false
	}
	if p.lazy == nil {
		p.lazy = map[fs.ID]map[*readHandle]bool{}
	}
	hs := p.lazy[h.id]
	if hs == nil {
		hs = map[*readHandle]bool{}
		p.lazy[h.id] = hs
	}
	hs[h] = true
	return true
}

// remove forgets h: it opened its object, or it is released.
func (p *pins) remove(h *readHandle) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if hs := p.lazy[h.id]; hs != nil {
		delete(hs, h)
		if len(hs) == 0 {
			delete(p.lazy, h.id)
		}
	}
}

// pin opens the objects of the quick opens of id before it is dropped,
// and keeps new quick opens of it away until done is called.
func (p *pins) pin(ctx context.Context, id fs.ID) (done func()) {
	if id == (fs.ID{}) {
		return func() {}
	}
	p.mu.Lock()
	if p.dropping == nil {
		p.dropping = map[fs.ID]int{}
	}
	p.dropping[id]++
	hs := make([]*readHandle, 0, len(p.lazy[id]))
	for h := range p.lazy[id] {
		hs = append(hs, h)
	}
	p.mu.Unlock()
	for _, h := range hs {
		h.file(ctx) // a failure shows at its first read
	}
	return func() {
		p.mu.Lock()
		if p.dropping[id]--; p.dropping[id] == 0 {
			delete(p.dropping, id)
		}
		p.mu.Unlock()
	}
}

// pinPath pins the object at p, if any: it is about to be dropped.
func (f *filesys) pinPath(ctx context.Context, p string) (done func()) {
	info, err := f.tree.Stat(ctx, p)
	if err != nil || info.IsDir() {
		return func() {}
	}
	return f.pins.pin(ctx, info.ID())
}
