package index

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// syncer makes commits durable after the fact, in groups.
//
// Badger runs without SyncWrites: with it, every commit's fsync happens
// inside Badger's write path, and every new read transaction waits until
// the commits in flight are applied, fsync included, so each stat waits
// for the disk. Instead a commit that must be durable is applied first
// (readers see it at once) and then waits for a sync that started after
// it. One goroutine runs the syncs; everyone who arrives while one runs
// shares the next, so N concurrent writers cost about two fsyncs, not N.
// It also syncs once a second when nothing else asked (idleSync), for
// writes through DB() whose writers did not call Sync.
type syncer struct {
	db  *badger.DB
	dir string // "": nothing to sync (in memory, or Options.NoSync)

	req  chan struct{} // a sync is wanted (capacity 1)
	done chan struct{} // closed when run returns

	mu     sync.Mutex
	next   *syncRound // the round not started yet, that arrivals join
	closed bool

	rounds atomic.Int64 // syncs run, for tests and figures
}

type syncRound struct {
	done chan struct{}
	err  error
}

var errClosed = errors.New("index closed")

func newSyncer(db *badger.DB, dir string) *syncer {
	s := &syncer{
		db: db, dir: dir,
		req:  make(chan struct{}, 1),
		done: make(chan struct{}),
		next: &syncRound{done: make(chan struct{})},
	}
	go s.run()
	return s
}

// sync returns once everything committed before the call is on disk.
func (s *syncer) sync() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	r := s.next
	select {
	case s.req <- struct{}{}:
	default: // a request is pending; it starts r (or a round after it)
	}
	s.mu.Unlock()
	<-r.done
	return r.err
}

// idleSync bounds how long a write through DB() that its writer did not
// sync stays only in memory: a sync runs when none has for this long.
const idleSync = time.Second

func (s *syncer) run() {
	defer close(s.done)
	tick := time.NewTicker(idleSync)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case _, ok := <-s.req:
			if !ok {
				return
			}
		case <-tick.C:
			if s.dir == "" || time.Since(last) < idleSync {
				continue
			}
		}
		s.mu.Lock()
		r := s.next
		s.next = &syncRound{done: make(chan struct{})}
		s.mu.Unlock()
		r.err = s.syncNow()
		s.rounds.Add(1)
		last = time.Now()
		close(r.done)
	}
}

// close runs the rounds already asked for and stops the goroutine; later
// calls to sync fail.
func (s *syncer) close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.req)
	}
	s.mu.Unlock()
	<-s.done
}

// syncNow syncs the active memtable's WAL and the value log (db.Sync),
// then the WALs of memtables that are full and waiting for their flush:
// db.Sync does not see those, and a commit applied just before the
// memtable filled up lives in one of them until its flush to a level-0
// table (which Badger syncs) deletes it. Files gone meanwhile have been
// flushed.
func (s *syncer) syncNow() error {
	if s.dir == "" {
		return nil
	}
	if err := s.db.Sync(); err != nil {
		return err
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	var fids []int
	for _, e := range ents {
		if fid, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".mem")); err == nil && strings.HasSuffix(e.Name(), ".mem") {
			fids = append(fids, fid)
		}
	}
	// The highest fid is the active memtable, which db.Sync has synced.
	slices.Sort(fids)
	for _, fid := range fids[:max(0, len(fids)-1)] {
		err := fsyncFile(filepath.Join(s.dir, fmt.Sprintf("%05d.mem", fid)))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// fsyncFile flushes a file's dirty pages, including those written through
// another process's or mapping's shared mmap (Linux keeps one page cache).
func fsyncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
