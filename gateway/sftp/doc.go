// Package sftp is datagate's SSH front-end: SFTP (protocol v3 as OpenSSH
// speaks it), legacy SCP and two checksum commands, over each user's
// views.Tree. Remote sites use sftp, scp (either protocol), sshfs or
// rclone's sftp backend.
//
// # Sessions
//
// The SSH server (gliderlabs/ssh on x/crypto/ssh) authenticates users by
// public key or bcrypt password (Options.Account); every failure costs one
// bcrypt comparison and gets the same answer, whether the user, the key or
// the password was wrong. Limits: MaxAuthTries per connection, a
// per-address penalty after PenaltyFailures failed logins, a login grace
// time (until the first session channel: only an authenticated client can
// open one), an idle timeout, MaxSessionsPerUser sessions at once and
// MaxHandles open files per SFTP session. There is no shell, PTY, agent,
// X11 or port forwarding: each request is refused. An exec runs "scp -t",
// "scp -f", "md5sum PATH..." or "sha256sum PATH..." (answered from the
// stored checksums, in coreutils' format) and nothing else. Every session
// ends with an exit-status before its channel closes.
//
// Host keys (ed25519, and RSA for old clients) are generated in the data
// directory on first start and their fingerprints logged on every start.
//
// # Files
//
// Reads are lazy: a read request at any offset fetches just that range
// through the store, with many requests in flight. Writes arrive at
// offsets, in any order; they are spooled to a nameless file (O_TMPFILE)
// under Dir/spool/sftp. A new or truncated file is also hashed from the
// spool as its contiguous prefix grows (stream.go), so that close hands
// the store the spool with its SHA-256 and the store links it in place:
// close only waits for the tail of the hash and the flush. Writes the
// stream cannot follow make the store copy and hash the spool at close
// instead. Either way the upload commits at
// close (or fsync), so an object appears whole and durable or not at
// all: a client that disconnects mid-upload leaves nothing. OpenSSH's
// client is told (limits@openssh.com) to read and write 255 KiB per
// request. Opening an existing file without
// truncating it (reput, append, sshfs writes) copies it into the spool
// first; the new version replaces it on close. Until then the writing
// session alone sees the file (stat), as sshfs expects. The handles one
// session opens on one path share its spool, as descriptors share a
// local file: processes appending through one sshfs mount keep every
// line, a read handle reads what was written so far (tail -f), and each
// close pushes the spool if it changed. A rename in the session moves
// the open file with its name, and a remove drops it: its close then
// stores nothing. A handle opened to append
// (SSH_FXF_APPEND) whose first write is at offset 0 of a non-empty file
// writes after the file's end (Go's pkg/sftp client relies on O_APPEND
// there); otherwise offsets are taken as sent (reput, sshfs).
//
// setstat honours the modification time and the size (a truncated or
// zero-extended new version). A setstat of the times alone (rclone's
// set-modtime, touch through sshfs, even on a handle opened for writing
// that writes nothing) sets them on the object, which keeps its id and
// version; put -p's times go with its upload. Permissions and ownership
// are accepted and
// ignored, since modes reflect the user's rights. Rename does not replace
// an existing target (SFTP v3); posix-rename@openssh.com does. Directory
// listings are paged out of Tree.ReadDir, so a directory of any size
// lists in bounded memory; the files the session is writing in it are
// merged in as written so far, and "." and ".." come first, as OpenSSH
// sends them. There are no symbolic or hard links:
// symlink, hardlink and readlink answer "operation unsupported", as do
// unknown extended requests.
//
// A write handle's fsync@openssh.com pushes what was written so far as a
// new version (durable and visible to everyone) and leaves the handle
// open; later writes make close push again. A path the view cannot take
// (wrong shape for its template, or a read-only view) fails at OPEN,
// before any data is sent. pkg/sftp's request server does not know
// fsync or limits@openssh.com: shim.go answers them between the SSH
// channel and the request server and passes every other packet through.
//
// # Errors
//
// status.go maps fs error kinds to SFTP status codes in one table; an
// internal error is logged and the client told only "internal server
// error". Panics in handlers are recovered into that error.
//
// # Concurrency
//
// pkg/sftp calls the handlers of one session from several goroutines.
// Shutdown and Close return once every session handler has ended, so the
// store can be closed after them; an upload cut off by them is discarded.
// Lock order: Server.mu and handlers.mu are leaves, never held across I/O
// or each other; upload.mu and lister.mu guard their own fields only.
// packetShim.wmu (held while a reply is written) comes before
// packetShim.mu and handlers.mu, which are leaves.
package sftp
