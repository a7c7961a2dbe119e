package sftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/datagate/datagate/backends"
)

// Status codes of SFTP versions after 3, which pkg/sftp does not name but
// servers speaking v3 sometimes send anyway.
const (
	fxNoSuchPath          = 10
	fxFileAlreadyExists   = 11
	fxNoSpaceOnFilesystem = 14
	fxQuotaExceeded       = 15
)

// classify maps an error from pkg/sftp, x/crypto/ssh, the network or this
// package to the backends error vocabulary: the sentinel to wrap, or nil
// when no kind fits (an internal failure).
func classify(err error) error {
	var (
		source  *sourceError
		status  *pkgsftp.StatusError
		stall   *stallError
		hostKey *hostKeyError
		auth    *authError
		netErr  net.Error
	)
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.As(err, &source):
		return nil // the caller's reader failed, not the server
	case errors.Is(err, iofs.ErrInvalid):
		return iofs.ErrInvalid // our own argument checks
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &stall):
		return backends.ErrUnavailable
	case errors.As(err, &hostKey), errors.As(err, &auth):
		return iofs.ErrPermission
	case errors.As(err, &status):
		switch status.Code {
		case uint32(pkgsftp.ErrSSHFxNoSuchFile), fxNoSuchPath:
			return iofs.ErrNotExist
		case uint32(pkgsftp.ErrSSHFxPermissionDenied):
			return iofs.ErrPermission
		case uint32(pkgsftp.ErrSSHFxNoConnection), uint32(pkgsftp.ErrSSHFxConnectionLost):
			return backends.ErrUnavailable
		case uint32(pkgsftp.ErrSSHFxOpUnsupported):
			return errors.ErrUnsupported
		case fxFileAlreadyExists:
			return iofs.ErrExist
		case fxNoSpaceOnFilesystem, fxQuotaExceeded:
			return backends.ErrNoSpace
		case uint32(pkgsftp.ErrSSHFxFailure):
			// SFTP v3 has no code for a full disk: servers send FAILURE
			// with the strerror text (pkg/sftp does; OpenSSH says only
			// "Failure", which leaves nothing to recognise).
			msg := strings.ToLower(status.Error())
			if strings.Contains(msg, "no space") || strings.Contains(msg, "enospc") || strings.Contains(msg, "quota") {
				return backends.ErrNoSpace
			}
		}
		return nil
	// pkg/sftp normalises some statuses to os errors, and returns bare
	// status codes for a lost connection.
	case errors.Is(err, os.ErrNotExist), errors.Is(err, pkgsftp.ErrSSHFxNoSuchFile):
		return iofs.ErrNotExist
	case errors.Is(err, os.ErrPermission), errors.Is(err, pkgsftp.ErrSSHFxPermissionDenied):
		return iofs.ErrPermission
	case errors.Is(err, pkgsftp.ErrSSHFxConnectionLost), errors.Is(err, pkgsftp.ErrSSHFxNoConnection):
		return backends.ErrUnavailable
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return backends.ErrNoSpace
	// The transport ended under a request.
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &netErr),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE):
		return backends.ErrUnavailable
	}
	return nil
}

// connLost reports whether err says the connection ended (rather than the
// server answering with an error), so the call may be repeated on a new one.
func connLost(err error) bool {
	var stall *stallError
	if errors.As(err, &stall) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return errors.Is(classify(err), backends.ErrUnavailable)
}

// opError is what every operation of the provider returns: it names the
// provider, the server and the path, and unwraps to both the cause and the
// backends/io/fs sentinel of its kind.
type opError struct {
	provider string
	addr     string // user@host:port
	op       string // "open", "stat", "list", "put", "delete", "config"
	path     string // relative to the provider's root; may be empty
	err      error
	kind     error // from classify; may be nil
}

func (e *opError) Error() string {
	s := fmt.Sprintf("sftp provider %q (%s): %s", e.provider, e.addr, e.op)
	if e.path != "" {
		s += " " + e.path
	}
	return s + ": " + e.err.Error()
}

func (e *opError) Unwrap() []error {
	if e.kind == nil {
		return []error{e.err}
	}
	return []error{e.err, e.kind}
}

// sourceError: the reader given to Put failed. It is not the server's
// fault, whatever the cause looks like.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return "reading the content: " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// stallError: the watchdog closed a connection that went quiet.
type stallError struct {
	op      string
	timeout time.Duration
}

func (e *stallError) Error() string {
	return fmt.Sprintf("no answer to %s within %v; connection closed", e.op, e.timeout)
}

// hostKeyError: the server's host key was refused.
type hostKeyError struct {
	addr       string
	knownHosts string
	err        error
}

func (e *hostKeyError) Error() string {
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(e.err, &re):
		return fmt.Sprintf("host key of %s is revoked in %s", e.addr, e.knownHosts)
	case errors.As(e.err, &ke) && len(ke.Want) > 0:
		return fmt.Sprintf("host key of %s does not match %s:%d (the server may have been reinstalled, or someone is intercepting the connection)",
			e.addr, ke.Want[0].Filename, ke.Want[0].Line)
	case errors.As(e.err, &ke):
		return fmt.Sprintf("host %s is not in %s (add its key, e.g. with ssh-keyscan, or set insecure_ignore_host_key)", e.addr, e.knownHosts)
	}
	return fmt.Sprintf("host key of %s: %v", e.addr, e.err)
}

func (e *hostKeyError) Unwrap() error { return e.err }

// authError: the server refused every credential offered.
type authError struct {
	user    string
	methods string
	err     error
}

func (e *authError) Error() string {
	return fmt.Sprintf("authentication as %q with %s refused: %v", e.user, e.methods, e.err)
}

func (e *authError) Unwrap() error { return e.err }
