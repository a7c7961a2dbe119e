package views

import (
	"sync"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
)

// ChangeOp says what happened at a path.
type ChangeOp uint8

const (
	Added    ChangeOp = iota // an object (or directory marker) appeared at the path
	Removed                  // it left the path
	Modified                 // it is still there with new content or attributes
)

func (o ChangeOp) String() string { return [...]string{"added", "removed", "modified"}[o] }

// PathChange is one path of one view that changed.
type PathChange struct {
	View string
	Path string // in the view; for a marker, the directory
	Op   ChangeOp
	ID   fs.ID
	Dir  bool // a directory marker (Mkdir/Rmdir)
}

// Event is one index change translated into paths, or a resync order.
type Event struct {
	Changes []PathChange
	// Resync: changes were missed (a slow subscriber); drop every cached
	// listing and attribute.
	Resync bool
}

// Watcher delivers Events on C until Close. Like the index feed it never
// blocks writers: a subscriber that falls behind gets a Resync.
type Watcher struct {
	C <-chan Event

	sub   *index.Subscription
	out   chan Event
	done  chan struct{}
	close sync.Once
	wg    sync.WaitGroup
}

// Watch subscribes to ix's change feed and translates every change into
// the paths it removes and adds in each view of set (the views current
// when the change is translated). buf bounds the queued events (min 16).
func Watch(set *Set, ix *index.Index, buf int) *Watcher {
	if buf < 16 {
		buf = 16
	}
	w := &Watcher{sub: ix.Subscribe(buf), out: make(chan Event, buf), done: make(chan struct{})}
	w.C = w.out
	w.wg.Add(1)
	go w.run(set)
	return w
}

// Close stops the watcher and closes C.
func (w *Watcher) Close() {
	w.close.Do(func() {
		close(w.done)
		w.sub.Close()
		w.wg.Wait()
	})
}

func (w *Watcher) run(set *Set) {
	defer w.wg.Done()
	defer close(w.out)
	// behind: an event was dropped because C was full. Until a Resync is
	// delivered, changes are drained and discarded (the resync covers
	// them), so the index feed never backs up and the order is never
	// lost even when no further change comes.
	behind := false
	for {
		if behind {
			select {
			case w.out <- Event{Resync: true}:
				behind = false
			case _, ok := <-w.sub.C:
				if !ok {
					return
				}
			case <-w.done:
				return
			}
			continue
		}
		var ch index.Change
		var ok bool
		select {
		case ch, ok = <-w.sub.C:
			if !ok {
				return
			}
		case <-w.done:
			return
		}
		ev := Event{Resync: ch.Op == index.OpOverflow}
		if !ev.Resync {
			ev.Changes = Translate(set, ch)
			if len(ev.Changes) == 0 {
				continue
			}
		}
		select {
		case w.out <- ev:
		default:
			behind = true
		}
	}
}

// Translate turns one index change into path changes, per view.
func Translate(set *Set, ch index.Change) []PathChange {
	snap := set.cur.Load()
	var out []PathChange
	olds := pathsIn(snap, ch.Old)
	news := pathsIn(snap, ch.New)
	for _, o := range olds {
		op := Removed
		for _, n := range news {
			if n.View == o.View && n.Path == o.Path && n.Dir == o.Dir {
				op = Modified
			}
		}
		o.Op = op
		out = append(out, o)
	}
	for _, n := range news {
		seen := false
		for _, o := range olds {
			if n.View == o.View && n.Path == o.Path && n.Dir == o.Dir {
				seen = true
			}
		}
		if !seen {
			n.Op = Added
			out = append(out, n)
		}
	}
	return out
}

func pathsIn(snap *snapshot, o *fs.Object) []PathChange {
	if o == nil {
		return nil
	}
	if dir, ok := o.Meta[MetaDirPath]; ok {
		if v := snap.views[o.Meta[MetaDirView]]; v != nil && dir != "" {
			return []PathChange{{View: v.name, Path: dir, ID: o.ID, Dir: true}}
		}
		return nil
	}
	var out []PathChange
	meta := renderMeta(o)
	for _, v := range snap.list {
		if p, ok := v.pathOf(o, meta); ok {
			out = append(out, PathChange{View: v.name, Path: p, ID: o.ID})
		}
	}
	return out
}

// UserPath returns the path under which the tree's user sees path p of
// view, if they see that view ("/"-rooted).
func (t *Tree) UserPath(view, p string) (string, bool) {
	vs, _ := t.visible()
	for _, v := range vs {
		if v.name != view {
			continue
		}
		if len(vs) == 1 && !t.viewDirs {
			return "/" + p, true
		}
		if p == "" {
			return "/" + view, true
		}
		return "/" + view + "/" + p, true
	}
	return "", false
}
