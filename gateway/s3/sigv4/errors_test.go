package sigv4

import (
	"errors"
	"net/http"
	"testing"
)

func TestErrors(t *testing.T) {
	all := []*Error{
		ErrMissingAuth, ErrAccessDenied, ErrRequestExpired, ErrSignatureDoesNotMatch,
		ErrInvalidAccessKeyID, ErrRequestTimeTooSkewed, ErrAuthorizationHeaderMalformed,
		ErrAuthorizationQueryParameters, ErrMissingSecurityHeader, ErrInvalidArgument,
		ErrUnsupportedAuth, ErrNotImplemented, ErrMissingContentLength,
		ErrContentSHA256Mismatch, ErrIncompleteBody, ErrMalformedChunk, ErrBadDigest,
	}
	want := map[*Error]struct {
		code   string
		status int
	}{
		ErrMissingAuth:                  {"AccessDenied", 403},
		ErrAccessDenied:                 {"AccessDenied", 403},
		ErrRequestExpired:               {"AccessDenied", 403},
		ErrSignatureDoesNotMatch:        {"SignatureDoesNotMatch", 403},
		ErrInvalidAccessKeyID:           {"InvalidAccessKeyId", 403},
		ErrRequestTimeTooSkewed:         {"RequestTimeTooSkewed", 403},
		ErrAuthorizationHeaderMalformed: {"AuthorizationHeaderMalformed", 400},
		ErrAuthorizationQueryParameters: {"AuthorizationQueryParametersError", 400},
		ErrMissingSecurityHeader:        {"MissingSecurityHeader", 400},
		ErrInvalidArgument:              {"InvalidArgument", 400},
		ErrUnsupportedAuth:              {"InvalidRequest", 400},
		ErrNotImplemented:               {"NotImplemented", http.StatusNotImplemented},
		ErrMissingContentLength:         {"MissingContentLength", http.StatusLengthRequired},
		ErrContentSHA256Mismatch:        {"XAmzContentSHA256Mismatch", 400},
		ErrIncompleteBody:               {"IncompleteBody", 400},
		ErrMalformedChunk:               {"InvalidRequest", 400},
		ErrBadDigest:                    {"BadDigest", 400},
	}
	for _, s := range all {
		w, ok := want[s]
		if !ok || s.Code != w.code || s.Status != w.status {
			t.Errorf("%v: code %q status %d, want %+v", s, s.Code, s.Status, w)
		}
		e := errorf(s, "detail %d", 1)
		if !errors.Is(e, s) || e.Code != s.Code || e.Status != s.Status || e.Message != "detail 1" {
			t.Errorf("errorf(%v) = %#v", s, e)
		}
		for _, other := range all {
			if other != s && (errors.Is(e, other) || errors.Is(s, other)) {
				t.Errorf("%v matches %v", e, other)
			}
		}
	}
}
