package store

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/fs"
)

// Crash leftovers. A Put writes a temporary file, renames it into place,
// then commits the object to the catalogue. A crash (kill -9, power loss)
// leaves temporary files of uploads in flight, and, rarely, a whole file
// renamed into place whose commit never happened. Open removes the first
// at once (it holds the directory lock: no upload of an earlier run can
// still be going). The second are found by a background sweep after an
// unclean shutdown only — a clean Close leaves a marker file that Open
// takes away — so that Open stays fast with millions of objects.

// cleanMarker is the file Close leaves in the data directory after a clean
// shutdown.
const cleanMarker = "CLEAN"

// tempCleaner is a primary store that keeps Put's temporary files where
// they can be found (backends/local).
type tempCleaner interface {
	CleanTemp(before time.Time, remove bool) (files int, bytes int64, err error)
}

// changeTimer tells when a primary store's file last changed (its ctime),
// which tells files of an earlier run from files written now, and what
// time the file system gives a file changed now.
type changeTimer interface {
	Changed(path string) (time.Time, error)
	Now() (time.Time, error)
}

// openTime is the bound between files of earlier runs and files of this
// one, on the primary store's own clock when it has one: file times come
// from a coarser clock than time.Now (see local.Provider.Now).
func openTime(primary any) time.Time {
	if ct, ok := primary.(changeTimer); ok {
		if t, err := ct.Now(); err == nil {
			return t
		}
	}
	return time.Now()
}

// takeCleanMarker removes the clean-shutdown marker and reports whether it
// was there. The removal is made durable: a crash in this run must not
// find the marker of the previous one.
func takeCleanMarker(dir string) (bool, error) {
	err := os.Remove(filepath.Join(dir, cleanMarker))
	if errors.Is(err, iofs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("clean shutdown marker: %w", err)
	}
	return true, syncDirOf(filepath.Join(dir, cleanMarker))
}

// leaveCleanMarker records a clean shutdown, durably.
func leaveCleanMarker(dir string) error {
	p := filepath.Join(dir, cleanMarker)
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDirOf(p)
	}
	return err
}

// recoverLeftovers runs at Open: it removes temporary files of interrupted
// uploads and, after an unclean shutdown, starts the sweep of unindexed
// primary files in the background. s.swept is set when no sweep is owed.
func (s *Store) recoverLeftovers(clean bool, opened time.Time) {
	if tc, ok := s.primary.(tempCleaner); ok {
		n, b, err := tc.CleanTemp(opened, true)
		if err != nil {
			s.log.Warn("remove temporary files of interrupted uploads", "removed", n, "err", err)
		} else if n > 0 {
			s.log.Info("removed temporary files of interrupted uploads", "files", n, "bytes", b)
		}
	}
	s.bg.Add(1)
	go s.sweepStoreTemp()
	if clean {
		s.swept.Store(true)
		return
	}
	s.inBackground(func(ctx context.Context) {
		start := time.Now()
		n, err := s.sweepUnindexed(ctx, opened)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("sweep of unindexed stored files after an unclean shutdown", "removed", n, "err", err)
			}
			return // owed again next time (no clean marker)
		}
		s.swept.Store(true)
		level := slog.LevelDebug // a new data directory has no marker either
		if n > 0 {
			level = slog.LevelInfo
		}
		s.log.Log(ctx, level, "swept unindexed stored files after an unclean shutdown", "removed", n, "took", time.Since(start).Round(time.Millisecond))
	})
}

// Stores other than the primary hold copies written by the replicator
// (replicate.go) the same way, and a crash leaves the same temporary files
// there. Unlike the primary, they are not under the data directory's lock:
// two servers may copy to one backup directory (copies are named by
// object id), so a temporary file there is only taken for a leftover once
// nothing has written to it for Replication.StoreTempAge. sweepStoreTemp
// looks once at Open, then every StoreTempAge while the store is open, so
// what a crash left is gone within twice that.
//
// An S3 store's Put is one PUT or a multipart upload that minio-go aborts
// when it fails, but a crash mid-upload leaves the upload's parts,
// invisible and billed. sweepStoreTemp aborts, at the same times, the
// incomplete uploads under the store's prefix started more than
// staleUploadAge ago (backends/s3 AbortUploads: one listing request per
// 1,000 uploads). An SFTP store writes each copy to a file in one
// temporary directory on the server and renames it into place;
// sweepStoreTemp removes, at the same times, those nothing has written to
// for StoreTempAge by the server's clock (backends/sftp SweepTemp: one
// readdir). None of these holds anything the catalogue refers to.

// uploadAborter is a store whose interrupted uploads linger in it
// (backends/s3).
type uploadAborter interface {
	AbortUploads(ctx context.Context, before time.Time) (int, error)
}

// tempSweeper is a remote store that keeps its copies' temporary files in
// one place and dates them on its own clock (backends/sftp).
type tempSweeper interface {
	SweepTemp(ctx context.Context, age time.Duration) (files int, bytes int64, err error)
}

// unwrapper is a decorator of a store (backends/retry).
type unwrapper interface{ Unwrap() backends.Provider }

// staleUploadAge is how old an S3 store's incomplete upload must be to be
// taken for a crash's leftover: no copy takes that long.
const staleUploadAge = 24 * time.Hour

