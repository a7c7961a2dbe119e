package s3

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/gateway/s3/sigv4"
)

// Every fs kind maps to an S3 error; a new kind fails here until mapped.
func TestKindTable(t *testing.T) {
	want := map[fs.Kind]struct {
		code   string
		status int
	}{
		fs.Other:       {"InternalError", 500},
		fs.NotExist:    {"NoSuchKey", 404},
		fs.Exist:       {"OperationAborted", 409},
		fs.Permission:  {"AccessDenied", 403},
		fs.NotEmpty:    {"BucketNotEmpty", 409},
		fs.IsDir:       {"OperationAborted", 409},
		fs.NotDir:      {"OperationAborted", 409},
		fs.Invalid:     {"InvalidArgument", 400},
		fs.Unavailable: {"ServiceUnavailable", 503},
		fs.NoSpace:     {"StorageFull", 507},
		fs.Unsupported: {"NotImplemented", 501},
	}
	for _, k := range fs.AllKinds {
		t.Run(k.String(), func(t *testing.T) {
			w, ok := want[k]
			if !ok {
				t.Fatalf("kind %v has no expected S3 error in this test", k)
			}
			if _, ok := kindErrors[k]; !ok {
				t.Fatalf("kind %v is not mapped", k)
			}
			got := toAPI(fs.E(k, "open", "/data/some/key", errors.New("cause")))
			if got.Code != w.code || got.Status != w.status {
				t.Errorf("toAPI(%v) = %s %d, want %s %d", k, got.Code, got.Status, w.code, w.status)
			}
			if k == fs.Invalid && !strings.Contains(got.Message, "/data/some/key") {
				t.Errorf("an Invalid error should name the path: %q", got.Message)
			}
			if k == fs.Other && strings.Contains(got.Message, "cause") {
				t.Errorf("an internal error leaks its cause: %q", got.Message)
			}
		})
	}
}

// S3-specific errors keep their code through wrapping, sigv4 errors
// theirs, and the XML answer carries code, message and request id.
func TestS3Errors(t *testing.T) {
	cases := []struct {
		err    error
		code   string
		status int
	}{
		{ErrNoSuchBucket, "NoSuchBucket", 404},
		{ErrNoSuchKey, "NoSuchKey", 404},
		{ErrNoSuchUpload, "NoSuchUpload", 404},
		{ErrAccessDenied, "AccessDenied", 403},
		{ErrInvalidRange, "InvalidRange", 416},
		{ErrPreconditionFailed, "PreconditionFailed", 412},
		{ErrNotModified, "NotModified", 304},
		{ErrEntityTooSmall, "EntityTooSmall", 400},
		{ErrEntityTooLarge, "EntityTooLarge", 400},
		{ErrInvalidPart, "InvalidPart", 400},
		{ErrInvalidPartOrder, "InvalidPartOrder", 400},
		{ErrMalformedXML, "MalformedXML", 400},
		{ErrInvalidArgument, "InvalidArgument", 400},
		{ErrNotImplemented, "NotImplemented", 501},
		{ErrBucketNotEmpty, "BucketNotEmpty", 409},
		{ErrKeyTooLong, "KeyTooLongError", 400},
		{fmt.Errorf("wrapped: %w", ErrNoSuchUpload), "NoSuchUpload", 404},
		{sigv4.ErrSignatureDoesNotMatch, "SignatureDoesNotMatch", 403},
		{sigv4.ErrInvalidAccessKeyID, "InvalidAccessKeyId", 403},
		{sigv4.ErrRequestTimeTooSkewed, "RequestTimeTooSkewed", 403},
		{sigv4.ErrAuthorizationQueryParameters, "AuthorizationQueryParametersError", 400},
		{fs.Wrap("create", "/data/k", sigv4.ErrContentSHA256Mismatch), "XAmzContentSHA256Mismatch", 400},
	}
	for _, c := range cases {
		got := toAPI(c.err)
		if got.Code != c.code || got.Status != c.status {
			t.Errorf("toAPI(%v) = %s %d, want %s %d", c.err, got.Code, got.Status, c.code, c.status)
		}
	}
	r := httptest.NewRequest(http.MethodGet, "/data/k", nil)
	w := httptest.NewRecorder()
	writeError(w, r, ErrNoSuchKey, "REQ1", "data", "k")
	body := w.Body.String()
	if w.Code != 404 || !strings.Contains(body, "<Code>NoSuchKey</Code>") || !strings.Contains(body, "<RequestId>REQ1</RequestId>") || !strings.Contains(body, "<Key>k</Key>") {
		t.Errorf("XML error: %d %s", w.Code, body)
	}
	r = httptest.NewRequest(http.MethodHead, "/data/k", nil)
	w = httptest.NewRecorder()
	writeError(w, r, ErrNoSuchKey, "REQ1", "data", "k")
	if w.Code != 404 || w.Body.Len() != 0 {
		t.Errorf("HEAD error carries a body: %d %q", w.Code, w.Body.String())
	}
}
