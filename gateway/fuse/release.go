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

// releaseSettler wraps the file system go-fuse serves. It runs, once a
// RELEASE has been handled whole, what the Release callbacks deferred to
// then: each RELEASE gets a channel of its own as its cancel channel,
// which the callbacks see as ctx.Done() and name the release by. It also
// counts the handles the kernel reads by passthrough, per inode, which
// go-fuse does not tell: see passedThrough.
type releaseSettler struct {
	gofuse.RawFileSystem

	mu      sync.Mutex
	pending map[<-chan struct{}][]func() // RELEASEs in progress
	writing map[<-chan struct{}]uint64   // OPENs for writing in progress: their inode
	through map[fileKey]bool             // handles opened with passthrough
	inodes  map[uint64]int               // how many of them each inode has
}

// fileKey names an open handle as the kernel does.
type fileKey struct{ node, fh uint64 }

func newReleaseSettler(raw gofuse.RawFileSystem) *releaseSettler {
	return &releaseSettler{RawFileSystem: raw, pending: map[<-chan struct{}][]func(){},
		writing: map[<-chan struct{}]uint64{}, through: map[fileKey]bool{}, inodes: map[uint64]int{}}
}

func (s *releaseSettler) Open(cancel <-chan struct{}, in *gofuse.OpenIn, out *gofuse.OpenOut) gofuse.Status {
	w := writeFlags(in.Flags)
	if w {
		s.mu.Lock()
		s.writing[cancel] = in.NodeId
		s.mu.Unlock()
	}
	st := s.RawFileSystem.Open(cancel, in, out)
	if w || (st.Ok() && out.OpenFlags&gofuse.FOPEN_PASSTHROUGH != 0) {
		s.mu.Lock()
		delete(s.writing, cancel)
		if st.Ok() && out.OpenFlags&gofuse.FOPEN_PASSTHROUGH != 0 {
			s.through[fileKey{in.NodeId, out.Fh}] = true
			s.inodes[in.NodeId]++
		}
		s.mu.Unlock()
	}
	return st
}

func (s *releaseSettler) Release(cancel <-chan struct{}, in *gofuse.ReleaseIn) {
	own := s.begin()
	s.RawFileSystem.Release(own, in)
	s.mu.Lock()
	if k := (fileKey{in.NodeId, in.Fh}); s.through[k] {
		delete(s.through, k)
		if s.inodes[in.NodeId]--; s.inodes[in.NodeId] == 0 {
			delete(s.inodes, in.NodeId)
		}
	}
	s.mu.Unlock()
	s.end(own)
}

// Rename and Unlink run, once go-fuse has moved or dropped the name in
// its inode tree, what their callbacks deferred to then: the hold on the
// node whose path changes (node.holdPath), so that no push computes its
// path in between, from a tree that does not have the change yet.
func (s *releaseSettler) Rename(cancel <-chan struct{}, in *gofuse.RenameIn, oldName, newName string) gofuse.Status {
	own := s.begin()
	defer s.end(own)
	return s.RawFileSystem.Rename(own, in, oldName, newName)
}

func (s *releaseSettler) Unlink(cancel <-chan struct{}, in *gofuse.InHeader, name string) gofuse.Status {
	own := s.begin()
	defer s.end(own)
	return s.RawFileSystem.Unlink(own, in, name)
}

// begin gives a request a cancel channel of its own (never closed: these
// requests are not interrupted), by which its callbacks defer work to
// end (afterRelease).
func (s *releaseSettler) begin() chan struct{} {
	own := make(chan struct{})
	s.mu.Lock()
	s.pending[own] = nil
	s.mu.Unlock()
	return own
}

// end runs what the callbacks of the request deferred.
func (s *releaseSettler) end(own chan struct{}) {
	s.mu.Lock()
	after := s.pending[own]
	delete(s.pending, own)
	s.mu.Unlock()
	for _, fn := range after {
		fn()
	}
}

// passedThrough tells an Open callback for writing (named by its ctx)
// whether its inode has handles the kernel reads by passthrough. The
// kernel fails an open of such an inode in any other mode (EIO), and a
// writer cannot share the readers' backing file: it is the stored
// content itself.
func (s *releaseSettler) passedThrough(ctx context.Context) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.writing[ctx.Done()]
	return ok && s.inodes[id] > 0
}

// passthroughs counts the handles open with passthrough (for tests).
func (s *releaseSettler) passthroughs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.through)
}

// afterRelease runs fn once the RELEASE (or RENAME, UNLINK) whose
// callback got ctx is done, or now when ctx is not such a request's (a
// handle of our own, closed by us).
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
