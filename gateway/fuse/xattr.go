package fuse

import (
	"context"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/datagate/datagate/views"
)

// xattrPrefix namespaces the attributes: user.datagate.<key> for each
// metadata key, plus id, sha256 and md5.
const xattrPrefix = "user.datagate."

// xattrTTL is how long a node keeps the attributes it read, so that
// getfattr -d (list, then two calls per name) loads the object once.
const xattrTTL = time.Second

// xattrs returns the extended attributes of file n.
func (n *node) xattrs(ctx context.Context) (map[string]string, syscall.Errno) {
	if n.dir {
		return nil, 0
	}
	n.mu.Lock()
	gen := n.fsys.xattrGen.Load()
	if n.xattr != nil && time.Since(n.xattrAt) < xattrTTL && n.xattrGen == gen {
		m := n.xattr
		n.mu.Unlock()
		return m, 0
	}
	n.mu.Unlock()
	p, ok := n.path()
	if !ok || n.pending() {
		return nil, 0
	}
	ctx, cancel := n.fsys.opCtx(ctx, false)
	defer cancel()
	// The object alone: no reader, no cache, no provider.
	o, err := n.fsys.tree.Object(ctx, p)
	if err != nil {
		return nil, n.fsys.errno(err)
	}
	m := map[string]string{xattrPrefix + "id": o.ID.String()}
	if s := o.SHA256Hex(); s != "" {
		m[xattrPrefix+"sha256"] = s
	}
	if s := o.MD5Hex(); s != "" {
		m[xattrPrefix+"md5"] = s
	}
	for k, v := range o.Meta {
		if !strings.HasPrefix(k, "dg.") {
			if _, builtin := m[xattrPrefix+k]; !builtin {
				m[xattrPrefix+k] = v
			}
		}
	}
	n.mu.Lock()
	n.xattr, n.xattrAt, n.xattrGen = m, time.Now(), gen
	n.mu.Unlock()
	return m, 0
}

// Getxattr reads one attribute (ENODATA when absent; ERANGE when dest is
// too small; the size alone when dest is empty).
func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (_ uint32, e syscall.Errno) {
	defer n.fsys.guard("getxattr", &e)
	if !strings.HasPrefix(attr, xattrPrefix) {
		return 0, syscall.ENODATA // security.capability on every write: no store call
	}
	m, e := n.xattrs(ctx)
	if e != 0 {
		return 0, e
	}
	v, ok := m[attr]
	if !ok {
		return 0, syscall.ENODATA
	}
	if len(dest) == 0 {
		return uint32(len(v)), 0
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

// Listxattr lists the names, NUL-terminated, sorted.
func (n *node) Listxattr(ctx context.Context, dest []byte) (_ uint32, e syscall.Errno) {
	defer n.fsys.guard("listxattr", &e)
	m, e := n.xattrs(ctx)
	if e != 0 {
		return 0, e
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	var b []byte
	for _, k := range names {
		b = append(append(b, k...), 0)
	}
	if len(dest) == 0 {
		return uint32(len(b)), 0
	}
	if len(dest) < len(b) {
		return uint32(len(b)), syscall.ERANGE
	}
	return uint32(copy(dest, b)), 0
}

// Setxattr and Removexattr change the object's metadata through
// views.Tree.SetMeta, which needs the write right (EACCES without it). A
// key the view's path template uses moves the file, in every view (the
// change feed then tells the kernel: the old name goes, the new one
// appears); other keys change in place. id, sha256 and md5 are read-only
// (EACCES), and so are the keys the view fixes with set:. A value the
// view's filter or template refuses is EINVAL, a move onto an existing
// name EEXIST. XATTR_CREATE and XATTR_REPLACE are honoured. Setting
// any of them to the value it has succeeds and changes nothing.
func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) (e syscall.Errno) {
	defer n.fsys.guard("setxattr", &e)
	return n.setMeta(ctx, attr, string(data), flags, false)
}

func (n *node) Removexattr(ctx context.Context, attr string) (e syscall.Errno) {
	defer n.fsys.guard("removexattr", &e)
	return n.setMeta(ctx, attr, "", 0, true)
}

// xattrCreate and xattrReplace are setxattr(2)'s flags.
const (
	xattrCreate  = 1
	xattrReplace = 2
)

func (n *node) setMeta(ctx context.Context, attr, value string, flags uint32, remove bool) syscall.Errno {
	key, ok := strings.CutPrefix(attr, xattrPrefix)
	if !ok {
		return syscall.ENOTSUP
	}
	if n.fsys.ro {
		return syscall.EROFS
	}
	if n.dir {
		return syscall.EACCES
	}
	if key == "" {
		return syscall.EINVAL
	}
	p, ok := n.path()
	if !ok {
		return syscall.ENOENT
	}
	if n.pending() {
		// Its metadata is its path's once it is pushed, at close.
		return syscall.EBUSY
	}
	n.mu.Lock()
	n.xattr = nil // compare with the object as it is now
	n.mu.Unlock()
	m, e := n.xattrs(ctx)
	if e != 0 {
		return e
	}
	old, has := m[attr]
	switch {
	case (remove || flags&xattrReplace != 0) && !has:
		return syscall.ENODATA
	case flags&xattrCreate != 0 && has:
		return syscall.EEXIST
	case !remove && has && old == value:
		// What it is already, read-only attributes included: a copy
		// with its attributes (rsync -X, cp --preserve=xattr) sets the
		// checksums and the keys it shares with its source, and a file
		// system answers an unchanged value with success.
		return 0
	}
	if i := n.getInfo(); i == nil || i.Mode().Perm()&0o200 == 0 {
		return syscall.EACCES
	}
	if key == "id" || key == "sha256" || key == "md5" || strings.HasPrefix(key, "dg.") {
		return syscall.EACCES
	}
	ctx, cancel := n.fsys.opCtx(ctx, false)
	defer cancel()
	var (
		info *views.Info
		err  error
	)
	if remove {
		info, err = n.fsys.tree.SetMeta(ctx, p, nil, []string{key})
	} else {
		info, err = n.fsys.tree.SetMeta(ctx, p, map[string]string{key: value}, nil)
	}
	n.fsys.xattrGen.Add(1)
	if err != nil {
		return n.fsys.errno(err)
	}
	if info.ID() == n.id() {
		n.setInfo(info)
	}
	return 0
}
