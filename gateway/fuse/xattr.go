package fuse

import (
	"context"
	"sort"
	"strings"
	"syscall"
	"time"
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
	if n.xattr != nil && time.Since(n.xattrAt) < xattrTTL {
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
	f, err := n.fsys.tree.Open(ctx, p)
	if err != nil {
		return nil, n.fsys.errno(err)
	}
	o := f.Object()
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
	f.Close()
	n.mu.Lock()
	n.xattr, n.xattrAt = m, time.Now()
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

// Setxattr and Removexattr: the attributes are the object's metadata.
// Without the write right they are read-only (EACCES); with it, changing
// metadata needs a views.Tree operation that does not exist yet
// (ENOTSUP).
func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) (e syscall.Errno) {
	defer n.fsys.guard("setxattr", &e)
	return n.xattrWrite()
}

func (n *node) Removexattr(ctx context.Context, attr string) (e syscall.Errno) {
	defer n.fsys.guard("removexattr", &e)
	return n.xattrWrite()
}

func (n *node) xattrWrite() syscall.Errno {
	if n.fsys.ro {
		return syscall.EROFS
	}
	if i := n.getInfo(); i == nil || i.Mode().Perm()&0o200 == 0 {
		return syscall.EACCES
	}
	return syscall.ENOTSUP
}
