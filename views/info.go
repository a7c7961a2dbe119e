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

// ID is the object's id (zero for directories).
func (i *Info) ID() fs.ID { return i.id }

// State says where the content is (zero for directories).
func (i *Info) State() fs.State { return i.state }

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
	i := &Info{name: name, dir: dir, mode: modeFor(dir, r), id: id, modTime: e.modTime}
	if !dir {
		i.size, i.state = e.size, e.state
	}
	return i
}
