package sftp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	iofs "io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"time"
)

// Temporary files of Puts in progress: hidden names in one directory under
// the root. Versions before it wrote them beside the target, which List
// still skips.
const (
	tempDir                = ".datagate-tmp"
	tempPrefix, tempSuffix = ".datagate-", ".tmp"
)

func isTemp(name string) bool {
	return strings.HasPrefix(name, tempPrefix) && strings.HasSuffix(name, tempSuffix)
}

func newTempName() string {
	var rnd [8]byte
	rand.Read(rnd[:])
	return tempPrefix + hex.EncodeToString(rnd[:]) + tempSuffix
}

// liveTemps holds the names of the temporary files this provider is
// writing, which SweepTemp leaves alone however long their writer pauses.
type liveTemps struct {
	mu    sync.Mutex
	names map[string]struct{}
}

func (l *liveTemps) add(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.names == nil {
		l.names = make(map[string]struct{})
	}
	l.names[name] = struct{}{}
}

func (l *liveTemps) remove(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.names, name)
}

func (l *liveTemps) has(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.names[name]
	return ok
}

// SweepTemp removes the temporary files nothing has written to for age
// (by their mtime, on the server's clock) except this provider's own Puts
// in progress, and returns how many it removed and their size. A Put that
// fails removes its file; those left are a crash's (kill -9, power loss).
// Other servers sharing the root may be writing theirs there: age must
// exceed any pause of a copy in progress. One readdir of the temporary
// directory; when it holds candidates, a file is created, stated and
// removed to read the server's clock, and each old one is removed.
func (p *Provider) SweepTemp(ctx context.Context, age time.Duration) (files int, bytes int64, err error) {
	dir := path.Join(p.root, tempDir)
	var fis []os.FileInfo
	err = p.do(ctx, nil, func(c *conn) error {
		return p.run(ctx, c, "readdir", func() error {
			var err error
			fis, err = c.sftp.ReadDirContext(ctx, dir)
			return err
		})
	})
	if errors.Is(classify(err), iofs.ErrNotExist) {
		return 0, 0, nil // no Put yet
	}
	if err != nil {
		return 0, 0, p.wrap("sweep", tempDir, err)
	}
	var old []os.FileInfo
	for _, fi := range fis {
		if fi.Mode().IsRegular() && isTemp(fi.Name()) && !p.live.has(fi.Name()) {
			old = append(old, fi)
		}
	}
	if len(old) == 0 {
		return 0, 0, nil
	}
	now, err := p.serverNow(ctx, dir)
	if err != nil {
		return 0, 0, p.wrap("sweep", tempDir, err)
	}
	before := now.Add(-age)
	var errs []error
	for _, fi := range old {
		if !fi.ModTime().Before(before) || p.live.has(fi.Name()) {
			continue
		}
		full := path.Join(dir, fi.Name())
		err := p.do(ctx, nil, func(c *conn) error {
			return p.run(ctx, c, "remove", func() error { return c.sftp.Remove(full) })
		})
		switch {
		case errors.Is(classify(err), iofs.ErrNotExist):
			// Another server's sweep was first.
		case err != nil:
			errs = append(errs, err)
		default:
			files++
			bytes += fi.Size()
		}
		if ctx.Err() != nil {
			break
		}
	}
	if err := errors.Join(errs...); err != nil {
		return files, bytes, p.wrap("sweep", tempDir, err)
	}
	return files, bytes, nil
}

// serverNow returns the server's current time as it stamps files: the
// mtime of a file created now in dir (then removed). The server's clock
// may be far from ours, and file times come from it.
func (p *Provider) serverNow(ctx context.Context, dir string) (time.Time, error) {
	var now time.Time
	err := p.do(ctx, nil, func(c *conn) error {
		return p.run(ctx, c, "clock", func() error {
			probe := path.Join(dir, newTempName())
			f, err := c.sftp.OpenFile(probe, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
			if err != nil {
				return err
			}
			fi, err := f.Stat()
			f.Close()
			// A probe left by a failed removal is a temporary file like
			// any other, for a later sweep.
			c.sftp.Remove(probe)
			if err != nil {
				return err
			}
			now = fi.ModTime()
			return nil
		})
	})
	if err != nil {
		return time.Time{}, err // fn may still be running
	}
	return now, nil
}
