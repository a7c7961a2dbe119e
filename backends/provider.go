package backends

import (
	"context"
	"errors"
	"io"
	"time"
)

// Sentinels beyond those io/fs offers.
var (
	// ErrUnavailable: the provider could not be reached or did not answer
	// in time. Retrying later may succeed.
	ErrUnavailable = errors.New("provider unavailable")
	// ErrNoSpace: the store is full.
	ErrNoSpace = errors.New("no space left on store")
	// ErrChanged: the file is no longer the one registered (its size
	// differs), so its bytes are not the object's. Crawling or
	// registering it again records the new version.
	ErrChanged = errors.New("file changed since it was registered")
)

// Entry describes one file of a provider.
type Entry struct {
	Path    string // slash-separated, relative to the provider's root, no leading slash
	Size    int64
	ModTime time.Time
	ETag    string // the provider's entity tag when it has one; else ""
}

// Provider is a source of content: a local directory, an HTTP server, an S3
// bucket, an SFTP server. Paths are slash-separated and relative to the
// provider's root; they never start with "/" and never contain "..".
type Provider interface {
	// Name is the provider's configured name, used in error messages.
	Name() string

	// Open returns the bytes [off, off+length) of the file at path, or
	// [off, EOF) when length < 0. The reader returns io.ErrUnexpectedEOF
	// if the file ends before length bytes. Errors: iofs.ErrNotExist when
	// there is no such file, ErrUnavailable when the provider cannot be
	// reached within its timeout, iofs.ErrInvalid for off beyond the end.
	Open(ctx context.Context, path string, off, length int64) (io.ReadCloser, error)

	// Stat describes the file at path. iofs.ErrNotExist if absent.
	Stat(ctx context.Context, path string) (Entry, error)

	// List calls fn for every file (not directory) under prefix, which is
	// a directory path ("" for the root). Order is unspecified. An error
	// returned by fn stops the listing and is returned.
	List(ctx context.Context, prefix string, fn func(Entry) error) error
}

// SizedOpener is a Provider that can tell, from the answer to an Open and
// before the first byte is read, whether the whole file still has the
// size it was registered with: a file rewritten in place at the same path
// would otherwise lend the object some of its new bytes under the old
// size.
type SizedOpener interface {
	// OpenSized is Open for a file that must be size bytes long (size >=
	// 0); a file of another size gives ErrChanged, from OpenSized or, when
	// a broken transfer is resumed, from Read.
	OpenSized(ctx context.Context, path string, off, length, size int64) (io.ReadCloser, error)
}

// Writer is a provider that can hold content: a store.
type Writer interface {
	Provider
	// Put writes the file at path from r, which yields size bytes (size <
	// 0: unknown), replacing any previous file atomically: readers see
	// the old content or the new, never a mix, and a failed Put leaves no
	// file behind. ErrNoSpace when the store is full.
	Put(ctx context.Context, path string, r io.Reader, size int64) error
	// Delete removes the file at path. Deleting an absent file is not an
	// error.
	Delete(ctx context.Context, path string) error
}

// Filer is a provider whose content is a local file that can be opened
// directly, so readers can use the plain file (sendfile, FUSE passthrough).
type Filer interface {
	// LocalPath returns the local file system path of the file at path.
	LocalPath(path string) (string, error)
}
