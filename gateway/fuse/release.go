package fuse

import (
	"context"
	"sync"

	gofuse "github.com/hanwen/go-fuse/v2/fuse"
)

// go-fuse keeps one backing file (passthrough) per inode with a count of
// the handles using it, but its RELEASE drops that count for every
// handle of the inode, also one opened without passthrough (a writer, a
// cached reader), after our Release callback has returned. Such a
// release racing a passthrough open of the same inode closes the backing
// file the open has just been answered with, and the kernel fails that
// open with EIO. So an inode offers no passthrough while it has a handle
// without passthrough that go-fuse has not finished releasing
// (node.cachedOpens, PassthroughFd): the count is dropped once the whole
// RELEASE is done, by releaseSettler.

// releaseSettler wraps the file system go-fuse serves and runs, once a
// RELEASE has been handled whole, what the Release callbacks deferred to
// then. Each RELEASE gets a channel of its own as its cancel channel,
// which the callbacks see as ctx.Done() and name the release by.
type releaseSettler struct {
	gofuse.RawFileSystem

	mu      sync.Mutex
	pending map[<-chan struct{}][]func() // RELEASEs in progress
}

func newReleaseSettler(raw gofuse.RawFileSystem) *releaseSettler {
	return &releaseSettler{RawFileSystem: raw, pending: map[<-chan struct{}][]func(){}}
}

func (s *releaseSettler) Release(cancel <-chan struct{}, in *gofuse.ReleaseIn) {
	own := make(chan struct{}) // never closed: a release is not interrupted
	s.mu.Lock()
	s.pending[own] = nil
	s.mu.Unlock()
	s.RawFileSystem.Release(own, in)
	s.mu.Lock()
	after := s.pending[own]
	delete(s.pending, own)
	s.mu.Unlock()
	for _, fn := range after {
		fn()
	}
}

// afterRelease runs fn once the RELEASE whose callback got ctx is done,
// or now when ctx is not a RELEASE's (a handle of our own, closed by us).
func (f *filesys) afterRelease(ctx context.Context, fn func()) {
	if s := f.settler; s != nil {
		s.mu.Lock()
		fns, ok := s.pending[ctx.Done()]
		if ok {
			s.pending[ctx.Done()] = append(fns, fn)
		}
		s.mu.Unlock()
		if ok {
			return
		}
	}
	fn()
}
