package s3

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/gateway/s3/sigv4"
)

// APIError is an S3 error answer: code, HTTP status and message.
type APIError struct {
	Code    string
	Status  int
	Message string
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// S3-specific errors that no fs kind expresses.
var (
	ErrNoSuchBucket          = &APIError{"NoSuchBucket", http.StatusNotFound, "The specified bucket does not exist."}
	ErrNoSuchKey             = &APIError{"NoSuchKey", http.StatusNotFound, "The specified key does not exist."}
	ErrNoSuchUpload          = &APIError{"NoSuchUpload", http.StatusNotFound, "The specified multipart upload does not exist."}
	ErrAccessDenied          = &APIError{"AccessDenied", http.StatusForbidden, "Access Denied"}
	ErrInvalidRange          = &APIError{"InvalidRange", http.StatusRequestedRangeNotSatisfiable, "The requested range is not satisfiable."}
	ErrPreconditionFailed    = &APIError{"PreconditionFailed", http.StatusPreconditionFailed, "At least one of the preconditions you specified did not hold."}
	ErrNotModified           = &APIError{"NotModified", http.StatusNotModified, "Not Modified"}
	ErrEntityTooSmall        = &APIError{"EntityTooSmall", http.StatusBadRequest, "Your proposed upload is smaller than the minimum allowed object size."}
	ErrEntityTooLarge        = &APIError{"EntityTooLarge", http.StatusBadRequest, "Your proposed upload exceeds the maximum allowed object size."}
	ErrInvalidPart           = &APIError{"InvalidPart", http.StatusBadRequest, "One or more of the specified parts could not be found or its entity tag did not match."}
	ErrInvalidPartOrder      = &APIError{"InvalidPartOrder", http.StatusBadRequest, "The list of parts was not in ascending order."}
	ErrMalformedXML          = &APIError{"MalformedXML", http.StatusBadRequest, "The XML you provided was not well-formed or did not validate against our published schema."}
	ErrInvalidArgument       = &APIError{"InvalidArgument", http.StatusBadRequest, "Invalid Argument"}
	ErrInvalidDigest         = &APIError{"InvalidDigest", http.StatusBadRequest, "The Content-MD5 you specified is not valid."}
	ErrBadDigest             = &APIError{"BadDigest", http.StatusBadRequest, "The Content-MD5 you specified did not match what we received."}
	ErrKeyTooLong            = &APIError{"KeyTooLongError", http.StatusBadRequest, "Your key is too long."}
	ErrInvalidBucketName     = &APIError{"InvalidBucketName", http.StatusBadRequest, "The specified bucket is not valid."}
	ErrBucketNotEmpty        = &APIError{"BucketNotEmpty", http.StatusConflict, "The bucket you tried to delete is not empty."}
	ErrBucketAlreadyOwned    = &APIError{"BucketAlreadyOwnedByYou", http.StatusConflict, "Your previous request to create the named bucket succeeded and you already own it."}
	ErrBucketAlreadyExists   = &APIError{"BucketAlreadyExists", http.StatusConflict, "The requested bucket name is not available."}
	ErrNotImplemented        = &APIError{"NotImplemented", http.StatusNotImplemented, "A header or query you provided implies functionality that is not implemented."}
	ErrMethodNotAllowed      = &APIError{"MethodNotAllowed", http.StatusMethodNotAllowed, "The specified method is not allowed against this resource."}
	ErrInternal              = &APIError{"InternalError", http.StatusInternalServerError, "We encountered an internal error. Please try again."}
	ErrMissingContentLength  = &APIError{"MissingContentLength", http.StatusLengthRequired, "You must provide the Content-Length HTTP header."}
	ErrIncompleteBody        = &APIError{"IncompleteBody", http.StatusBadRequest, "You did not provide the number of bytes specified by the Content-Length HTTP header."}
	ErrInvalidCopySource     = &APIError{"InvalidArgument", http.StatusBadRequest, "Copy Source must mention the source bucket and key: sourcebucket/sourcekey."}
	ErrInvalidToken          = &APIError{"InvalidArgument", http.StatusBadRequest, "The continuation token provided is incorrect."}
	ErrInvalidMaxKeys        = &APIError{"InvalidArgument", http.StatusBadRequest, "max-keys must be an integer between 0 and 2147483647."}
	ErrInvalidPartNumber     = &APIError{"InvalidArgument", http.StatusBadRequest, "Part number must be an integer between 1 and 10000, inclusive."}
	ErrInvalidEncodingMethod = &APIError{"InvalidArgument", http.StatusBadRequest, "Invalid Encoding Method specified in Request."}
)

// kindErrors maps every fs kind to the S3 error a request failing with
// it answers. Handlers refine NotExist (NoSuchBucket vs NoSuchKey).
var kindErrors = map[fs.Kind]*APIError{
	fs.Other:       ErrInternal,
	fs.NotExist:    ErrNoSuchKey,
	fs.Exist:       {"OperationAborted", http.StatusConflict, "Something already exists at this key."},
	fs.Permission:  ErrAccessDenied,
	fs.NotEmpty:    ErrBucketNotEmpty,
	fs.IsDir:       {"OperationAborted", http.StatusConflict, "A directory (a key prefix ending in '/') exists at this key."},
	fs.NotDir:      {"OperationAborted", http.StatusConflict, "An object exists where the key needs a directory."},
	fs.Invalid:     ErrInvalidArgument,
	fs.Unavailable: {"ServiceUnavailable", http.StatusServiceUnavailable, "The source of the data is unavailable; retry later."},
	fs.NoSpace:     {"StorageFull", http.StatusInsufficientStorage, "The server has no space left for this upload."},
	fs.Unsupported: ErrNotImplemented,
}

// toAPI turns any error into the S3 error to answer with. An *APIError
// or a sigv4 *Error keeps its code; fs errors map by kind with their own
// message (it names the path, e.g. a key that fits no template), except
// internal ones and the server's unavailability or lack of space, whose
// detail goes to the log only.
func toAPI(err error) *APIError {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae
	}
	var se *sigv4.Error
	if errors.As(err, &se) {
		return &APIError{Code: se.Code, Status: se.Status, Message: se.Message}
	}
	k := fs.KindOf(err)
	base, ok := kindErrors[k]
	if !ok {
		base = ErrInternal
	}
	if k == fs.Other || k == fs.NotExist || k == fs.Permission || k == fs.Unavailable || k == fs.NoSpace {
		// The server's trouble, not the request's: its detail (a
		// provider's URL, a path in the data directory) is for the log,
		// where the request id finds it.
		return base
	}
	return &APIError{Code: base.Code, Status: base.Status, Message: err.Error()}
}

