package sigv4

import (
	"fmt"
	"net/http"
)

// Error is a verification failure carrying the S3 error code and HTTP status
// the front-end answers with. Every error Verify and the body readers return
// is an *Error; errors.Is matches it against the sentinel it was made from
// (ErrSignatureDoesNotMatch, ErrRequestExpired, ...), so two failures sharing
// an S3 code (a missing signature and an expired URL are both AccessDenied)
// stay distinguishable.
type Error struct {
	Code    string // S3 error code, e.g. "SignatureDoesNotMatch"
	Message string // human-readable detail for the XML <Message>
	Status  int    // HTTP status

	base *Error // the sentinel this error was made from; nil for a sentinel
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Is reports whether target is the sentinel e was made from.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && (t == e.base || t == e)
}

// The sentinels. Their Message is the default one; errors returned carry a
// more specific message but match the sentinel with errors.Is.
var (
	// ErrMissingAuth: the request carries neither an Authorization header
	// nor presigned query parameters (an anonymous request).
	ErrMissingAuth = sentinel("AccessDenied", http.StatusForbidden, "Access Denied")
	// ErrAccessDenied: unsigned x-amz-* headers and other refusals.
	ErrAccessDenied = sentinel("AccessDenied", http.StatusForbidden, "Access Denied")
	// ErrRequestExpired: a presigned URL past X-Amz-Date + X-Amz-Expires,
	// or dated too far in the future.
	ErrRequestExpired = sentinel("AccessDenied", http.StatusForbidden, "Request has expired")

	ErrSignatureDoesNotMatch = sentinel("SignatureDoesNotMatch", http.StatusForbidden,
		"The request signature we calculated does not match the signature you provided. Check your key and signing method.")
	ErrInvalidAccessKeyID = sentinel("InvalidAccessKeyId", http.StatusForbidden,
		"The AWS Access Key Id you provided does not exist in our records.")
	ErrRequestTimeTooSkewed = sentinel("RequestTimeTooSkewed", http.StatusForbidden,
		"The difference between the request time and the current time is too large.")
	ErrAuthorizationHeaderMalformed = sentinel("AuthorizationHeaderMalformed", http.StatusBadRequest,
		"The authorization header is malformed.")
	ErrAuthorizationQueryParameters = sentinel("AuthorizationQueryParametersError", http.StatusBadRequest,
		"Error parsing the X-Amz-Credential parameter.")
	ErrMissingSecurityHeader = sentinel("MissingSecurityHeader", http.StatusBadRequest,
		"Your request is missing a required header.")
	ErrInvalidArgument = sentinel("InvalidArgument", http.StatusBadRequest, "Invalid argument.")
	// ErrUnsupportedAuth: signature version 2 or an algorithm other than
	// AWS4-HMAC-SHA256.
	ErrUnsupportedAuth = sentinel("InvalidRequest", http.StatusBadRequest,
		"The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")
	ErrNotImplemented = sentinel("NotImplemented", http.StatusNotImplemented,
		"A header you provided implies functionality that is not implemented.")
	ErrMissingContentLength = sentinel("MissingContentLength", http.StatusLengthRequired,
		"You must provide the Content-Length HTTP header.")

	// Body errors, returned by the readers Body gives.

	// ErrContentSHA256Mismatch: the body's SHA-256 differs from x-amz-content-sha256.
	ErrContentSHA256Mismatch = sentinel("XAmzContentSHA256Mismatch", http.StatusBadRequest,
		"The provided 'x-amz-content-sha256' header does not match what was computed.")
	// ErrIncompleteBody: the body ended before the declared length or the
	// final chunk.
	ErrIncompleteBody = sentinel("IncompleteBody", http.StatusBadRequest,
		"You did not provide the number of bytes specified by the Content-Length HTTP header.")
	// ErrMalformedChunk: aws-chunked framing that cannot be parsed, a chunk
	// over MaxChunkSize, or more data than x-amz-decoded-content-length.
	ErrMalformedChunk = sentinel("InvalidRequest", http.StatusBadRequest, "Malformed aws-chunked body.")
	// ErrBadDigest: a trailing x-amz-checksum-* that does not match the data.
	ErrBadDigest = sentinel("BadDigest", http.StatusBadRequest,
		"The checksum you specified did not match the calculated checksum.")
)

func sentinel(code string, status int, msg string) *Error {
	return &Error{Code: code, Message: msg, Status: status}
}

// errorf makes an error matching base with a specific message.
func errorf(base *Error, format string, args ...any) *Error {
	return &Error{Code: base.Code, Status: base.Status, Message: fmt.Sprintf(format, args...), base: base}
}
