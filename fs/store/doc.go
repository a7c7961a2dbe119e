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
//   - Every call that can block takes a context; provider failures surface
//     within the provider's own timeout as Unavailable errors.
//
// # Data directory
//
//	LOCK         flock held by the process that owns the directory
//	index/       Badger
//	cache/       chunk cache
//	objects/     the primary store (pushed content)
package store
