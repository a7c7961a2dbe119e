package webdav

import (
	"errors"
	"net/http"
	"os"

	"github.com/datagate/datagate/fs"
)

// errNoParent marks a NotExist for a missing parent collection: WebDAV
// answers 409 Conflict to a PUT, MKCOL, COPY or MOVE into it (RFC 4918
// 9.3.1, 9.7.1), not 404.
var errNoParent = errors.New("parent collection does not exist")

// errNoView marks a path whose first segment is no view of the user's:
// 404 whatever the method, so the answer is the same whether another
// user has such a view or nobody does.
var errNoView = errors.New("no such view")

// statusFor maps an error kind to the HTTP status of a failed request.
func statusFor(k fs.Kind) int {
	switch k {
	case fs.NotExist:
		return http.StatusNotFound
	case fs.Exist:
		return http.StatusConflict
	case fs.Permission:
		return http.StatusForbidden
	case fs.NotEmpty:
		return http.StatusConflict
	case fs.IsDir:
		return http.StatusMethodNotAllowed
	case fs.NotDir:
		return http.StatusConflict
	case fs.Invalid:
		return http.StatusBadRequest
	case fs.Unavailable:
		return http.StatusServiceUnavailable
	case fs.NoSpace:
		return http.StatusInsufficientStorage
	case fs.Unsupported:
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

// statusOf is the status of err for a request whose own handler failed.
func statusOf(err error) int {
	if errors.Is(err, errNoView) {
		return http.StatusNotFound
	}
	if errors.Is(err, errNoParent) {
		return http.StatusConflict
	}
	return statusFor(fs.KindOf(err))
}

// overrideStatus corrects the status x/net/webdav chose for a failed
// request (it knows only os.IsNotExist / os.IsExist and falls back on 403,
// 404, 405 or 500 for everything else) with the kind of the error the file
// system last returned. NotExist and Exist keep the status x/net/webdav
// picked by method (404 or 409 for a missing parent; 405 for MKCOL on an
// existing resource, 412 for Overwrite: F), except where it fell back on
// a generic one.
func overrideStatus(code int, err error) int {
	if code == http.StatusLocked || code == http.StatusPreconditionFailed || code < 400 {
		return code
	}
	if errors.Is(err, errNoView) {
		return http.StatusNotFound
	}
	if errors.Is(err, errNoParent) {
		return http.StatusConflict
	}
	switch k := fs.KindOf(err); k {
	case fs.Exist:
		return code
	case fs.NotExist:
		if code == http.StatusNotFound || code == http.StatusConflict {
			return code
		}
		return http.StatusNotFound
	default:
		return statusFor(k)
	}
}

// reason is what the body of an error status says after the status
// text: ": " and the error for the refusals a user can act on (an
// invalid name, a missing right, a path the view cannot hold; rclone
// shows the body as its error message, which was only "Bad Request").
// Not for 404, which must read the same whether or not another user has
// such a view, nor for 412 and 423, whose cause is the If header or a
// lock, not the file system's last error, nor for failures of the
// service (5xx), which are logged instead.
func reason(code int, err error) string {
	switch code {
	case http.StatusBadRequest, http.StatusForbidden, http.StatusMethodNotAllowed, http.StatusConflict:
		return ": " + err.Error()
	}
	return ""
}

// osError gives x/net/webdav the shapes it tests for: it uses
// os.IsNotExist and os.IsExist, which do not see through %w, and skips a
// PROPFIND entry whose error is an *os.PathError. Kinds that mean "this
// resource cannot be had" become *os.PathError; failures of the service
// (unavailable, no space, internal) stay as they are, so a PROPFIND stops
// rather than silently leaving entries out.
func osError(op, name string, err error) error {
	if err == nil {
		return nil
	}
	var sentinel error
	switch fs.KindOf(err) {
	case fs.NotExist:
		sentinel = os.ErrNotExist
	case fs.Exist:
		sentinel = os.ErrExist
	case fs.Permission:
		sentinel = os.ErrPermission
	case fs.Invalid, fs.IsDir, fs.NotDir, fs.NotEmpty:
		sentinel = err
	default:
		return err
	}
	return &os.PathError{Op: op, Path: name, Err: sentinel}
}
