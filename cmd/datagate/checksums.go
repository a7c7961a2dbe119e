package main

import (
	"time"

	"github.com/datagate/datagate/fs"
)

// A read that makes an object's content whole in the cache verifies it,
// and when the catalogue lacks its MD5 or SHA-256 the store computes them
// in a background job that then records them with the Cached state. A
// server runs on and the job finishes; a command that opened the store
// itself (`get` without a server) closed it at once, which cancels the
// job: the content was fetched, but `stat` showed it registered, without
// checksums, and the next read fetched and hashed it again.
//
// So before closing, a local catalogue waits for the objects it read whole
// to be recorded. The store gives no handle on its jobs; the wait watches
// the catalogue record, and ends when there is nothing the job could
// still record: the cache entry is no longer whole (evicted: the job gives
// up), the command is interrupted (Ctrl-C), or a deadline generous for
// the hashing (checksumBudget) passes — a job that failed (a read error of
// the cache file) leaves no other trace.

// checksumPoll is how often the record is read while waiting.
const checksumPoll = 20 * time.Millisecond

// checksumBudget is how long the job for size bytes may take: 10 s plus
// 20 MB/s, a tenth of what hashing does on a loaded machine.
func checksumBudget(size int64) time.Duration {
	return 10*time.Second + time.Duration(max(size, 0)/20)*time.Microsecond
}

// awaitChecksums waits for the checksums of the objects read whole.
func (l *localCatalog) awaitChecksums() {
	if len(l.read) == 0 || l.ctx == nil {
		return
	}
	st := l.a.store
	start := time.Now()
	told := false
	for _, id := range l.read {
		for {
			o, err := st.Index().Get(l.ctx, id)
			if err != nil || recorded(o) {
				break
			}
			info, ok := st.Cache().Lookup(o.ContentKey())
			if !ok || info.Present != o.Size || time.Since(start) > checksumBudget(o.Size) {
				break
			}
			if !told && time.Since(start) > 2*time.Second && l.log != nil {
				l.log.Info("recording the content's checksums before exiting (Ctrl-C skips this; a later read records them)", "id", id)
				told = true
			}
			select {
			case <-l.ctx.Done():
				return
			case <-time.After(checksumPoll):
			}
		}
	}
}

// recorded reports whether o's checksums and content state are what a
// whole verified read leaves.
func recorded(o *fs.Object) bool {
	return o.State >= fs.StateCached && len(o.MD5) > 0 && len(o.SHA256) > 0
}