// withMessage copies e with a specific message.
func withMessage(e *APIError, format string, args ...any) *APIError {
	return &APIError{Code: e.Code, Status: e.Status, Message: fmt.Sprintf(format, args...)}
}

type errorBody struct {
	XMLName    xml.Name `xml:"Error"`
	Code       string   `xml:"Code"`
	Message    string   `xml:"Message"`
	Resource   string   `xml:"Resource,omitempty"`
	RequestID  string   `xml:"RequestId"`
	BucketName string   `xml:"BucketName,omitempty"`
	Key        string   `xml:"Key,omitempty"`
}

// writeError answers e as S3 XML (no body for HEAD and 304).
func writeError(w http.ResponseWriter, r *http.Request, e *APIError, reqID, bucket, key string) {
	h := w.Header()
	h.Del("Content-Length")
	h.Del("ETag")
	h.Del("Last-Modified")
	if e.Status == http.StatusNotModified || r.Method == http.MethodHead {
		w.WriteHeader(e.Status)
		return
	}
	h.Set("Content-Type", "application/xml")
	w.WriteHeader(e.Status)
	w.Write([]byte(xml.Header))
	xml.NewEncoder(w).Encode(errorBody{Code: e.Code, Message: e.Message, Resource: r.URL.Path, RequestID: reqID, BucketName: bucket, Key: key})
}
