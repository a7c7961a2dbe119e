// Package store is the one type the upper layers use to reach objects:
// it coordinates the index (fs/index), the chunk cache (backends/cache),
// the providers content is registered against, and the primary store that
// pushed content is written to.
//
// # Guarantees
//
//   - Put streams the content to the primary store while hashing it (MD5 and
//     SHA-256), makes it durable, and only then indexes the object: an object
//     is never visible before its content is, and a failed or cancelled Put
//     leaves neither a file nor an index entry.
//   - Open is lazy: a registered object's content is fetched from its
//     provider chunk by chunk, on demand, into the cache. When the content
//     becomes whole it is verified against the checksums given at
//     registration; a mismatch drops it from the cache and is an error.
//   - Stored content is checked on open, not per read (it is served by
//     sendfile and FUSE passthrough): a verified primary file carries a
//     sentinel mtime, and a file whose mtime moved is hashed again before
//     it is served; a corrupt one is set aside and a replica read instead
//     (integrity.go). Damage that leaves the mtime alone (silent media
//     errors) is found only by Verify.
//   - After a crash, Open removes temporary files of interrupted uploads,
//     and a background sweep removes stored files whose commit never
//     happened (recovery.go).
//   - Every call that can block takes a context; provider failures surface
//     within the provider's own timeout as Unavailable errors.
//
// # Data directory
//
//	LOCK         flock held by the process that owns the directory
//	CLEAN        left by a clean Close, taken by Open (recovery.go)
//	index/       Badger
//	cache/       chunk cache
//	objects/     the primary store (pushed content)
package store
