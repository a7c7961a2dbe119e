// Package index is datagate's catalogue on Badger.
//
// # Key space
//
//	0x01 id                                  → object record (codec.go)
//	0x02 key 0x00 value 0x00 id              → ∅   metadata posting, one per key=value
//	0x03 provider 0x00 path 0x00 off len     → id  source location, for idempotent registration
//	0x04 expires(ns, big-endian) id          → ∅   expiry order, for the collector
//	0x05 derived-key                         → derived-value (given by a Deriver, e.g. view paths)
//
// Every write is one Badger transaction holding the object record and all
// of its secondary keys, so indexes never disagree with the records. Postings
// of one key=value sort by id, so an AND of equalities is a merge join over
// sorted lists (Find), never a scan of the catalogue.
//
// # Durability
//
// By default every commit is fsynced before it returns (Badger SyncWrites):
// an acknowledged write survives a power cut. Options.NoSync trades that
// for speed in benchmarks and tests only.
//
// # Change feed
//
// After each commit the index publishes one Change per object to its
// subscribers (Subscribe). Delivery is asynchronous and never blocks
// writers: a subscriber that falls behind receives an Overflow change and
// must resynchronise.
package index
