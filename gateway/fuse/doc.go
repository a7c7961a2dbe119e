// Package fuse mounts one user's views.Tree as a real file system with
// go-fuse (its fs API): `datagate mount` and the server's mounts use it.
//
// # Model
//
// Every node is a file or directory of the tree; its path is computed
// from go-fuse's inode tree (which go-fuse updates on rename), never
// stored, so a node follows its object. A file's inode stands for one
// object id: when a path comes to hold another object (an overwrite is a
// new object), the next lookup gives a new inode, so the kernel never
// serves the old object's pages under the new one's name.
//
// Reads: lookup and getattr are one Tree.Stat; a directory listing pages
// through Tree.ReadDir (1,024 entries a call), so a directory of any size
// streams in bounded memory, and READDIRPLUS (which the kernel uses for
// a listing's first batch, and for the rest only when entries are also
// looked up: READDIRPLUS_AUTO) fills attributes from the page just
// listed. Opening a small file for reading asks the store nothing when
// the change feed keeps the node's Info true: the object is opened by id
// (Tree.OpenID) at the first READ, which a file whose pages the kernel
// keeps never sends; read handles need no FLUSH. Larger files open
// eagerly; content is fetched lazily through the store's cache. When the
// content is whole on local disk (stored, or cached and verified) the
// kernel gets the file itself: FUSE passthrough (kernel ≥ 6.9, root, 1
// MiB and more), else reads are spliced from it; otherwise reads wait for
// their range in the cache file (bounded by Options.OpTimeout) and are
// served from it the same way. As root the mount's read-ahead window is
// 4 MiB (the kernel's default for FUSE is 128 KiB, whatever the INIT
// reply asks), so sequential reads arrive as READs of 1016 KiB (the
// mount's max_read: the largest reply a splice pipe holds), several in
// flight.
//
// Writes (with the w right): create and open-for-write spool the content
// to an unlinked file under Options.SpoolDir; random and sequential
// writes, truncate and O_TRUNC act on the spool. Flush (every close) and
// fsync push it whole through Tree.Create, which makes it visible at
// once at its paths in every view, with the metadata its path implies.
// The handles open for writing on one file share one spool, so writers
// at once (appends from several processes) keep each other's bytes. A
// new or emptied file written from start to end is hashed as it is
// written, by a goroutine that also writes the spool (a WRITE only copies
// its data and returns), and the push has the store link the spool in
// place; any other pattern has the store copy it. A push
// that fails is the error of that close or fsync and leaves nothing
// visible. mkdir, rmdir, unlink and rename map to the Tree's methods
// (rename is a metadata change: the object moves in every view).
//
// Extended attributes: user.datagate.<key> for each metadata key, plus
// user.datagate.id, .sha256 and .md5 (read-only). Setting or removing a
// key goes through Tree.SetMeta: a key the view's path template uses
// moves the file in every view, any other changes in place; keys the
// view fixes with set: are EACCES.
//
// # Caching
//
// With the change feed (Options.Events, from views.Watch) the kernel
// keeps names and attributes for an hour, directory listings
// (FOPEN_CACHE_DIR) and an object's pages (FOPEN_KEEP_CACHE) until the
// feed says otherwise: a removed or replaced name is dropped, a modified
// object's pages and attributes are flushed, and the kept listing of a
// directory where a name came or went (and of its ancestors) is dropped,
// so a new object shows in the next listing. The root is the exception:
// its entries live 1 s and its listing is not kept, because the view set
// changes at run time (S3 CreateBucket) outside the feed. Without the
// feed names and attributes live 1 s and listings are not kept.
//
// FUSE's no_open (ENOSYS on OPEN, which would spare small cached reads
// their OPEN and RELEASE) is not used: it holds for the whole connection,
// so large files would lose passthrough (the backing file is named in
// the OPEN reply) and writes to existing files their handle; every close
// would send a FLUSH instead, and turning FLUSH off too (no_flush) would
// leave a write to an existing file with no close event to push it on.
//
// # Errors
//
// Every operation returns a syscall.Errno (go-fuse turns anything else
// into ENOSYS), mapped from the fs error kinds in errno.go; a provider
// failure is EIO after the operation's bounded time; a panic is logged
// and becomes EIO. Reads honour the kernel's interrupts; pushes and
// metadata changes run to completion so a signal never half-reports one.
//
// # Concurrency
//
// go-fuse calls in parallel. A node's mutable fields are guarded by
// node.mu, its writers' shared content by content.mu, a write handle's
// own state by writeHandle.mu; the lock order is node.wmu (opening a
// writer), writeHandle.mu, content.mu, node.mu. Unmount cancels every
// call in flight.
package fuse
