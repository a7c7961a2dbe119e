package s3

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/datagate/datagate/backends/local"
)

// An upload's assembly file is where its parts of the common size S land
// at their final offsets, (n-1)*S, as they arrive, so that Complete can
// hand the store the whole object as one file it hard-links instead of a
// list of parts it copies (a real copy of the object, written twice
// through the page cache, while the client waits).
//
// S is fixed by the first part of at least MinPartSize whose size is
// announced (minio-go, the aws CLI and rclone send parts of one size but
// the last); a part up to S bytes long then goes to its slot. Anything
// else goes to a spool file of its own, as before: a part larger than S
// or arriving before S is fixed and shorter than MinPartSize (a last part
// sent first), one of unknown size, copied (UploadPartCopy), one
// whose number already has data in the upload (a re-upload must not
// touch the bytes of the upload it replaces, and the in-order hash may
// have hashed them), or one uploaded while another upload of its number
// writes into the assembly. So a range of the file is written by at most
// one request at a time, and never again once a part record names it:
// the bytes a record describes stay as they were hashed. (Complete copies
// parts in files of their own into slots no record names.)
//
// The file is "assembly-<S>" in the upload's directory; a part in it is
// an empty record file "<n:05d>-<md5 hex>.a<size>", created once its
// bytes are written whole (a part file's rename, for the others), so the
// directory alone still tells the parts after a restart, and Abort,
// Complete's rename and the stale-upload cleaner treat the assembly like
// any part file.
const assemblyPrefix = "assembly-"

// maxAssemblyEnd bounds the offsets written in an assembly file (a 10,000th
// part of 5 GiB would need a 50 TB file, beyond ext4's); a part beyond it
// is spooled alone.
const maxAssemblyEnd = 1 << 40

// errSealed fails a part written into an assembly that Complete took.
var errSealed = fmt.Errorf("s3: upload being completed: %w", ErrNoSuchUpload)

// assemblies are the assembly states of this process's uploads, by id.
type assemblies struct {
	mu  sync.Mutex
	ups map[string]*assembly
}

func newAssemblies() *assemblies { return &assemblies{ups: map[string]*assembly{}} }

// assembly is one upload's assembly state.
type assembly struct {
	// fence is held shared by every write into the file and every part
	// record's creation, exclusively by seal: once sealed (by Complete,
	// which then links or truncates the file), nothing writes to it.
	fence  sync.RWMutex
	sealed bool // under fence

	mu      sync.Mutex
	size    int64        // S; 0 until fixed
	writing map[int]bool // parts being written into the file
	held    map[int]bool // parts with data in the upload (any record)
}

// get returns upload id's state (directory dir), read from the directory
// on first use in this process.
func (a *assemblies) get(id, dir string) *assembly {
	a.mu.Lock()
	defer a.mu.Unlock()
	u := a.ups[id]
	if u == nil {
		u = &assembly{writing: map[int]bool{}, held: map[int]bool{}}
		if ents, err := os.ReadDir(dir); err == nil {
			for _, e := range ents {
				if s, ok := assemblySize(e.Name()); ok {
					u.size = s
				} else if n, _, _, ok := parsePartName(e.Name()); ok {
					u.held[n] = true
				}
			}
		}
		a.ups[id] = u
	}
	return u
}

// take forgets upload id's state.
func (a *assemblies) take(id string) *assembly {
	a.mu.Lock()
	defer a.mu.Unlock()
	u := a.ups[id]
	delete(a.ups, id)
	return u
}

// prune forgets the states of uploads that exists says are gone, sealed:
// a part still writing into a file that is gone, or being taken by a
// Complete, stops.
func (a *assemblies) prune(exists func(id string) bool) {
	for _, id := range uploadIDs(&a.mu, a.ups) {
		if !exists(id) {
			if u := a.take(id); u != nil {
				u.seal()
			}
		}
	}
}

func assemblyName(size int64) string { return assemblyPrefix + strconv.FormatInt(size, 10) }

func assemblySize(name string) (int64, bool) {
	v, ok := strings.CutPrefix(name, assemblyPrefix)
	if !ok {
		return 0, false
	}
	s, err := strconv.ParseInt(v, 10, 64)
	return s, err == nil && s >= MinPartSize
}

// partName is the name of part n's file (size < 0) or, for a part in the
// assembly, of its record.
func partName(n int, etag string, size int64) string {
	if size < 0 {
		return fmt.Sprintf("%05d-%s", n, etag)
	}
	return fmt.Sprintf("%05d-%s.a%d", n, etag, size)
}

