package index

import (
	"fmt"

	"github.com/datagate/datagate/fs"
)

// A full file system.
//
// Badger writes its memtable's log and the tables it flushes and compacts
// through memory maps of files it sizes first, sparsely (the log is
// 2 × 64 MiB). When the file system fills, a store into a page of such a
// file that has no block yet is not an error a write returns but a
// SIGBUS: the process dies (`datagate register` of a large file, or
// `serve` whose cache filled the disk, on the next commit or memtable
// flush). The index cannot make Badger reserve its space, so it keeps
// the room those writes may take: a write that would add to the
// catalogue while less than Options.MinFree is free on the index's file
// system is refused with a NoSpace error, before Badger sees it. Deletes
// are let through: they are how room is made (they add a few bytes a
// key). The check is a statfs per write transaction, about a microsecond.

// DefaultMinFree is the room kept by default: a memtable log (128 MiB)
// and a flushed table (up to 64 MiB), with a margin for compactions.
const DefaultMinFree = 256 << 20

// roomFor refuses op when the index's file system has less than the
// room to keep.
func (ix *Index) roomFor(op string) error {
	if ix.minFree <= 0 || ix.dir == "" {
		return nil
	}
	free, ok := freeBytes(ix.dir)
	if !ok || free >= ix.minFree {
		return nil
	}
	return fs.E(fs.NoSpace, op, "", fmt.Errorf("%d MiB free on the index's file system (%s), writes keep %d MiB for the index",
		free>>20, ix.dir, ix.minFree>>20))
}
