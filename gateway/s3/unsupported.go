package s3

import "net/http"

// Write options that promise what this server does not do are refused
// rather than ignored: an object stored as if they held would mislead.
//
//   - Object Lock (x-amz-object-lock-mode, -retain-until-date,
//     -legal-hold): the client would believe the object cannot be
//     deleted or overwritten before the date. Buckets have no Object Lock
//     configuration, so S3's answer for them: InvalidRequest.
//   - SSE-C (x-amz-server-side-encryption-customer-*, also on a copy's
//     source): the client would believe the object can be read only with
//     its key; it would be stored in clear and served to anyone allowed.
//
// SSE-S3 and SSE-KMS requests (x-amz-server-side-encryption) are
// accepted: the object is stored unencrypted and answers name no
// encryption, which clients can see. Tags (x-amz-tagging) are dropped.
var (
	errObjectLock = &APIError{"InvalidRequest", http.StatusBadRequest, "Bucket is missing Object Lock Configuration"}
	errSSEC       = withMessage(ErrNotImplemented, "Server-side encryption with customer-provided keys (SSE-C) is not supported")
)

// refuseUnsupported checks a PutObject, CopyObject, CreateMultipartUpload
// or UploadPart request for the options above.
func refuseUnsupported(h http.Header) error {
	for _, k := range []string{"X-Amz-Object-Lock-Mode", "X-Amz-Object-Lock-Retain-Until-Date", "X-Amz-Object-Lock-Legal-Hold"} {
		if h.Get(k) != "" {
			return errObjectLock
		}
	}
	for _, k := range []string{"X-Amz-Server-Side-Encryption-Customer-Algorithm", "X-Amz-Copy-Source-Server-Side-Encryption-Customer-Algorithm"} {
		if h.Get(k) != "" {
			return errSSEC
		}
	}
	return nil
}