// parsePartName parses partName's names; size < 0 for a part file.
func parsePartName(name string) (n int, etag string, size int64, ok bool) {
	num, rest, ok := strings.Cut(name, "-")
	if !ok || len(num) != 5 {
		return 0, "", 0, false
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		return 0, "", 0, false
	}
	etag, sz, inAsm := strings.Cut(rest, ".a")
	if len(etag) != 32 {
		return 0, "", 0, false
	}
	size = -1
	if inAsm {
		if size, err = strconv.ParseInt(sz, 10, 64); err != nil || size < 0 {
			return 0, "", 0, false
		}
	}
	return n, etag, size, true
}

// markHeld records that part n has data in the upload (a spool file of
// its own was renamed into place).
func (u *assembly) markHeld(n int) {
	u.mu.Lock()
	u.held[n] = true
	u.mu.Unlock()
}

// claim returns a writer of part n (size bytes announced) into the
// assembly file of the upload in dir, or nil when the part must be
// spooled alone.
func (u *assembly) claim(dir string, n int, size int64) *assemblyPart {
	u.fence.RLock()
	sealed := u.sealed
	u.fence.RUnlock()
	if sealed {
		return nil // by a Complete that failed: the file may be linked
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	stride, flag := u.size, os.O_WRONLY
	if stride == 0 {
		stride, flag = size, flag|os.O_CREATE|os.O_EXCL
	}
	if size <= 0 || stride < MinPartSize || size > stride || u.held[n] || u.writing[n] || int64(n)*stride > maxAssemblyEnd {
		return nil
	}
	path := filepath.Join(dir, assemblyName(stride))
	f, err := os.OpenFile(path, flag, 0o600)
	if err != nil {
		return nil // the upload is gone, or the file is (the part fails alone)
	}
	u.size = stride
	u.writing[n] = true
	off := int64(n-1) * stride
	return &assemblyPart{u: u, f: f, n: n, path: path, off: off, pos: off, end: off + size}
}

// seal stops every write into the assembly file, waiting for the writes
// under way; parts still being written fail (the client may retry them,
// spooled alone).
func (u *assembly) seal() {
	u.fence.Lock()
	u.sealed = true
	u.fence.Unlock()
}

// assemblyPart writes one part into an assembly file, at its offset.
type assemblyPart struct {
	u             *assembly
	f             *os.File
	n             int
	path          string
	off, pos, end int64
	finished      bool
}

// Write writes b at the part's next offset (pwrite: parallel parts share
// no file offset), never past the part's announced end.
func (p *assemblyPart) Write(b []byte) (int, error) {
	if int64(len(b)) > p.end-p.pos {
		return 0, fmt.Errorf("s3: part %d: more bytes than announced: %w", p.n, ErrIncompleteBody)
	}
	p.u.fence.RLock()
	defer p.u.fence.RUnlock()
	if p.u.sealed {
		return 0, errSealed
	}
	// In pieces: the page cache sizes its folios by the write, and large
	// ones come from large free blocks, which on a VM whose host took
	// back the guest's free memory cost a host fault per page to touch.
	// Six 256 MiB files written and kept on the bench machine: 2.4-3 CPU-s
	// in 1 MiB writes, 0.5-1.3 in 256 KiB ones, 0.5-0.7 in 64 KiB ones
	// (as many pwrites cost 10 ms).
	var n int
	for n < len(b) {
		m, err := p.f.WriteAt(b[n:min(len(b), n+writePiece)], p.pos)
		n += m
		p.pos += int64(m)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// writePiece is the largest write into an assembly file.
const writePiece = 64 << 10

// finish ends the part: when record is not empty and the part's bytes
// were all written, it creates the part's record (named record) and
// returns its FileInfo. It releases the part's claim either way; calls
// after the first do nothing.
func (p *assemblyPart) finish(record string) (fi os.FileInfo, err error) {
	if p.finished {
		return nil, nil
	}
	p.finished = true
	defer func() {
		p.u.mu.Lock()
		delete(p.u.writing, p.n)
		if fi != nil {
			p.u.held[p.n] = true
		}
		p.u.mu.Unlock()
	}()
	if p.pos == p.end && record != "" {
		local.StartWriteback(p.f, p.off, p.end-p.off)
	}
	cerr := p.f.Close()
	if record == "" {
		return nil, nil
	}
	if cerr != nil {
		return nil, cerr
	}
	if p.pos != p.end {
		return nil, io.ErrShortWrite
	}
	p.u.fence.RLock()
	defer p.u.fence.RUnlock()
	if p.u.sealed {
		return nil, errSealed
	}
	f, err := os.OpenFile(record, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	fi, err = f.Stat()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(record)
		return nil, err
	}
	return fi, nil
}

// spoolFile hands the store an assembly file holding exactly the object,
// with the SHA-256 of those bytes hashed here (store.SpoolFile): the store
// links it in place, or copies it from its start when it cannot.
type spoolFile struct {
	*io.SectionReader
	f   *os.File
	sha []byte
}

func (s *spoolFile) SpoolFile() (*os.File, []byte) { return s.f, s.sha }

// assembled tells whether parts, Complete's list, make the whole of an
// assembly file once every part is in its slot, and names that file:
// parts 1..N, all but the last S bytes long and the last at most S, in
// their slots or in files of their own (a last part sent before S was
// known, a part sent again), copied into their slots by takeAssembly —
// at worst every part but one, which costs no more than the copy of all
// the parts it replaces.
func assembled(parts []partFile) (string, bool) {
	var asm string
	for _, p := range parts {
		if p.inAssembly() {
			asm = p.data
			break
		}
	}
	stride, ok := assemblySize(filepath.Base(asm))
	if !ok {
		return "", false
	}
	var off int64
	for i, p := range parts {
		last := i == len(parts)-1
		switch {
		case p.n != i+1, !last && p.sz != stride, p.sz > stride,
			p.inAssembly() && (p.data != asm || p.off != off):
			return "", false
		}
		off += p.sz
	}
	return asm, true
}

// takeAssembly makes the assembly file asm in the (renamed) upload
// directory dir the object that parts (assembled) form, total bytes: it
// seals it, makes sure no part past them is in it, copies the parts in
// files of their own into their slots, and truncates what lies past the
// object (bytes of interrupted writes). A nil file: it cannot be taken,
// the caller copies the parts instead.
//
// A part is copied only into a slot no record names (the record of an
// earlier upload of it is removed once the newer one is in place), so
// no listed part's bytes change, even when Complete fails.
func takeAssembly(u *assembly, dir, asm string, parts []partFile, total int64) (*os.File, error) {
	u.seal()
	last := parts[len(parts)-1].n
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	recorded := map[int]bool{}
	for _, e := range ents {
		if n, _, size, ok := parsePartName(e.Name()); ok && size >= 0 {
			if n > last {
				return nil, nil // a part left out: its bytes lie past the object
			}
			recorded[n] = true
		}
	}
	for _, p := range parts {
		if !p.inAssembly() && recorded[p.n] {
			return nil, nil // its slot still holds an earlier upload's bytes
		}
	}
	f, err := os.OpenFile(asm, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	var off int64
	for _, p := range parts {
		if err == nil && !p.inAssembly() {
			err = copyInto(f, off, p)
		}
		off += p.sz
	}
	var fi os.FileInfo
	if err == nil {
		fi, err = f.Stat()
	}
	if err == nil && fi.Size() > total {
		err = f.Truncate(total)
	} else if err == nil && fi.Size() < total {
		err = errors.New("s3: assembly file shorter than its parts")
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// copyInto copies part p's bytes — its file, or its range of the
// assembly while its record is the one listed — to f at off, by the
// kernel (copy_file_range, the way os.File.ReadFrom copies between
// files).
func copyInto(f *os.File, off int64, p partFile) error {
	src, err := os.Open(p.data)
	if err != nil {
		return err
	}
	defer src.Close()
	var now os.FileInfo
	if p.inAssembly() {
		now, err = os.Stat(p.name)
	} else {
		now, err = src.Stat()
	}
	if err != nil || !samePart(now, p.fi) {
		return fmt.Errorf("s3: part file %s changed", p.name)
	}
	if _, err := src.Seek(p.off, io.SeekStart); err != nil {
		return err
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	n, err := f.ReadFrom(io.LimitReader(src, p.sz))
	if err == nil && n != p.sz {
		err = fmt.Errorf("s3: part %s: copied %d of %d bytes", p.name, n, p.sz)
	}
	return err
}

// joinParts copies parts, in order, into a new file in dir by the kernel:
// the object, for the store to link when the in-order SHA-256 covers it,
// where parts that do not fit the assembly would otherwise go through
// the store's buffered pipeline (the store's kernel copy takes whole
// files only).
func joinParts(dir string, parts []partFile) (*os.File, error) {
	f, err := os.CreateTemp(dir, "joined-")
	if err != nil {
		return nil, err
	}
	var off int64
	for _, p := range parts {
		if err = copyInto(f, off, p); err != nil {
			break
		}
		off += p.sz
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}
