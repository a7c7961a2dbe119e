package views

// Path collisions: two objects at one file path of a view. The index
// keeps both (a path entry per object), and the newest is the one served.
// Uploads through a Tree end by removing the older ones (Tree.supersede):
// an upload that committed meanwhile to the same path is one collision.
// Registered objects whose metadata renders to the path of another are
// not counted: the Deriver cannot see the other object without a lookup
// per derived key.

// collided counts n objects found superseded at a path.
func (s *Set) collided(n int) { s.collisions.Add(uint64(n)) }

// Collisions is the number of objects found superseded at a path they
// shared with a newer one since the set was made (for metrics).
func (s *Set) Collisions() uint64 { return s.collisions.Load() }
