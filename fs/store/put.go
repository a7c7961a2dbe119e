package store

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
)

// PutRequest describes an object to push.
type PutRequest struct {
	Name        string
	Meta        map[string]string
	ContentType string
	ModTime     time.Time // zero: now
	Expires     time.Time
	Size        int64 // expected size, or -1 when unknown (e.g. chunked uploads)
	// Expected checksums (e.g. S3 Content-MD5): a mismatch fails the put
	// and nothing is kept.
	MD5, SHA256 []byte
	// Replace lists objects this one supersedes (an overwrite): they are
	// deleted in the same transaction that indexes the new object.
	Replace []fs.ID
	// ETag, when set, is kept as the object's ETag instead of the hex
	// MD5 (an S3 multipart upload's md5-of-md5s-N).
	ETag string
	// ID, when set, is the object's id, taken from NewID when the upload
	// began: concurrent uploads to one path are ordered by it.
	ID fs.ID
}

// NewID returns a fresh object id for a PutRequest: ids are time-ordered,
// so an upload that takes one when it begins keeps its place among
// uploads to the same path however the goroutines feeding them are run.
func (s *Store) NewID() fs.ID { return s.ids.New(s.now()) }

// Put streams r into the primary store and indexes the object once its
// content is durable. The content is hashed on the way: SHA-256, the
// object's identity, always; MD5 too when the content fits in one
// pipeline buffer, when req.MD5 is to be checked or when r comes from
// MD5Now. Otherwise the MD5 is computed in the background once the object
// is indexed (md5job.go): Get waits for it unless the object has an ETag
// of its own; listings lack it meanwhile.
// A LocalFiles reader (an S3 multipart upload's parts) and a section of a
// local file from its start (an SFTP or FUSE spool) are copied by the
// kernel when the primary store can; a HashedFiles reader's SHA-256 is
// taken instead of hashing the copy, when the MD5 is deferred.
// On any failure — a reader error, cancellation, a full disk, a checksum
// or size mismatch — nothing is left behind and the error says why.
func (s *Store) Put(ctx context.Context, req PutRequest, r io.Reader) (*fs.Object, error) {
	defer s.Uploading()()
	now := s.now().UTC()
	id := req.ID
	if id.IsZero() {
		id = s.ids.New(now)
	}
	o := &fs.Object{
		ID: id, Name: req.Name, Size: 0, ModTime: req.ModTime.UTC(),
		ContentType: req.ContentType, Meta: req.Meta, Expires: req.Expires.UTC(),
		State: fs.StateStored, Stores: []string{PrimaryName}, Created: now,
	}
	if o.ModTime.IsZero() {
		o.ModTime = now
	}
	s.applyRetention(o, now)
	if o.Name == "" {
		return nil, fs.E(fs.Invalid, "put", "", errors.New("object has no name"))
	}
	if err := index.Validate(o); err != nil {
		return nil, err
	}
	mn, md5Wanted := r.(md5Now)
	if md5Wanted {
		r = mn.Reader
	}
	mayDefer := len(req.MD5) == 0 && !md5Wanted
	dst := primaryPath(o.ID)
	var n int64
	var err, endErr error
	kp := s.kernelPutter()
	linked := false
	if sf, ok := r.(SpoolFile); ok {
		var sum []byte
		if linked, sum, err = s.linkSpool(ctx, dst, sf, req.Size, mayDefer); err != nil {
			return nil, fs.Wrap("put", o.Name, err)
		}
		if linked {
			n, o.SHA256 = req.Size, sum
		}
	}
	lf, isFiles := r.(LocalFiles)
	var own *os.File // the spool behind r, opened anew
	if kp != nil && !isFiles && !linked {
		if own = reopenSpool(r, req.Size); own != nil {
			defer own.Close()
		}
	}
	switch {
	case linked:
	case isFiles && req.Size >= 0 && kp != nil:
		n = req.Size
		if sum := knownSHA256(lf); sum != nil && mayDefer && req.Size > pipeBufSize {
			// Hashed by the caller as the files were written: the copy
			// need not be read back.
			err = kp.PutFiles(ctx, dst, lf.LocalFiles(), req.Size, nil, nil)
			o.SHA256 = sum
			break
		}
		o.MD5, o.SHA256, err = hashCopy(mayDefer && req.Size > pipeBufSize, func(h io.Writer) error {
			return kp.PutFiles(ctx, dst, lf.LocalFiles(), req.Size, h, nil)
		})
	case own != nil:
		n = req.Size
		o.MD5, o.SHA256, err = hashCopy(mayDefer, func(h io.Writer) error {
			return kp.PutFile(ctx, dst, own, req.Size, h, nil)
		})
	default:
		hp := newHashPipe(ctx, r, req.Size, mayDefer)
		err = s.primary.Put(ctx, dst, hp, req.Size)
		if err == nil {
			endErr = hp.end()
		}
		hp.finish() // r is not read any more
		n = hp.n
		o.MD5, o.SHA256 = hp.sums()
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fs.E(fs.Invalid, "put", o.Name, fmt.Errorf("cancelled: %w", ctx.Err()))
		}
		return nil, fs.Wrap("put", o.Name, err)
	}
	fail := func(err error) (*fs.Object, error) {
		// The content is durable but not indexed: remove it so nothing
		// unreachable stays behind.
		if derr := s.primary.Delete(context.WithoutCancel(ctx), dst); derr != nil {
			s.log.Error("remove unindexed content", "path", dst, "err", derr)
		}
		return nil, err
	}
	switch {
	case errors.Is(endErr, errLonger):
		return fail(fs.E(fs.Invalid, "put", o.Name, endErr))
	case endErr != nil:
		return fail(fs.Wrap("put", o.Name, endErr))
	}
	o.Size = n
	if o.MD5 != nil {
		o.ETag = hex.EncodeToString(o.MD5)
	}
	if req.ETag != "" {
		o.ETag = req.ETag
	}
	switch {
	case req.Size >= 0 && n != req.Size:
		return fail(fs.E(fs.Invalid, "put", o.Name, fmt.Errorf("got %d bytes, expected %d", n, req.Size)))
	case len(req.MD5) > 0 && !bytes.Equal(req.MD5, o.MD5):
		return fail(fs.E(fs.Invalid, "put", o.Name, errors.New("content MD5 does not match the expected checksum")))
	case len(req.SHA256) > 0 && !bytes.Equal(req.SHA256, o.SHA256):
		return fail(fs.E(fs.Invalid, "put", o.Name, errors.New("content SHA-256 does not match the expected checksum")))
	}
	s.stampPrimary(o) // verified content: sentinel mtime (integrity.go)
	var replaced []*fs.Object
	for _, id := range req.Replace {
		if old, err := s.idx.Get(ctx, id); err == nil {
			replaced = append(replaced, old)
		}
	}
	// A deferred MD5 is pending before anyone can see the object, so
	// Get never misses it.
	var job *md5Job
	if o.MD5 == nil {
		job = s.md5s.add(o.ID)
	}
	// The commit must not be abandoned half-way by a cancelled request
	// once the content is safely stored.
	if err := s.idx.Swap(context.WithoutCancel(ctx), req.Replace, []*fs.Object{o}); err != nil {
		if job != nil {
			s.md5s.done(o.ID, job)
		}
		return fail(err)
	}
	if job != nil {
		s.computeMD5(o.Clone(), job)
	}
	for _, old := range replaced {
		s.dropContent(ctx, old)
	}
	return o, nil
}