// sweepStoreTemp removes the leftovers of interrupted copies in the stores
// other than the primary until the store closes; it is one of s.bg.
func (s *Store) sweepStoreTemp() {
	defer s.bg.Done()
	age := s.rep.opts.StoreTempAge
	if age <= 0 {
		age = time.Hour
	}
	var sweeps []func(context.Context)
	for _, t := range s.rep.order[1:] {
		if sw := s.storeSweep(t.name, t.w, age); sw != nil {
			sweeps = append(sweeps, sw)
		}
	}
	if len(sweeps) == 0 {
		return
	}
	ctx, cancel := s.untilClosed()
	defer cancel()
	tick := time.NewTicker(age)
	defer tick.Stop()
	for {
		for _, sw := range sweeps {
			sw(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// storeSweep returns the sweep of the store named name, or nil when it
// has none: through its decorators, a local or SFTP store's temporary
// files, an S3 store's incomplete uploads.
func (s *Store) storeSweep(name string, w any, age time.Duration) func(context.Context) {
	for {
		tc, clean := w.(tempCleaner)
		ct, clock := w.(changeTimer)
		if clean && clock {
			return func(context.Context) {
				// The store's own clock: file times come from it.
				now, err := ct.Now()
				if err != nil {
					s.log.Warn("sweep temporary files of interrupted copies", "store", name, "err", err)
					return
				}
				n, b, err := tc.CleanTemp(now.Add(-age), true)
				if err != nil {
					s.log.Warn("remove temporary files of interrupted copies", "store", name, "removed", n, "err", err)
				} else if n > 0 {
					s.log.Info("removed temporary files of interrupted copies", "store", name, "files", n, "bytes", b)
				}
			}
		}
		if ts, ok := w.(tempSweeper); ok {
			return func(ctx context.Context) {
				n, b, err := ts.SweepTemp(ctx, age)
				if err != nil && ctx.Err() == nil {
					s.log.Warn("remove temporary files of interrupted copies", "store", name, "removed", n, "err", err)
				} else if n > 0 {
					s.log.Info("removed temporary files of interrupted copies", "store", name, "files", n, "bytes", b)
				}
			}
		}
		if ua, ok := w.(uploadAborter); ok {
			level := slog.LevelWarn
			return func(ctx context.Context) {
				n, err := ua.AbortUploads(ctx, time.Now().Add(-staleUploadAge))
				if err != nil && ctx.Err() == nil {
					// Credentials may not allow listing uploads: say so
					// once, not every hour.
					s.log.Log(ctx, level, "abort incomplete uploads of interrupted copies", "store", name, "aborted", n, "err", err)
					level = slog.LevelDebug
				} else if n > 0 {
					s.log.Info("aborted incomplete uploads of interrupted copies", "store", name, "uploads", n)
				}
			}
		}
		u, ok := w.(unwrapper)
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
}

// sweepUnindexed removes primary files no object references that last
// changed before opened: content of uploads whose commit a crash
// prevented, and corrupt files set aside for objects deleted since. A file
// changed since (an upload or repair of this run, even one whose commit is
// still to come) is never touched; nor is the corrupt file of an object
// that still exists (verify --repair removes it once it is mended).
func (s *Store) sweepUnindexed(ctx context.Context, opened time.Time) (int, error) {
	ct, ok := s.primary.(changeTimer)
	if !ok {
		return 0, nil
	}
	removed := 0
	err := s.primary.List(ctx, "", func(e backends.Entry) error {
		owner := strings.TrimSuffix(e.Path, quarantineSuffix)
		if s.referenced(ctx, owner) {
			return nil
		}
		t, err := ct.Changed(e.Path)
		if err != nil || !t.Before(opened) {
			return nil // gone, or new, or age unknown
		}
		// Looked up again after the age check: a file older than this
		// run cannot become referenced now unless it already was.
		if s.referenced(ctx, owner) {
			return nil
		}
		if err := s.primary.Delete(ctx, e.Path); err != nil {
			return err
		}
		s.log.Info("removed a stored file no object references (left by a crash)", "path", e.Path, "size", e.Size)
		removed++
		return nil
	})
	if errors.Is(err, iofs.ErrNotExist) {
		err = nil
	}
	return removed, err
}

// referenced reports whether p, a path in the primary store, holds
// content the catalogue refers to: a stored object's file, or the copy of
// a fetched object's current version. Lookup errors count as referenced:
// nothing is removed on a doubt.
func (s *Store) referenced(ctx context.Context, p string) bool {
	if id, ok := primaryID(p); ok {
		o, err := s.idx.Get(ctx, id)
		if err == nil {
			return o.State == fs.StateStored
		}
		return fs.KindOf(err) != fs.NotExist
	}
	return s.isFetchedCopy(ctx, p)
}

// fsckTemp reports temporary files of interrupted uploads that are older
// than this Open (Open removes those it finds; a failure leaves some).
func (s *Store) fsckTemp(opts CheckOptions, rep *CheckReport, report func(Damage)) {
	tc, ok := s.primary.(tempCleaner)
	if !ok {
		return
	}
	n, b, err := tc.CleanTemp(s.opened, opts.Repair)
	if n == 0 && err == nil {
		return
	}
	d := Damage{Where: "objects", Path: ".tmp", Problem: fmt.Sprintf("%d temporary files (%d bytes) of interrupted uploads", n, b), Repaired: opts.Repair && err == nil}
	if err != nil {
		d.Problem += fmt.Sprintf("; %v", err)
	}
	rep.add(d, report)
}

// untilClosed returns a context that ends when the store closes, for
// background jobs that outlive the call that started them.
// inBackground runs fn at low priority on its own goroutine, with a
// context that ends when the store closes; Close waits for it.
func (s *Store) inBackground(fn func(ctx context.Context)) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		ctx, cancel := s.untilClosed()
		defer cancel()
		lowPriority()
		fn(ctx)
	}()
}

func (s *Store) untilClosed() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-s.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
