// Package sigv4 verifies AWS Signature Version 4 on requests to the S3
// front-end: the Authorization header, presigned query URLs, and the
// payload the signature covers (x-amz-content-sha256: a SHA-256 checked
// against the body, UNSIGNED-PAYLOAD, or an aws-chunked body whose every
// chunk is signed, STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER], or carries
// a trailing checksum, STREAMING-UNSIGNED-PAYLOAD-TRAILER).
//
// The model is S3's, not the generic SigV4 one: the canonical URI encodes
// each path segment once and is never normalised ("/a/../b" and "//" are
// signed as sent, since S3 keys may contain them); presigned requests sign
// UNSIGNED-PAYLOAD unless x-amz-content-sha256 is sent; every x-amz-*
// header present must be signed.
//
// Use: res, err := v.Verify(r) authenticates the request without reading
// its body; then the handler reads the body only through v.Body(r, res),
// whose reader fails — instead of returning io.EOF — when the payload does
// not match what was signed. A handler must therefore commit an upload only
// after reading io.EOF from that reader. A streaming reader never returns a
// byte of a chunk before that chunk's signature is verified; it buffers one
// chunk at a time (at most MaxChunkSize).
//
// Errors are *Error, carrying the S3 code and HTTP status to answer with;
// errors.Is distinguishes them by sentinel (ErrSignatureDoesNotMatch,
// ErrRequestExpired, ...). Signatures are compared in constant time.
//
// Verify is pure computation (plus one Credentials lookup) and safe for
// concurrent use. Derived signing keys are cached per (secret, date,
// region, service) so a request costs one HMAC and one SHA-256 of the
// canonical request. The front-end must strip "aws-chunked" from a stored
// Content-Encoding; this package does not touch headers.
package sigv4
