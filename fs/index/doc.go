// Package index is datagate's catalogue on Badger.
//
// # Key space
//
//	0x01 id                                  → object record (codec.go)
//	0x02 key 0x00 value 0x00 id              → ∅   metadata posting, one per key=value
//	0x03 provider 0x00 path 0x00 off len     → id  source location, for idempotent registration
//	0x04 expires(ns, big-endian) id          → ∅   expiry order, for the collector
//	0x05 derived-key                         → derived-value (given by a Deriver, e.g. view paths)
//	0x0e                                     → counts checkpoint (counts.go), only between a clean Close and the next Open
//	0x0f                                     → fence of derivations (FenceDerivations), read by every write transaction
//
// Derived keys in use: 'v'… view paths (views), 0x06 prio id replication
// queue and 0x07 prio id prefetch queue (fs/store/replicate.go). Other
// packages keep their own records under other prefixes through DB():
// 0x10, 0x11 views; 0x20 queue retry state, 0x21 queue rules' signature
// (fs/store/replicate.go); 0x57 WebDAV locks.
//
// Every write is one Badger transaction holding the object record and all
// of its secondary keys, so indexes never disagree with the records. Postings
// of one key=value sort by id, so an AND of equalities is a merge join over
// sorted lists (Find), never a scan of the catalogue.
//
// # Durability
//
// Every operation a client's write relies on (Insert, Register, Update,
// UpdateMany, Delete, Swap, fsck's repairs) returns only once its commit is
// on disk: an acknowledged write survives a power cut. Badger itself runs
// without SyncWrites; after the commit is applied the operation waits for
// a group sync (sync.go: db.Sync of the write-ahead log and value log, and
// the logs of memtables awaiting their flush), shared by every commit that
// arrived meanwhile. Readers therefore never wait for an fsync: Badger
// makes a new read transaction wait for the commits being applied, and
// with SyncWrites that wait included the disk. The collector's deletes are
// not synced (a lost delete is redone by the next collection). Writers
// through DB() call Sync before acknowledging; what they do not sync
// reaches the disk within a second (idleSync). Options.NoSync skips the
// syncs, for benchmarks and tests only; a crash then loses recent commits
// but Badger's log replay keeps the index consistent.
//
// # Reads
//
// Get, Find, BySource, Walk and the collector's lookups read a snapshot
// shared by all readers, which every write moves on before it returns
// (snapshot.go): a read sees every write whose call has returned and never
// waits for a commit in progress, however large. Derived reads in a
// transaction of its own, because other packages write derived keys
// through DB().
//
// # Counts
//
// Counts (objects, bytes, and the owner's tallies such as copies per
// store) are kept in memory by every commit and never need a scan to
// answer; they survive a clean Close, and after a crash RebuildCounts
// recounts them while writes go on (counts.go).
//
// # Change feed
//
// After each commit the index publishes one Change per object to its
// subscribers (Subscribe). Delivery is asynchronous and never blocks
// writers: a subscriber that falls behind receives an Overflow change and
// must resynchronise.
package index
