package sftp

import (
	"errors"
	"fmt"

	pkgsftp "github.com/pkg/sftp"

	"github.com/datagate/datagate/fs"
)

// statusError is what the handlers give pkg/sftp: the SFTP status code it
// finds with errors.As, and a message for the client. It deliberately
// wraps nothing else, so pkg/sftp's own checks (os.IsNotExist, errnos)
// cannot override the code chosen here.
type statusError struct {
	code error // one of the pkgsftp.ErrSSHFx* values
	msg  string
}

func (e *statusError) Error() string { return e.msg }
func (e *statusError) Unwrap() error { return e.code }

// statusCode maps an fs kind to the SFTP v3 status code OpenSSH's client
// understands. v3 has few codes: anything without one is a failure,
// described by the message.
func statusCode(k fs.Kind) error {
	switch k {
	case fs.NotExist:
		return pkgsftp.ErrSSHFxNoSuchFile
	case fs.Permission:
		return pkgsftp.ErrSSHFxPermissionDenied
	case fs.Unsupported:
		return pkgsftp.ErrSSHFxOpUnsupported
	case fs.Invalid:
		return pkgsftp.ErrSSHFxBadMessage
	case fs.Other, fs.Exist, fs.NotEmpty, fs.IsDir, fs.NotDir, fs.Unavailable, fs.NoSpace:
		return pkgsftp.ErrSSHFxFailure
	}
	return pkgsftp.ErrSSHFxFailure
}

// toStatus turns an error from the Tree into the shape pkg/sftp reports.
// Internal failures (kind Other), a lack of space and an unavailable
// source are not described to the client: their messages may name server
// paths or a provider's URL; the caller logs them.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	var se *statusError
	if errors.As(err, &se) {
		return se
	}
	k := fs.KindOf(err)
	msg := err.Error()
	switch k {
	case fs.Other:
		msg = "internal server error"
	case fs.NoSpace:
		// The store's and the spool's messages name server paths.
		msg = byClientPath(err, "no space left on device")
	case fs.Unavailable:
		// So do a provider's (its URL) and the store's (a copy set
		// aside in the data directory): the log has them.
		msg = byClientPath(err, "input/output error (the data's source is unavailable; retry later)")
	}
	return &statusError{code: statusCode(k), msg: msg}
}

// byClientPath describes err as msg, naming the path of its outermost
// fs.Error (the client's, when a handler wrapped it) and nothing else.
func byClientPath(err error, msg string) string {
	var fe *fs.Error
	if errors.As(err, &fe) && fe.Path != "" {
		return fe.Op + " " + fe.Path + ": " + msg
	}
	return msg
}

// failure is a status error for conditions the front-end itself detects.
func failure(code error, format string, args ...any) error {
	return &statusError{code: code, msg: fmt.Sprintf(format, args...)}
}
