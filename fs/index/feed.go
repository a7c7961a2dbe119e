package index

import "github.com/datagate/datagate/fs"

// Op is the kind of a Change.
type Op uint8

const (
	OpPut      Op = iota // New was written (Old is the previous version, or nil)
	OpDelete             // Old was removed
	OpOverflow           // the subscriber fell behind and missed changes: resync
)

// Change is one object's change, published after its commit is durable.
type Change struct {
	Op       Op
	Old, New *fs.Object
}

// Subscription receives changes on C until Close.
type Subscription struct {
	C <-chan Change

	ix *Index
	c  chan Change
	// guarded by ix.mu
	closed     bool
	overflowed bool
}

// Subscribe returns a subscription buffering up to buf changes (min 16).
func (ix *Index) Subscribe(buf int) *Subscription {
	if buf < 16 {
		buf = 16
	}
	c := make(chan Change, buf)
	s := &Subscription{C: c, c: c, ix: ix}
	ix.mu.Lock()
	ix.subs[s] = struct{}{}
	ix.mu.Unlock()
	return s
}

// Close stops delivery and closes C.
func (s *Subscription) Close() {
	s.ix.mu.Lock()
	defer s.ix.mu.Unlock()
	delete(s.ix.subs, s)
	s.closeLocked()
}

func (s *Subscription) closeLocked() {
	if !s.closed {
		s.closed = true
		close(s.c)
	}
}

// publish delivers changes without blocking: a full subscriber gets one
// OpOverflow as soon as there is room, and nothing more until then.
func (ix *Index) publish(changes []Change) {
	if len(changes) == 0 {
		return
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for s := range ix.subs {
		for _, ch := range changes {
			if s.overflowed {
				select {
				case s.c <- Change{Op: OpOverflow}:
					s.overflowed = false
				default:
				}
				if s.overflowed {
					break
				}
			}
			select {
			case s.c <- ch:
			default:
				s.overflowed = true
			}
		}
	}
}
