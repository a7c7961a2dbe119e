package fuse

import (
	"strings"

	ffs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/datagate/datagate/views"
)

// follow applies the change feed to the kernel's caches until the feed
// closes or the mount ends. Listings are never cached by the kernel (no
// FOPEN_CACHE_DIR), so a new object shows in the next listing anyway;
// what must go are names and pages that are now wrong: a removed or
// replaced object's dentry, a re-crawled object's pages and attributes.
// Notifications run here, never inside a FUSE request: the kernel may
// hold a directory lock while it waits for one.
func (f *filesys) follow(events <-chan views.Event) {
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Resync {
				f.invalidateAll()
				continue
			}
			for _, c := range ev.Changes {
				if p, ok := f.tree.UserPath(c.View, c.Path); ok {
					f.invalidate(p, c)
				}
			}
		case <-f.life.Done():
			return
		}
	}
}

// invalidate drops what the kernel may cache about path p.
func (f *filesys) invalidate(p string, c views.PathChange) {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	if len(segs) == 0 || segs[0] == "" {
		return
	}
	parent := f.root.EmbeddedInode()
	for _, s := range segs[:len(segs)-1] {
		if parent = parent.GetChild(s); parent == nil {
			return // the kernel knows nothing below
		}
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
			ch.NotifyContent(0, 0) // attributes and every page
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

// invalidateAll drops every name the kernel holds (after missed changes).
func (f *filesys) invalidateAll() {
	var walk func(in *ffs.Inode)
	walk = func(in *ffs.Inode) {
		for name, ch := range in.Children() {
			if ch.IsDir() {
				walk(ch)
			}
			in.NotifyEntry(name)
		}
	}
	walk(f.root.EmbeddedInode())
}
