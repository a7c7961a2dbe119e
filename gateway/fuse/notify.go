package fuse

import (
	"strings"
	"time"

	ffs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/datagate/datagate/views"
)

// follow applies the change feed to the kernel's caches until the feed
// closes or the mount ends. The kernel keeps names, attributes, listings
// (FOPEN_CACHE_DIR) and pages (FOPEN_KEEP_CACHE) for long; what changed
// is dropped here: a removed or replaced object's dentry, a re-crawled
// object's pages and attributes, and the kept listing of every directory
// whose entries changed (an added or removed path changes its parent's
// listing, and its ancestors' when it makes or empties a directory).
// Notifications run here, never inside a FUSE request: the kernel may
// hold a directory lock while it waits for one.
//
// A listing the kernel was filling when the change came may still be kept
// without it: the kernel stores a READDIR reply after we sent it, and a
// notification that overtakes that finds nothing to drop (pages of a
// READ in flight alike). So every inode dropped is dropped once more
// relistAfter later.
func (f *filesys) follow(events <-chan views.Event) {
	again := map[*ffs.Inode]bool{}
	timer := time.NewTimer(relistAfter)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			f.eventAt.Store(time.Now().UnixNano())
			if ev.Resync {
				f.invalidateAll()
				continue
			}
			dirs := map[*ffs.Inode]bool{}
			for _, c := range ev.Changes {
				if p, ok := f.tree.UserPath(c.View, c.Path); ok {
					f.invalidate(p, c, dirs)
				}
			}
			if len(dirs) > 0 && len(again) == 0 {
				timer.Reset(relistAfter)
			}
			for in := range dirs {
				in.NotifyContent(0, 0)
				again[in] = true
			}
		case <-timer.C:
			for in := range again {
				in.NotifyContent(0, 0)
			}
			clear(again)
		case <-f.life.Done():
			return
		}
	}
}

// relistAfter is when a dropped listing is dropped again (see follow).
const relistAfter = 250 * time.Millisecond

// invalidate drops what the kernel may cache about path p, and adds to
// dirs the inodes whose content the caller must drop: directories whose
// kept listings p's change makes wrong, a modified file's pages.
func (f *filesys) invalidate(p string, c views.PathChange, dirs map[*ffs.Inode]bool) {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	if len(segs) == 0 || segs[0] == "" {
		return
	}
	parent := f.root.EmbeddedInode()
	listed := c.Op != views.Modified // a name came or went
	for _, s := range segs[:len(segs)-1] {
		if listed {
			// Cheap and safe: an ancestor's listing changes only
			// when a directory is made or emptied, which the feed
			// does not say; a spurious drop costs one re-listing.
			dirs[parent] = true
		}
		if parent = parent.GetChild(s); parent == nil {
			return // the kernel knows nothing below
		}
	}
	if listed {
		dirs[parent] = true
	}
	name := segs[len(segs)-1]
	ch := parent.GetChild(name)
	var cn *node
	if ch != nil {
		cn, _ = ch.Operations().(*node)
	}
	switch c.Op {
	case views.Modified:
		if cn != nil {
			cn.mu.Lock()
			cn.xattr = nil
			cn.mu.Unlock()
			dirs[ch] = true // attributes and every page, now and again later
		}
	case views.Removed:
		switch {
		case cn == nil:
			parent.NotifyEntry(name)
		case cn.writing() || (!cn.dir && cn.id() != c.ID):
			// Being written here (its writer is the truth), or the kernel already has the
			// object that replaced it.
		default:
			parent.NotifyDelete(name, ch)
		}
	case views.Added:
		if cn != nil && !cn.writing() && !cn.dir && cn.id() != c.ID {
			parent.NotifyEntry(name) // the name now holds another object
		}
	}
}

// invalidateAll drops every name and listing the kernel holds (after
// missed changes).
func (f *filesys) invalidateAll() {
	var walk func(in *ffs.Inode)
	walk = func(in *ffs.Inode) {
		for name, ch := range in.Children() {
			if ch.IsDir() {
				walk(ch)
			}
			in.NotifyEntry(name)
		}
		in.NotifyContent(0, 0) // its kept listing
	}
	walk(f.root.EmbeddedInode())
}
