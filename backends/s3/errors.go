package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"net"
	"net/http"

	"github.com/minio/minio-go/v7"

	"github.com/datagate/datagate/backends"
)

// classify wraps an error of minio-go or of the network with the provider,
// bucket and key, and with the backends sentinel of its kind, so that
// errors.Is sees both the sentinel and the cause.
func (p *Provider) classify(op, key string, err error) error {
	return p.wrap(op, key, kindOf(err), err)
}

// kindOf is the one place where S3 error codes, HTTP statuses and network
// failures become kinds. It returns nil for errors of no known kind; it
// never guesses "not found".
func kindOf(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil // the caller gave up: not the provider's fault
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return backends.ErrUnavailable
	}
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		switch er.Code {
		case "NoSuchKey", "NoSuchBucket", "NoSuchVersion", "NotFound":
			return iofs.ErrNotExist
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled",
			"AccountProblem", "ExpiredToken", "InvalidToken", "InvalidSecurity":
			return iofs.ErrPermission
		case "InvalidRange", "InvalidArgument", "InvalidBucketName", "XMinioInvalidObjectName",
			"KeyTooLongError", "InvalidObjectName":
			return iofs.ErrInvalid
		case "EntityTooLarge", "XMinioStorageFull", "XMinioAdminBucketQuotaExceeded",
			"XMinioBucketQuotaExceeded", "QuotaExceeded", "StorageFull", "InsufficientStorage":
			return backends.ErrNoSpace
		case "SlowDown", "ServiceUnavailable", "RequestTimeout",
			"XMinioServerNotInitialized", "XMinioReadQuorum", "XMinioWriteQuorum":
			return backends.ErrUnavailable
		case "InternalError":
			// minio-go also uses this code, with no status, for replies
			// it cannot parse: those are not worth retrying.
			if er.StatusCode >= 500 {
				return backends.ErrUnavailable
			}
			return nil
		}
		// Unknown codes (and bodiless replies, whose Code is the status
		// line): fall back on the HTTP status.
		switch s := er.StatusCode; {
		case s == http.StatusNotFound:
			return iofs.ErrNotExist
		case s == http.StatusForbidden || s == http.StatusUnauthorized:
			return iofs.ErrPermission
		case s == http.StatusRequestedRangeNotSatisfiable:
			return iofs.ErrInvalid
		case s == http.StatusInsufficientStorage || s == http.StatusRequestEntityTooLarge:
			return backends.ErrNoSpace
		case s == http.StatusTooManyRequests || s == http.StatusRequestTimeout || s >= 500:
			return backends.ErrUnavailable
		}
		return nil
	}
	var ne net.Error // includes *url.Error: the request never got an answer
	if errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) {
		return backends.ErrUnavailable
	}
	return nil
}

// wrap names the provider, bucket and key of an error and adds kind.
// Messages never include credentials: minio-go signs in headers.
func (p *Provider) wrap(op, key string, kind, err error) error {
	if kind == nil {
		return fmt.Errorf("s3 provider %q: %s s3://%s/%s: %w", p.name, op, p.bucket, key, err)
	}
	return fmt.Errorf("s3 provider %q: %s s3://%s/%s: %w (%w)", p.name, op, p.bucket, key, err, kind)
}

// errorf makes a new error of kind (nil: none) about key.
func (p *Provider) errorf(op, key string, kind error, format string, a ...any) error {
	msg := fmt.Sprintf(format, a...)
	if kind == nil {
		return fmt.Errorf("s3 provider %q: %s s3://%s/%s: %s", p.name, op, p.bucket, key, msg)
	}
	return fmt.Errorf("s3 provider %q: %s s3://%s/%s: %s: %w", p.name, op, p.bucket, key, msg, kind)
}
