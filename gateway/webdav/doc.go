// Package webdav serves each user's views.Tree over WebDAV (RFC 4918,
// class 1 and 2), for desktops (Windows Explorer, macOS Finder), davfs2,
// cadaver, rclone and curl.
//
// # Requests
//
// Server authenticates every request with HTTP Basic against the user's
// bcrypt hash (401 with a realm otherwise); a successful check is
// remembered for Options.AuthCacheTTL under a SHA-256 of user, hash and
// password, never the password itself. The request is then served from
// that user's Tree only: a view the user lacks is 404, as if it did not
// exist.
//
// Most methods go through golang.org/x/net/webdav's Handler over a
// per-request webdav.FileSystem (reqFS) on the Tree. Server handles
// itself what x/net/webdav does poorly:
//   - GET and HEAD: http.ServeContent over the plain *os.File when the
//     content is whole on disk (sendfile), else over the lazily fetching
//     views.File; Range (also multiple), conditional headers, a strong
//     ETag from the content's SHA-256 (id and version until it is known),
//     Last-Modified, Content-Type. GET on a collection is an HTML listing.
//   - PROPFIND (propfind.go), streamed in the Tree's pages with at most
//     one record lookup per entry; Depth infinity (also the default when
//     Depth is absent) is refused with 403 and DAV:propfind-finite-depth.
//   - LOCK and its refresh (sharedlock.go): shared locks, which
//     x/net/webdav lacks, and responses that state the lock as granted.
//     LOCK needs the w right. PROPFIND shows DAV:lockdiscovery.
//   - If-Match, If-None-Match and If-Unmodified-Since of every other
//     method (precond.go; x/net/webdav reads only the If header): 412
//     when they fail. A file's earlier "id-version" ETag still matches
//     once its SHA-256 is known (etagsOf), GET included.
//   - PUT with Content-Range is 400; DELETE of a collection with a Depth
//     other than infinity is 400; a view's root cannot be removed (403
//     before anything is).
//   - the body a refused request left unread is read (up to 1 GiB), so
//     clients that send a whole upload before reading the answer (neon)
//     get the status rather than a closed connection.
//   - paths with NUL, "." or ".." segments (also percent-encoded) are 400
//     before any lookup; a COPY/MOVE Destination on another host is 502,
//     one that is not a clean path 403.
//   - the bodies of PROPFIND, PROPPATCH, LOCK are capped
//     (Options.MaxXMLBody; 413 or 400). encoding/xml expands no entities
//     beyond the XML built-ins, so entity bombs fail as malformed (400).
//
// PUT streams: x/net/webdav copies the body into the File with io.Copy,
// which hands it to writeFile.ReadFrom and so to Tree.Create unbuffered;
// Content-Length becomes the expected size. A body that ends early fails
// the upload and nothing becomes visible. Collections are not made
// implicitly: PUT, MKCOL, COPY and MOVE into a missing parent are 409
// unless Options.CreateParents. store.Put reads the body into 1 MiB
// buffers and hashes them in its own goroutines (fs/store/hash.go).
//
// PROPPATCH of a property in the MetaNS namespace sets or removes that
// metadata key with Tree.SetMeta (needs w): a key of the view's path
// template moves the file; other properties are dead properties kept in
// the object's metadata under "dav:{namespace}local".
//
// # Errors
//
// errors.go holds the one mapping of fs error kinds to HTTP statuses
// (statusFor) and the error shapes x/net/webdav tests for (osError:
// *os.PathError around os.ErrNotExist, os.ErrExist, os.ErrPermission).
// x/net/webdav picks statuses coarsely (404, 405 or 403 for anything it
// does not recognise), so statusWriter replaces the status of a failed
// request with the one the file system's last error calls for
// (overrideStatus): a write to a read-only view is 403, a full disk 507,
// an unreachable provider 503.
//
// # Locks
//
// LockStore implements webdav.LockSystem for all users: write locks,
// exclusive or shared, with depth 0 or infinity. Locks are named
// by view path, so users who see one view under different paths share its
// locks; a lock's token works only for the user who took it. Locks taken
// with LOCK are kept in the store's Badger database under the key prefix
// 0x57 ('W') followed by the token, valued with a JSON record (user, view
// path, depth, owner, timeout, expiry), and reloaded at start, so they
// survive a restart and expire on their timeout (capped by
// LockOptions.MaxTimeout, Infinite included). An If header's list is
// checked against its own resource; the request's resource and a
// MOVE/COPY destination need only have their locks' tokens somewhere in
// the header (x/net/webdav checks one list against both, which refused
// davfs2's rename of the file it had locked). The locks x/net/webdav
// takes around each write request live in memory only and conflict with
// LOCK locks, not with each other; those of DELETE, MOVE and COPY cover
// the whole tree they remove or replace, so the locks of its members
// count (treeLocks.deep). A successful DELETE or MOVE, and a PROPPATCH
// that moves a file, drop the locks of what went.
//
// # Concurrency
//
// Server and LockStore are safe for concurrent use; a reqFS and the files
// it opens belong to one request. LockStore.mu guards the lock maps and is
// held while a persisted lock is written (rare: LOCK, UNLOCK, refresh,
// expiry); nothing else is locked under it.
package webdav
