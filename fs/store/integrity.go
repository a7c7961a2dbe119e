package store

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	iofs "io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/datagate/datagate/fs"
)

// Integrity of stored content on read.
//
// Stored content is served by sendfile and FUSE passthrough, so its bytes
// are never seen by the process and cannot be hashed per read. Instead a
// primary file, once its content is verified (by Put's own hashing, by a
// repair, by verify --repair, or by a lazy check on open), gets a sentinel
// modification time derived from the immutable object. Any write to the
// file moves its mtime to the current time, so on every open one fstat
// tells a file that may have changed since it was verified: it is hashed
// again before it is served. A file that still matches gets the sentinel
// back; one that does not is quarantined (renamed aside, fsck reports and
// removes it) and the object is read from another store's copy, or the
// open fails.
//
// What this does not catch: damage that leaves the mtime alone — media
// errors the disk does not report, bit rot, a tool that restores the
// mtime after writing. That is what `datagate verify` scrubbing (and a
// checksumming file system) are for.
//
// Files written before the sentinel existed (older data directories) have
// an ordinary mtime: each is hashed once on its first open, then stamped.

// sentinel is the mtime a verified primary file of o carries: whole
// seconds, one second before the object was created. Any write after the
// object was created (with a clock that does not jump back) sets a later
// mtime, even on file systems that keep mtimes in whole seconds.
func sentinel(o *fs.Object) time.Time {
	return time.Unix(max(o.Created.Unix()-1, 1), 0)
}

// stampPrimary gives o's primary file its sentinel mtime; Put calls it
// once the content is durable and verified. A failure is logged only: the
// file is then hashed once on its first open.
func (s *Store) stampPrimary(o *fs.Object) {
	p, err := s.primaryFS.LocalPath(primaryPath(o.ID))
	if err == nil {
		err = os.Chtimes(p, time.Time{}, sentinel(o))
	}
	if err != nil {
		s.log.Warn("stamp stored content", "id", o.ID, "err", err)
	}
}

// errCorruptStored marks a primary file that no longer matches its
// recorded checksum.
var errCorruptStored = errors.New("stored content does not match its recorded checksum")

// openStored opens o's primary file for serving: directly when it still
// carries its sentinel and size, after hashing it again otherwise. A file
// that fails the check is quarantined and the error wraps errCorruptStored.
func (s *Store) openStored(ctx context.Context, o *fs.Object) (*os.File, error) {
	f, err := s.openPrimary(o)
	if err != nil {
		if pp, perr := s.primaryFS.LocalPath(primaryPath(o.ID)); perr == nil && fs.KindOf(err) == fs.NotExist {
			if _, qerr := os.Stat(pp + quarantineSuffix); qerr == nil {
				return nil, fs.E(fs.Unavailable, "open", o.ID.String(), fmt.Errorf("%w: set aside as %s", errCorruptStored, pp+quarantineSuffix))
			}
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fs.Wrap("open", o.ID.String(), err)
	}
	if fi.Size() == o.Size && fi.ModTime().Equal(sentinel(o)) {
		return f, nil
	}
	bad := ""
	if fi.Size() != o.Size {
		bad = fmt.Sprintf("size %d, recorded %d", fi.Size(), o.Size)
	} else if bad, err = hashCheck(ctx, f, o); err != nil {
		f.Close()
		return nil, fs.Wrap("open", o.ID.String(), err)
	}
	if bad == "" {
		// Changed mtime, same content (touched, copied back, or written
		// before sentinels): stamp it so the next open is cheap again —
		// unless it was written while being hashed, which the next open
		// must see.
		if fi2, err := f.Stat(); err == nil && fi2.ModTime().Equal(fi.ModTime()) && fi2.Size() == fi.Size() {
			if err := os.Chtimes(f.Name(), time.Time{}, sentinel(o)); err != nil {
				s.log.Warn("stamp stored content", "id", o.ID, "err", err)
			}
		}
		s.log.Info("stored content re-verified after its mtime changed", "id", o.ID, "mtime", fi.ModTime())
		return f, nil
	}
	f.Close()
	s.quarantine(o, f.Name(), bad)
	return nil, fs.E(fs.Unavailable, "open", o.ID.String(), fmt.Errorf("%w: %s", errCorruptStored, bad))
}

// quarantineSuffix names primary files set aside as corrupt; fsck reports
// them (as files no object references) and --repair removes them.
const quarantineSuffix = ".corrupt"

// quarantine renames a corrupt primary file aside, so that neither this
// open nor the fallback path (which reads stores by path) serves it again,
// while the bytes stay for inspection. verify/fsck --repair then restore
// the primary copy from a replica.
func (s *Store) quarantine(o *fs.Object, p, bad string) {
	q := p + quarantineSuffix
	err := os.Rename(p, q)
	if err == nil {
		err = syncDirOf(p)
	}
	if err != nil && !errors.Is(err, iofs.ErrNotExist) {
		s.log.Error("quarantine corrupt stored content", "id", o.ID, "path", p, "problem", bad, "err", err)
		return
	}
	s.log.Error("stored content is corrupt: quarantined; reads use another store's copy if there is one (verify --repair restores it)",
		"id", o.ID, "path", q, "problem", bad)
}

// dropQuarantined removes the corrupt file of o set aside by a read, once
// a good primary copy is back.
func (s *Store) dropQuarantined(o *fs.Object) {
	p, err := s.primaryFS.LocalPath(primaryPath(o.ID))
	if err == nil {
		err = os.Remove(p + quarantineSuffix)
	}
	if err != nil && !errors.Is(err, iofs.ErrNotExist) {
		s.log.Warn("remove corrupt stored file set aside", "id", o.ID, "err", err)
	}
}

// hashCheck hashes the open file f with o's recorded checksums (SHA-256
// and MD5 on separate cores) and returns a description of the damage, ""
// when it matches. Content without a recorded checksum cannot be judged
// and passes.
func hashCheck(ctx context.Context, f *os.File, o *fs.Object) (string, error) {
	var hs []hash.Hash
	var want [][]byte
	var names []string
	if len(o.SHA256) > 0 {
		hs, want, names = append(hs, sha256.New()), append(want, o.SHA256), append(names, "SHA-256")
	}
	if len(o.MD5) > 0 {
		hs, want, names = append(hs, md5.New()), append(want, o.MD5), append(names, "MD5")
	}
	if err := hashFile(ctx, f, o.Size, hs...); err != nil {
		return "", err
	}
	for i, h := range hs {
		if !bytes.Equal(h.Sum(nil), want[i]) {
			return names[i] + " does not match the recorded checksum", nil
		}
	}
	return "", nil
}

// syncDirOf fsyncs the directory holding p.
func syncDirOf(p string) error {
	d, err := os.Open(filepath.Dir(p))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
