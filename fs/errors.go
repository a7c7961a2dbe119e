package fs

import (
	"context"
	"errors"
	iofs "io/fs"
	"os"
	"syscall"

	"github.com/datagate/datagate/backends"
)

// Kind classifies an error for the front-ends. The zero Kind is Other: an
// internal failure that maps to the protocol's generic server error.
type Kind uint8

// The error vocabulary. Adding a kind must be mirrored in every front-end's
// mapping table (their table tests iterate over AllKinds).
const (
	Other Kind = iota
	NotExist
	Exist
	Permission
	NotEmpty
	IsDir
	NotDir
	Invalid
	Unavailable
	NoSpace
	Unsupported
)

// AllKinds lists every kind, for the front-ends' mapping table tests.
var AllKinds = []Kind{Other, NotExist, Exist, Permission, NotEmpty, IsDir, NotDir, Invalid, Unavailable, NoSpace, Unsupported}

var kindNames = [...]string{"other", "not exist", "exists", "permission denied", "not empty", "is a directory", "not a directory", "invalid", "unavailable", "no space", "unsupported"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown kind"
}

// Sentinels for the kinds io/fs has no sentinel for. They compare with
// errors.Is against any *Error of that kind.
var (
	ErrNotEmpty    = errors.New("directory not empty")
	ErrIsDir       = errors.New("is a directory")
	ErrNotDir      = errors.New("not a directory")
	ErrUnavailable = backends.ErrUnavailable
	ErrNoSpace     = backends.ErrNoSpace
	ErrUnsupported = errors.ErrUnsupported
)

// Error is an error with a Kind, the operation and the subject (a path, an
// id or a key) it concerns.
type Error struct {
	Kind Kind
	Op   string // e.g. "open", "put"
	Path string // the path, id or key concerned; may be empty
	Err  error  // the underlying cause; may be nil
}

func (e *Error) Error() string {
	s := e.Op
	if e.Path != "" {
		s += " " + e.Path
	}
	if s != "" {
		s += ": "
	}
	if e.Err != nil {
		return s + e.Err.Error()
	}
	return s + e.Kind.String()
}

// Unwrap yields the cause and the sentinel of the kind, so errors.Is works
// against both the io/fs sentinels and the cause.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	if s := sentinel(e.Kind); s != nil {
		errs = append(errs, s)
	}
	return errs
}

func sentinel(k Kind) error {
	switch k {
	case NotExist:
		return iofs.ErrNotExist
	case Exist:
		return iofs.ErrExist
	case Permission:
		return iofs.ErrPermission
	case Invalid:
		return iofs.ErrInvalid
	case NotEmpty:
		return ErrNotEmpty
	case IsDir:
		return ErrIsDir
	case NotDir:
		return ErrNotDir
	case Unavailable:
		return ErrUnavailable
	case NoSpace:
		return ErrNoSpace
	case Unsupported:
		return ErrUnsupported
	}
	return nil
}

// E builds an *Error. A nil cause is allowed.
func E(kind Kind, op, path string, err error) error {
	return &Error{Kind: kind, Op: op, Path: path, Err: err}
}

// Wrap wraps err with op and path, keeping the kind KindOf finds in it.
// It returns nil for a nil err.
func Wrap(op, path string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: KindOf(err), Op: op, Path: path, Err: err}
}

// KindOf classifies any error: an *Error in the chain gives its kind;
// otherwise io/fs and backends sentinels, context errors and errnos are
// recognised. Anything else is Other.
func KindOf(err error) Kind {
	if err == nil {
		return Other
	}
	var e *Error
	if errors.As(err, &e) && e.Kind != Other {
		return e.Kind
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOSPC, syscall.EDQUOT:
			return NoSpace
		case syscall.ENOTEMPTY:
			return NotEmpty
		case syscall.EISDIR:
			return IsDir
		case syscall.ENOTDIR:
			return NotDir
		case syscall.ENAMETOOLONG:
			return Invalid
		}
	}
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		return NotExist
	case errors.Is(err, iofs.ErrExist):
		return Exist
	case errors.Is(err, iofs.ErrPermission):
		return Permission
	case errors.Is(err, iofs.ErrInvalid):
		return Invalid
	case errors.Is(err, ErrNotEmpty):
		return NotEmpty
	case errors.Is(err, ErrIsDir):
		return IsDir
	case errors.Is(err, ErrNotDir):
		return NotDir
	case errors.Is(err, backends.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return Unavailable
	case errors.Is(err, backends.ErrNoSpace):
		return NoSpace
	case errors.Is(err, errors.ErrUnsupported):
		return Unsupported
	}
	return Other
}
