// Package cache is datagate's chunked, lazily filled, verified, LRU-bounded
// disk cache of object content.
//
// # Why a keyed component and not a Provider decorator
//
// Other cross-cutting backend behaviour (retry, concurrency limit, replica
// set) wraps a Provider. The cache does not, because what it caches is an
// object, not a provider path: one provider file may hold many objects (the
// fields of a GRIB file), each a byte range with its own size and checksums,
// and one object may be served from several locations (a store replica, then
// the provider). Keying by object (fs/store uses id + version) and verifying
// against the object's checksums needs the index's knowledge, which a
// decorator keyed by (provider, path) does not have. So fs/store drives the
// cache: per entry it says how big the content is, how to fetch a range and
// how to verify the whole. The cache itself stays ignorant of the index, of
// providers and of checksum kinds.
//
// # Model
//
// An entry is a key ([A-Za-z0-9._-]{1,128}) with a Source. Its content lives
// in one sparse data file (truncated to Size) under a two-level fan-out of
// 256×256 directories chosen by a hash of the key, next to a small state
// sidecar: size, chunk size, a bitmap of present chunks and a complete flag.
//
// Reading a range fetches the missing chunks it overlaps, once each however
// many readers wait for them. One fetch is one request for a run of
// consecutive absent chunks, streamed in order straight into the data file
// through a 1 MiB buffer, into blocks allocated for the whole request
// before its first write (fallocate: the file system then neither reserves
// nor allocates page by page); it owns its chunks until each is written,
// and marks each present as soon as it is. Readers do not wait for a whole
// chunk or request: a read returns as soon as the fetch has written the
// bytes it asked for (the data is in the page cache by then), so the first
// byte costs one round trip plus 64 KiB. A fetch wakes its readers only
// when the first of them has its bytes, not at every write. It writes up
// to 256 KiB boundaries of the file (or as far as a waiting reader needs):
// unaligned writes of whatever the socket delivered cost the page cache
// twice the CPU. A File read sequentially also
// fetches ahead: the window grows by a chunk per sequential read up to
// ReadAhead chunks, and read-ahead fetches span half the window, so a long
// sequential read costs one request per ReadAhead/2 chunks (two with the
// default geometry: 8 MiB) with two or three of them in flight.
//
// When the last chunk arrives the entry is verified once: with a Digest
// (Source.NewDigest) the content was already fed to it in order while it
// arrived — a goroutine reads each newly contiguous stretch back from the
// page cache, off the fetch path — so the verdict needs no pass over the
// whole at the end;
// otherwise Verify reads the data file. Success marks the entry complete,
// failure drops it (data and state) and fails the reads that completed it
// and every later read of Files opened on it. A complete entry is read
// straight from its data file, and File.DataFile hands out the plain file
// for sendfile or FUSE passthrough. Reads of bytes present before
// verification are served unverified: a chunked lazy cache cannot check a
// checksum of the whole before it has the whole; File.Verified gives the
// verdict to a reader reaching the end.
//
// # Durability
//
// State is persisted at most about once a second per entry, when an entry
// becomes complete (promptly, in the background) and on Close. The data file
// is fdatasync'ed before a sidecar claiming its chunks is written (to a
// temporary file, then renamed; a CRC guards against torn writes), so after a
// crash a bit is never set for data that is not on disk; at worst recently
// fetched chunks are fetched again. Data files without a valid sidecar are
// deleted when the cache starts. That sync, about once a second while an
// entry fills, also keeps its dirty pages few. Fetches do not start the
// writeback of what they write every few MiB (sync_file_range, as the FUSE
// spool does): measured, it paced the fetch at the disk's speed (a 256 MiB
// fill took 120 ms instead of 42) and moved the writeback's CPU into it,
// saving nothing; the costly case, writing into memory never used before
// on a VM that reports free pages to its host (2.5 ms of CPU a MiB), is
// the same with it.
//
// # Size cap
//
// Usage counts the bytes of present chunks. Above MaxSize, whole entries are
// evicted least recently used first (use = Open and File.Close), but never
// an entry with an open File; when every entry is open the cache overshoots
// and logs once. A fetch still running for an evicted entry (read-ahead
// outliving its File) completes into the unlinked file and is not counted.
//
// # Concurrency
//
// All methods are safe for concurrent use; a File is safe for concurrent
// ReadAt (Read and Seek share the File's cursor and are serialised). Lock
// order: Cache.mu before entry.mu; Cache.dirtyMu and Cache.goMu are leaves.
// A fetch's progress and its waiters are guarded by its entry's mu.
// Disk I/O under Cache.mu is limited to unlinking dropped entries (so that a
// new entry of the same key never shares a path with a dying one) and to
// reading one small sidecar at a time during the startup walk. Every
// goroutine is owned by the Cache and stopped by Close.
package cache
