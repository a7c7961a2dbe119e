package views

import (
	iofs "io/fs"
	"time"

	"github.com/datagate/datagate/fs"
)

// Info describes a file or directory of a Tree. It implements
// io/fs.FileInfo (and so os.FileInfo) for the front-ends.
type Info struct {
	name    string
	dir     bool
	size    int64
	modTime time.Time
	mode    iofs.FileMode
	id      fs.ID
	state   fs.State
	etag    string
	rights  Rights
	obj     *fs.Object // the object it was made from, if loaded (private copy)
}

// Name is the base name ("/" for the root).
func (i *Info) Name() string { return i.name }

// Size is the content size; -1 when not yet known (a registered object
// whose source gave no size: it is learnt on first read). 0 for
// directories.
func (i *Info) Size() int64 { return i.size }

// Mode gives permission bits that reflect the user's rights: writable
// when they have w, and ModeDir for directories.
func (i *Info) Mode() iofs.FileMode { return i.mode }

// ModTime is the object's modification time; for a directory, its
// marker's (Mkdir) or the zero time for a directory implied by objects.
func (i *Info) ModTime() time.Time { return i.modTime }

func (i *Info) IsDir() bool { return i.dir }
func (i *Info) Sys() any    { return nil }

// Rights are the user's rights on the view holding the file or
// directory (0 for the root of several views): a front-end checks them
// from a kept Info without asking the Tree again.
func (i *Info) Rights() Rights { return i.rights }

// ID is the object's id (zero for directories).
func (i *Info) ID() fs.ID { return i.id }

// State says where the content is (zero for directories).
func (i *Info) State() fs.State { return i.state }

// ETag is the object's entity tag: the hex MD5 of pushed content, the
// given one for S3 multipart uploads (CreateOptions.ETag), the source's
// for registered objects. "" for directories and when unknown (a path
// index written before ETags were kept; fsck --repair rewrites it). It is
// in every Info, listings included, at no extra cost.
func (i *Info) ETag() string { return i.etag }

// Object reports whether the Info was made from the whole object, so that
// MD5, SHA256, Meta and ContentType are known: true for Tree.StatObject,
// Tree.SetMeta, Tree.Create and File.Stat; false for Stat, ReadDir and
// directories, which read only the path index.
func (i *Info) Object() bool { return i.obj != nil }

// Record is the object the Info was made from (see Object), nil when it
// was made from the path index alone. Not to be modified.
func (i *Info) Record() *fs.Object { return i.obj }

// MD5 is the content's MD5 (16 bytes), nil when unknown or not loaded
// (see Object).
func (i *Info) MD5() []byte {
	if i.obj == nil {
		return nil
	}
	return i.obj.MD5
}

// SHA256 is the content's SHA-256 (32 bytes), nil when unknown or not
// loaded (see Object).
func (i *Info) SHA256() []byte {
	if i.obj == nil {
		return nil
	}
	return i.obj.SHA256
}

// Meta is the object's metadata (path keys, set: and the rest), nil when
// not loaded (see Object). The map is the Info's own: do not modify it.
func (i *Info) Meta() map[string]string {
	if i.obj == nil {
		return nil
	}
	return i.obj.Meta
}

// ContentType is the object's content type, "" when unset or not loaded.
func (i *Info) ContentType() string {
	if i.obj == nil {
		return ""
	}
	return i.obj.ContentType
}

var _ iofs.FileInfo = (*Info)(nil)

func modeFor(dir bool, r Rights) iofs.FileMode {
	m := iofs.FileMode(0o444)
	if dir {
		m = iofs.ModeDir | 0o555
	}
	if r&Write != 0 {
		m |= 0o200
	}
	return m
}

func newInfo(name string, dir bool, r Rights, id fs.ID, e entry) *Info {
	i := &Info{name: name, dir: dir, mode: modeFor(dir, r), id: id, modTime: e.modTime, rights: r}
	if !dir {
		i.size, i.state, i.etag = e.size, e.state, e.etag
	}
	return i
}

// objInfo is the Info of a file made from its object o, which the Info
// keeps (o must not be modified afterwards).
func objInfo(name string, r Rights, o *fs.Object) *Info {
	i := newInfo(name, false, r, o.ID, entryOf(o, false))
	i.obj = o
	return i
}
