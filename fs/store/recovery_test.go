package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/minio/minio-go/v7"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/retry"
	"github.com/datagate/datagate/fs"
)

// TestCrashLeftovers plays what kill -9 leaves: temporary files of uploads
// in flight, and a stored file whose catalogue commit never happened.
// Open removes the first; after an unclean shutdown a background sweep
// removes the second, keeping every indexed file and anything changed in
// the current run; after a clean shutdown there is no sweep.
func TestCrashLeftovers(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	data := pattern(100_000)
	kept, err := e.st.Put(ctx, PutRequest{Name: "kept", Size: int64(len(data))}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	objects := filepath.Join(e.dir, "objects")
	tmp := filepath.Join(objects, ".tmp", "put-leftover")
	lost := fs.NewIDGen().New(time.Now())
	lostPath := filepath.Join(objects, primaryPath(lost))
	leave := func() {
		t.Helper()
		for _, p := range []string{tmp, lostPath} {
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }

	// A new data directory has no marker either: its sweep, at nice 19,
	// must be done for Close to leave one (on a loaded machine it was
	// not, 1 run in ~30 of the package).
	waitFor(t, func() bool { return e.st.swept.Load() })
	leave()
	e.st.Close()
	if !exists(filepath.Join(e.dir, cleanMarker)) {
		t.Fatal("no clean marker after Close")
	}
	e.open(t)
	// Clean shutdown: the temporary file goes, the unindexed file stays
	// (no sweep), and fsck reports it.
	if exists(tmp) {
		t.Error("temporary file left after Open")
	}
	if exists(filepath.Join(e.dir, cleanMarker)) {
		t.Error("clean marker not taken by Open")
	}
	time.Sleep(100 * time.Millisecond)
	if !exists(lostPath) {
		t.Error("unindexed file removed after a clean shutdown")
	}
	rep, err := e.st.Fsck(ctx, CheckOptions{}, nil)
	if err != nil || rep.Damaged != 1 {
		t.Errorf("fsck: %+v %v, want the one unindexed file", rep, err)
	}

	// Unclean shutdown (no marker): swept in the background.
	leave()
	e.st.Close()
	os.Remove(filepath.Join(e.dir, cleanMarker))
	e.open(t)
	waitFor(t, func() bool { return !exists(lostPath) })
	if exists(tmp) {
		t.Error("temporary file left after Open")
	}
	if got, err := readObject(t, e.st, kept.ID); err != nil || !bytes.Equal(got, data) {
		t.Errorf("indexed object after the sweep: %v", err)
	}
	waitFor(t, func() bool { return e.st.swept.Load() })

	// Files changed in this run are never swept, indexed or not; nor are
	// temporary files counted by fsck.
	leave()
	if n, err := e.st.sweepUnindexed(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 || !exists(lostPath) {
		t.Errorf("sweep of a file of this run: removed %d, %v", n, err)
	}
	// The corrupt file set aside for an object that still exists stays;
	// one of an object deleted since goes.
	keptBad := filepath.Join(objects, primaryPath(kept.ID)+quarantineSuffix)
	lostBad := lostPath + ".x" + quarantineSuffix // no object's name either
	goneBad := filepath.Join(objects, primaryPath(fs.NewIDGen().New(time.Now()))+quarantineSuffix)
	for _, p := range []string{keptBad, lostBad, goneBad} {
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, data[:10], 0o644)
	}
	if n, err := e.st.sweepUnindexed(ctx, time.Now().Add(time.Second)); err != nil || n != 3 || exists(lostPath) || exists(lostBad) || exists(goneBad) ||
		!exists(keptBad) || !exists(filepath.Join(objects, primaryPath(kept.ID))) {
		t.Errorf("sweep of older unindexed files: removed %d, %v", n, err)
	}
	os.Remove(keptBad)
	if rep, err := e.st.Fsck(ctx, CheckOptions{}, nil); err != nil || rep.Damaged != 0 {
		t.Errorf("fsck with a temporary file of this run: %+v %v", rep, err)
	}

	// A temporary file older than this Open (here: Open's cleaning
	// failed) is reported by fsck and removed by fsck --repair.
	e.st.opened = time.Now().Add(time.Second)
	rep, err = e.st.Fsck(ctx, CheckOptions{Repair: true}, nil)
	if err != nil || rep.Damaged != 1 || rep.Unrepaired != 0 || exists(tmp) {
		t.Errorf("fsck --repair of an old temporary file: %+v %v (left: %v)", rep, err, exists(tmp))
	}
}

// TestStoreCrashLeftovers: a crash leaves temporary files of copies in
// flight in the other local stores too. They go once untouched for
// StoreTempAge; one still being written stays.
func TestStoreCrashLeftovers(t *testing.T) {
	third, thirdRoot := localStore(t, "third")
	mod := func(r *Replication) {
		r.Stores = append(r.Stores, Target{Name: "third", W: third})
		r.StoreTempAge = 300 * time.Millisecond
	}
	e := newRepEnv(t, mod)
	left := filepath.Join(thirdRoot, ".tmp", "copy-leftover")
	busy := filepath.Join(thirdRoot, ".tmp", "copy-in-flight")
	os.MkdirAll(filepath.Dir(left), 0o755)
	if err := os.WriteFile(left, pattern(1000), 0o644); err != nil {
		t.Fatal(err)
	}
	e.close()
	e.open(t, mod)
	// Another writer (a server sharing the store) keeps a copy going.
	f, err := os.Create(busy)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(30 * time.Millisecond):
				f.Write(pattern(100))
			}
		}
	}()
	waitFor(t, func() bool { _, err := os.Stat(left); return errors.Is(err, os.ErrNotExist) })
	time.Sleep(700 * time.Millisecond) // two more sweeps
	close(stop)
	<-done
	if _, err := os.Stat(busy); err != nil {
		t.Fatalf("a temporary file being written was removed: %v", err)
	}
}

// skewedTime is a fake S3 server's clock: now plus an offset.
type skewedTime struct{ off atomic.Int64 }

func (s *skewedTime) Now() time.Time                  { return time.Now().Add(time.Duration(s.off.Load())) }
func (s *skewedTime) Since(t time.Time) time.Duration { return s.Now().Sub(t) }

// TestS3StoreCrashLeftovers: a crash during a copy to an S3 store leaves
// an incomplete multipart upload. One started more than a day ago is
// aborted, through the retry decorator serve wraps S3 stores in; a recent
// one (a copy of another server, maybe) stays.
func TestS3StoreCrashLeftovers(t *testing.T) {
	clock := &skewedTime{}
	p, mc := s3StoreWith(t, "s3", gofakes3.WithTimeSource(clock), gofakes3.WithTimeSkewLimit(0))
	ctx := ctxT(t)
	core := minio.Core{Client: mc}
	clock.off.Store(int64(-48 * time.Hour))
	if _, err := core.NewMultipartUpload(ctx, "copies", "AB/crashed", minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	clock.off.Store(0)
	if _, err := core.NewMultipartUpload(ctx, "copies", "AB/in-progress", minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	wrapped := retry.New(p, retry.Options{}).(backends.Writer)
	newRepEnv(t, func(r *Replication) { r.Stores = append(r.Stores, Target{Name: "s3", W: wrapped}) })
	waitFor(t, func() bool {
		var left []string
		for u := range mc.ListIncompleteUploads(ctx, "copies", "", true) {
			if u.Err != nil {
				t.Fatal(u.Err)
			}
			left = append(left, u.Key)
		}
		return slices.Equal(left, []string{"AB/in-progress"})
	})
}