// MD5Now marks content whose MD5 the caller needs in its answer (an S3
// ETag): Put computes it on the way, as it does SHA-256, rather than in
// the background.
func MD5Now(r io.Reader) io.Reader { return md5Now{r} }

type md5Now struct{ io.Reader }

// LocalFiles is a reader whose content is whole local files, one after
// the other (an S3 multipart upload's spooled parts). Put has the kernel
// copy them into the primary store when it can (copy_file_range), hashing
// the copy as it is written, instead of reading them through a buffer.
type LocalFiles interface {
	io.Reader
	LocalFiles() []string // file names, in content order
}

// HashedFiles is LocalFiles whose SHA-256 the caller computed itself
// over the bytes of those very files (an S3 multipart upload hashes its
// parts in order as they are spooled). Put then copies them without
// reading the copy back, unless it must hash the copy for the MD5 anyway.
// Never pass a checksum a client claimed: the store records this one as
// the content's identity and stamps the copy verified.
type HashedFiles interface {
	LocalFiles
	SHA256() []byte // nil: unknown, the copy is hashed
}

func knownSHA256(lf LocalFiles) []byte {
	if hf, ok := lf.(HashedFiles); ok {
		if sum := hf.SHA256(); len(sum) == sha256.Size {
			return sum
		}
	}
	return nil
}

// SpoolFile is a reader whose content is the whole of a local file the
// caller hands over, with the SHA-256 it computed itself over those very
// bytes as it wrote them (a FUSE writer's spool). Put links the file into
// the primary store when it can, so that nothing is copied nor read back:
// after a Put that succeeded, the file may be the stored content, and the
// caller must never write to it again. Otherwise Put reads it from its
// start like any spool (r's Read must do so). As with HashedFiles, never
// pass a checksum a client claimed.
type SpoolFile interface {
	io.Reader
	SpoolFile() (f *os.File, sha256 []byte)
}

