// Package views turns the object store into per-user virtual file
// systems: the same objects, organised differently for each user,
// computed from metadata in both directions.
//
// # Views
//
// A View has a name, a path template over metadata (fs/pathtmpl), e.g.
// {date}/{type}/{name}, an optional Filter (type in (obs, fc) and
// has(param)) and optional fixed metadata (set:) that uploads into it
// receive. {name} stands for the object's name (fs.Object.Name), every
// other placeholder for a metadata key; filters see "name" the same way.
// An object is in a view when it passes the filter and has every key the
// template needs; its path there is the template rendered with its
// metadata, each value escaped into a segment as fs/pathtmpl documents.
// An object whose path would break the Tree's limits (a segment over 255
// bytes, a path over 4096) is left out of that view.
//
// A Set holds the views: those of the configuration and those created at
// run time (Set.CreateView, for S3 CreateBucket), which are kept in the
// index under the Badger prefix 0x10 and survive restarts. The set is an
// immutable snapshot behind an atomic pointer: readers never lock.
// Because path entries are derived with the definitions current at each
// write, Set.Attach compares the configured definitions with those the
// index was built with (kept under prefix 0x11) and, when a view was
// edited, added or removed, rebuilds the path index at start with the
// index's repairing check (a full scan, only then).
//
// # The path index
//
// Set.Derive is the index's Deriver (fs/index keeps derived keys in the
// same transaction as every register, put, update, delete and expiry). It
// gives each object ONE key per view it is in, for its leaf path only:
//
//	'v' view 0x00 seg1 0x01 seg2 0x01 ... segN 0x00 id(16)  →  size, mtime, state, etag
//
// Escaped segments and template literals never contain a byte below 0x20,
// so 0x00 ends a file name and 0x01 a directory name: the entries of
// directory D are the keys under 'v' view 0x00 D 0x01, in name order, and
// a file X and a directory X are adjacent. Directories are implied by the
// objects under them. Listing D walks its files and, for each
// subdirectory, emits it once and seeks past its subtree (after a short
// run of keys: stepping is cheaper than a seek for small subtrees), so a
// listing costs O(children · log n) and streams in pages
// (Tree.ReadDir's after/n). Stat is one seek. Values carry what a listing
// shows, so listing loads no object. Registration adds one key per view.
//
// Rules where paths collide:
//   - Several objects at one path: the NEWEST (largest id; ids are
//     time-ordered ULIDs) wins the path. The others stay reachable by id
//     and at their paths in other views. A path operation (overwrite,
//     remove, rename) acts on every object at the path, so afterwards the
//     path holds exactly what the operation says.
//   - A name that is both a file and a directory (only possible under a
//     {path...} capture): the directory wins, the file is hidden in that
//     view.
//
// # Directory markers
//
// Mkdir makes an empty object whose metadata records its view and
// directory (dg.view, dg.dir; the dg. namespace is reserved), plus the
// keys the directory's segments fix and the view's set:. A marker appears
// in its own view only, as the key 'v' view 0x00 D 0x01 0x00 id — an entry
// with an empty name, first in its directory, skipped by listings — so
// the directory exists while empty. Rmdir removes markers and refuses
// anything else (NotEmpty). A directory implied by objects vanishes with
// its last object; mkdir is how to keep one.
//
// # Trees
//
// A Tree is one user's file system: their views with their rights (r
// read, w create/overwrite/rename/mkdir/chtimes, d remove/rmdir). With
// one view, the root is that view; with several (or TreeOptions.ViewDirs)
// the root holds one directory per view. It is THE place where paths are
// cleaned and checked (no ".", "..", empty segments, NUL, invalid UTF-8,
// names over 255 bytes or paths over 4096; a trailing slash only for
// directories) and rights enforced. Errors are *fs.Error with the kinds
// NotExist, Exist, Permission, NotEmpty, IsDir, NotDir, Invalid,
// Unavailable, NoSpace; a view the user does not have is NotExist, never
// Permission, so as not to reveal it.
//
// Create parses the path with the view's template into metadata, adds
// set:, checks the filter and streams the content through store.Put,
// replacing what was at the path in the same transaction. Rename is a
// metadata change through store.UpdateMany: a directory moves with
// everything under it in one transaction or not at all.
// SetMeta changes a file's metadata the same way: a key the template
// uses moves the file (in every view), a key the view fixes with set: is
// Permission. CheckCreate answers at open what Create would refuse.
//
// Path index values carry size, mtime, state and the object's ETag, so
// listings and Stat give Info.ETag without loading objects; checksums,
// content type and metadata (Info.MD5, SHA256, Meta) come with Infos made
// from the object: StatObject, Create, SetMeta and File.Stat. OpenID
// reads an object a front-end resolved earlier (a FUSE inode) by id, with
// the rights of the path it was found at.
//
// # Live changes
//
// Watch subscribes to the index's change feed and translates each change
// into the paths it removed, added or modified in every view;
// Tree.UserPath maps them into a user's tree. A subscriber that falls
// behind gets Event.Resync.
//
// # Concurrency
//
// Set, Tree and Watcher are safe for concurrent use. Set.mu only
// serialises view creation and deletion. Two concurrent uploads to one
// path both commit; the newer wins the path.
package views