// linker is a primary store that can take a local file without copying
// it (backends/local: a hard link); linked is false when it cannot here.
type linker interface {
	LinkFile(ctx context.Context, path string, src *os.File) (linked bool, err error)
}

// linkSpool links sf's file to dst when the primary store can, sf knows
// its SHA-256, the file holds exactly size bytes, and no MD5 is wanted on
// the way (small files have theirs computed at once: they are copied).
func (s *Store) linkSpool(ctx context.Context, dst string, sf SpoolFile, size int64, mayDefer bool) (bool, []byte, error) {
	l, ok := s.primary.(linker)
	f, sum := sf.SpoolFile()
	if !ok || !mayDefer || len(sum) != sha256.Size || size <= pipeBufSize {
		return false, nil, nil
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != size {
		return false, nil, nil
	}
	linked, err := l.LinkFile(ctx, dst, f)
	return linked, sum, err
}

// kernelPutter is a primary store that copies local files by the kernel,
// feeding h the copy as written (backends/local).
type kernelPutter interface {
	PutFile(ctx context.Context, path string, src *os.File, size int64, h io.Writer, check func() error) error
	PutFiles(ctx context.Context, path string, names []string, size int64, h io.Writer, check func() error) error
}

func (s *Store) kernelPutter() kernelPutter {
	kp, _ := s.primary.(kernelPutter)
	return kp
}

// hashCopy runs put with the hash of the copy: SHA-256, and MD5 unless
// deferred.
func hashCopy(deferMD5 bool, put func(h io.Writer) error) (md5sum, sha []byte, err error) {
	sh := sha256.New()
	var mh hash.Hash
	h := io.Writer(sh)
	if !deferMD5 {
		mh = md5.New()
		h = io.MultiWriter(sh, mh)
	}
	if err := put(h); err != nil {
		return nil, nil, err
	}
	if mh != nil {
		md5sum = mh.Sum(nil)
	}
	return md5sum, sh.Sum(nil), nil
}

// reopenSpool returns a descriptor of its own on the local file behind r
// when r is an unread section of such a file from its start, size bytes
// long and more than one pipeline buffer (an SFTP or FUSE spool pushed at
// close): the kernel then copies it. Its own, because the copy moves the
// file offset, which the owner of the spool may use. Nil otherwise.
func reopenSpool(r io.Reader, size int64) *os.File {
	if size <= pipeBufSize {
		return nil
	}
	f := spoolBehind(r, size)
	if f == nil {
		return nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	var own *os.File
	rc.Control(func(fd uintptr) {
		// The spool is often unlinked already: open it through /proc.
		own, _ = os.Open("/proc/self/fd/" + strconv.Itoa(int(fd)))
	})
	return own
}

// spoolBehind is the file behind r when r is an unread SpoolFile of size
// bytes or an unread section of a file from its start, size bytes long.
func spoolBehind(r io.Reader, size int64) *os.File {
	if sf, ok := r.(SpoolFile); ok {
		f, _ := sf.SpoolFile()
		if fi, err := f.Stat(); err != nil || fi.Size() != size {
			return nil
		}
		return f
	}
	sr, ok := r.(*io.SectionReader)
	if !ok {
		return nil
	}
	ra, off, n := sr.Outer()
	f, ok := ra.(*os.File)
	if !ok || off != 0 || n != size {
		return nil
	}
	if pos, err := sr.Seek(0, io.SeekCurrent); err != nil || pos != 0 {
		return nil
	}
	return f
}

// NewSpool makes a file for a front-end to spool an upload in: nameless
// (O_TMPFILE) where dir's file system allows it, so that nothing is left
// of it after a crash and Put can link it (SpoolFile) when dir is on the
// primary store's file system (the data directory); else a file unlinked
// at once, which Put copies.
func NewSpool(dir string) (*os.File, error) {
	if f, err := os.OpenFile(dir, unix.O_TMPFILE|os.O_RDWR, 0o600); err == nil {
		return f, nil
	}
	f, err := os.CreateTemp(dir, "spool-*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	return f, nil
}

// HashedSpool is the first size bytes of spool f as a SpoolFile, with the
// SHA-256 its writer computed over them as it wrote them.
func HashedSpool(f *os.File, size int64, sha256 []byte) io.Reader {
	return &hashedSpool{io.NewSectionReader(f, 0, size), f, sha256}
}

type hashedSpool struct {
	*io.SectionReader
	f   *os.File
	sum []byte
}

func (s *hashedSpool) SpoolFile() (*os.File, []byte) { return s.f, s.sum }
