package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Payload hash literals of x-amz-content-sha256.
const (
	UnsignedPayload          = "UNSIGNED-PAYLOAD"
	StreamingPayload         = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	StreamingPayloadTrailer  = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	StreamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

const (
	algorithm   = "AWS4-HMAC-SHA256"
	terminator  = "aws4_request"
	amzDateFmt  = "20060102T150405Z"
	emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

	// DefaultMaxSkew is the clock skew S3 tolerates.
	DefaultMaxSkew = 15 * time.Minute
	// MaxPresignExpires is the longest X-Amz-Expires S3 accepts (7 days).
	MaxPresignExpires = 7 * 24 * time.Hour
)

// Credentials looks secrets up by access key id.
type Credentials interface {
	// Secret returns the secret access key of accessKeyID and the user it
	// belongs to; ok is false for an unknown key. It must not block for
	// long: it runs on every request.
	Secret(accessKeyID string) (secret, user string, ok bool)
}

// CredentialsFunc adapts a function to Credentials.
type CredentialsFunc func(accessKeyID string) (secret, user string, ok bool)

// Secret calls f.
func (f CredentialsFunc) Secret(accessKeyID string) (string, string, bool) { return f(accessKeyID) }

// Verifier checks AWS Signature Version 4 on S3 requests. Configure the
// exported fields before first use and do not change or copy it afterwards
// (it caches derived signing keys). It is safe for concurrent use.
type Verifier struct {
	// Region the credential scope must name. Empty accepts any region
	// (the scope's region is then used to derive the key, as S3-compatible
	// servers without a fixed region do).
	Region string
	// Service the credential scope must name; empty means "s3".
	Service string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxSkew bounds |request time - now| for header auth and how far in
	// the future a presigned URL may be dated; 0 means DefaultMaxSkew.
	MaxSkew time.Duration
	// Creds looks secrets up.
	Creds Credentials

	keys keyCache
}

// Result is what a verified request is known to be.
type Result struct {
	User      string // from Credentials
	AccessKey string
	// PayloadHash is the x-amz-content-sha256 the signature covers: a
	// lowercase hex SHA-256, UnsignedPayload or one of the Streaming*
	// literals. Presigned requests without the header are UnsignedPayload.
	PayloadHash string
	Streaming   bool // aws-chunked body (any Streaming* payload)
	Presigned   bool
	// DecodedLength is x-amz-decoded-content-length for a streaming body,
	// the object size; -1 otherwise.
	DecodedLength int64
	// Time is the request's signing time.
	Time time.Time

	// For the chunk signatures of a streaming body.
	seed       [32]byte
	signingKey []byte
	scope      string
	amzDate    string
	trailer    string // x-amz-trailer
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) maxSkew() time.Duration {
	if v.MaxSkew > 0 {
		return v.MaxSkew
	}
	return DefaultMaxSkew
}

func (v *Verifier) service() string {
	if v.Service != "" {
		return v.Service
	}
	return "s3"
}

// Verify authenticates r by its Authorization header or, failing that, by
// presigned query parameters. It reads neither the body nor anything
// blocking. A nil error means the signature is valid, but a hashed or
// streaming payload is checked only as Body is read: handlers must read the
// body through Body(r, res) and treat its errors as the request failing.
// Errors are *Error (see the sentinels).
func (v *Verifier) Verify(r *http.Request) (*Result, error) {
	if auth := r.Header.Get("Authorization"); auth != "" {
		if queryHas(r.URL.RawQuery, "X-Amz-Signature") || queryHas(r.URL.RawQuery, "X-Amz-Algorithm") {
			return nil, errorf(ErrInvalidArgument, "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified")
		}
		return v.verifyHeader(r, auth, "")
	}
	if queryHas(r.URL.RawQuery, "X-Amz-Algorithm") || queryHas(r.URL.RawQuery, "X-Amz-Signature") || queryHas(r.URL.RawQuery, "X-Amz-Credential") {
		return v.verifyPresigned(r)
	}
	if queryHas(r.URL.RawQuery, "Signature") || queryHas(r.URL.RawQuery, "AWSAccessKeyId") {
		return nil, ErrUnsupportedAuth
	}
	return nil, ErrMissingAuth
}

// signed is the parsed signature of a request, from either mechanism.
type signed struct {
	accessKey     string
	date          string // yyyymmdd of the scope
	region        string
	service       string
	signedHeaders string // "host;x-amz-date", as sent
	signature     [32]byte
	amzDate       string // ISO 8601 basic timestamp
	t             time.Time
}

// verifyHeader checks header auth. payloadOverride stands for a missing
// x-amz-content-sha256: S3 requires the header, but the generic SigV4 test
// suite (other services) signs the body's hash without sending it.
func (v *Verifier) verifyHeader(r *http.Request, auth, payloadOverride string) (*Result, error) {
	var s signed
	if err := parseAuthorization(auth, &s); err != nil {
		return nil, err
	}
	if err := v.checkScope(&s, ErrAuthorizationHeaderMalformed); err != nil {
		return nil, err
	}
	if d := r.Header.Get("X-Amz-Date"); d != "" {
		t, err := time.Parse(amzDateFmt, d)
		if err != nil {
			return nil, errorf(ErrAccessDenied, "X-Amz-Date %q is not an ISO 8601 basic timestamp", d)
		}
		s.t, s.amzDate = t, d
	} else if d := r.Header.Get("Date"); d != "" {
		t, err := http.ParseTime(d)
		if err != nil {
			return nil, errorf(ErrAccessDenied, "Date header %q cannot be parsed", d)
		}
		s.t, s.amzDate = t.UTC(), t.UTC().Format(amzDateFmt)
	} else {
		return nil, errorf(ErrAccessDenied, "AWS authentication requires a valid Date or x-amz-date header")
	}
	if s.amzDate[:8] != s.date {
		return nil, errorf(ErrAuthorizationHeaderMalformed, "Invalid credential date %q: it is not the same as X-Amz-Date %q", s.date, s.amzDate[:8])
	}
	if now := v.now(); absDuration(now.Sub(s.t)) > v.maxSkew() {
		return nil, errorf(ErrRequestTimeTooSkewed, "The difference between the request time %s and the server's time %s is too large", s.t.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}

	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		if payloadOverride == "" {
			return nil, errorf(ErrMissingSecurityHeader, "Missing required header for this request: x-amz-content-sha256")
		}
		payload = payloadOverride
	}
	if err := checkPayloadHash(payload); err != nil {
		return nil, err
	}
	res, err := v.check(r, &s, nil, payload, false, ErrAuthorizationHeaderMalformed)
	if err != nil {
		return nil, err
	}
	if res.Streaming {
		if err := streamingHeaders(r, res); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func (v *Verifier) verifyPresigned(r *http.Request) (*Result, error) {
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, errorf(ErrAuthorizationQueryParameters, "%v", err)
	}
	var algo, cred, date, expires, signedHeaders, signature string
	var nAlgo, nCred, nDate, nExp, nSH, nSig int
	for _, p := range q {
		switch p.key {
		case "X-Amz-Algorithm":
			algo = p.value
			nAlgo++
		case "X-Amz-Credential":
			cred = p.value
			nCred++
		case "X-Amz-Date":
			date = p.value
			nDate++
		case "X-Amz-Expires":
			expires = p.value
			nExp++
		case "X-Amz-SignedHeaders":
			signedHeaders = p.value
			nSH++
		case "X-Amz-Signature":
			signature = p.value
			nSig++
		}
	}
	if nAlgo != 1 || nCred != 1 || nDate != 1 || nExp != 1 || nSH != 1 || nSig != 1 {
		return nil, errorf(ErrAuthorizationQueryParameters, "Query-string authentication version 4 requires exactly one each of the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
	}
	if algo != algorithm {
		return nil, errorf(ErrAuthorizationQueryParameters, "X-Amz-Algorithm only supports %q", algorithm)
	}
	var s signed
	if err := parseCredential(cred, &s, ErrAuthorizationQueryParameters); err != nil {
		return nil, err
	}
	if err := v.checkScope(&s, ErrAuthorizationQueryParameters); err != nil {
		return nil, err
	}
	if !validSignedHeaders(signedHeaders) {
		return nil, errorf(ErrAuthorizationQueryParameters, "X-Amz-SignedHeaders %q is malformed or does not include host", signedHeaders)
	}
	s.signedHeaders = signedHeaders
	if !decodeSignature(signature, &s.signature) {
		return nil, errorf(ErrAuthorizationQueryParameters, "X-Amz-Signature must be 64 hexadecimal digits")
	}
	t, err := time.Parse(amzDateFmt, date)
	if err != nil {
		return nil, errorf(ErrAuthorizationQueryParameters, "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
	}
	s.t, s.amzDate = t, date
	if s.amzDate[:8] != s.date {
		return nil, errorf(ErrAuthorizationQueryParameters, "Invalid credential date %q: it is not the same as X-Amz-Date %q", s.date, s.amzDate[:8])
	}
	secs, err := strconv.ParseInt(expires, 10, 64)
	if err != nil || secs < 0 || len(expires) > 10 {
		return nil, errorf(ErrAuthorizationQueryParameters, "X-Amz-Expires should be a number")
	}
	if secs > int64(MaxPresignExpires/time.Second) {
		return nil, errorf(ErrAuthorizationQueryParameters, "X-Amz-Expires must be less than a week (in seconds) that is 604800")
	}
	now := v.now()
	if s.t.Sub(now) > v.maxSkew() {
		return nil, errorf(ErrRequestExpired, "Request is not valid yet: X-Amz-Date %s is in the future", date)
	}
	if now.After(s.t.Add(time.Duration(secs) * time.Second)) {
		return nil, errorf(ErrRequestExpired, "Request has expired")
	}

	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		payload = UnsignedPayload
	} else if err := checkPayloadHash(payload); err != nil {
		return nil, err
	}
	if strings.HasPrefix(payload, "STREAMING-") {
		return nil, errorf(ErrInvalidArgument, "a streaming payload cannot be sent with a presigned URL")
	}
	return v.check(r, &s, q, payload, true, ErrAuthorizationQueryParameters)
}

// check computes the signature of r and compares it with s.signature.
// query is the request's parsed query, or nil to parse it here.
func (v *Verifier) check(r *http.Request, s *signed, query []queryParam, payload string, presigned bool, malformed *Error) (*Result, error) {
	if err := unsignedAmzHeaders(r, s.signedHeaders); err != nil {
		return nil, err
	}
	if v.Creds == nil {
		return nil, errorf(ErrInvalidAccessKeyID, "no credentials are configured")
	}
	secret, user, ok := v.Creds.Secret(s.accessKey)
	if !ok {
		return nil, errorf(ErrInvalidAccessKeyID, "The AWS Access Key Id %q does not exist in our records.", s.accessKey)
	}
	key := v.keys.get(secret, s.date, s.region, s.service)

	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, r.Method...)
	b = append(b, '\n')
	b = appendCanonicalURI(b, r)
	b = append(b, '\n')
	var err error
	if query == nil {
		query, err = parseQuery(r.URL.RawQuery)
	}
	if err == nil {
		b = appendCanonicalQuery(b, query, presigned)
	}
	if err != nil {
		putBuf(bp, b)
		return nil, errorf(malformed, "%v", err)
	}
	b = append(b, '\n')
	b = appendCanonicalHeaders(b, r, s.signedHeaders)
	b = append(b, '\n')
	b = append(b, s.signedHeaders...)
	b = append(b, '\n')
	b = append(b, payload...)
	crHash := sha256.Sum256(b)

	// String to sign, reusing the buffer.
	b = append(b[:0], algorithm+"\n"...)
	b = append(b, s.amzDate...)
	b = append(b, '\n')
	scopeStart := len(b)
	b = appendScope(b, s)
	scopeEnd := len(b)
	b = append(b, '\n')
	b = hex.AppendEncode(b, crHash[:])
	mac := key.mac()
	mac.Write(b)
	var sum [32]byte
	mac.Sum(sum[:0])
	key.done(mac)
	var scope string
	if payload != UnsignedPayload && strings.HasPrefix(payload, "STREAMING-") {
		scope = string(b[scopeStart:scopeEnd])
	}
	putBuf(bp, b)

	if !hmac.Equal(sum[:], s.signature[:]) {
		return nil, ErrSignatureDoesNotMatch
	}
	res := &Result{
		User: user, AccessKey: s.accessKey, PayloadHash: payload, Presigned: presigned,
		DecodedLength: -1, Time: s.t,
	}
	if scope != "" {
		res.Streaming = true
		res.seed = sum
		res.signingKey = key.key
		res.scope = scope
		res.amzDate = s.amzDate
	}
	return res, nil
}

// bufPool holds canonical-request buffers, so a verification allocates
// none in the common case.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func putBuf(bp *[]byte, b []byte) {
	if cap(b) > 64<<10 {
		return // a request with huge headers: let its buffer go
	}
	*bp = b
	bufPool.Put(bp)
}

func appendScope(b []byte, s *signed) []byte {
	b = append(b, s.date...)
	b = append(b, '/')
	b = append(b, s.region...)
	b = append(b, '/')
	b = append(b, s.service...)
	b = append(b, "/"+terminator...)
	return b
}

// checkScope checks the credential scope against the verifier's.
func (v *Verifier) checkScope(s *signed, malformed *Error) error {
	if v.Region != "" && s.region != v.Region {
		return errorf(malformed, "the region %q is wrong; expecting %q", s.region, v.Region)
	}
	if s.service != v.service() {
		return errorf(malformed, "the service %q is wrong; expecting %q", s.service, v.service())
	}
	return nil
}

// parseAuthorization parses
// "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=a;b, Signature=hex"
// (commas with or without spaces, parameters in any order).
func parseAuthorization(auth string, s *signed) error {
	algo, rest, ok := strings.Cut(auth, " ")
	if !ok || algo != algorithm {
		if strings.HasPrefix(auth, "AWS ") {
			return ErrUnsupportedAuth
		}
		if !ok && auth == algorithm {
			return errorf(ErrAuthorizationHeaderMalformed, "the authorization header has no parameters")
		}
		return errorf(ErrUnsupportedAuth, "unsupported authorization algorithm %q", algo)
	}
	var haveCred, haveSH, haveSig bool
	for rest != "" {
		var part string
		part, rest, _ = strings.Cut(rest, ",")
		part = strings.TrimSpace(part)
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return errorf(ErrAuthorizationHeaderMalformed, "the authorization header is malformed; %q is not name=value", part)
		}
		switch name {
		case "Credential":
			if haveCred {
				return errorf(ErrAuthorizationHeaderMalformed, "the authorization header repeats Credential")
			}
			haveCred = true
			if err := parseCredential(val, s, ErrAuthorizationHeaderMalformed); err != nil {
				return err
			}
		case "SignedHeaders":
			if haveSH {
				return errorf(ErrAuthorizationHeaderMalformed, "the authorization header repeats SignedHeaders")
			}
			haveSH = true
			if !validSignedHeaders(val) {
				return errorf(ErrAuthorizationHeaderMalformed, "the authorization header's SignedHeaders %q is malformed or does not include host", val)
			}
			s.signedHeaders = val
		case "Signature":
			if haveSig {
				return errorf(ErrAuthorizationHeaderMalformed, "the authorization header repeats Signature")
			}
			haveSig = true
			if !decodeSignature(val, &s.signature) {
				return errorf(ErrAuthorizationHeaderMalformed, "the authorization header's Signature must be 64 hexadecimal digits")
			}
		default:
			return errorf(ErrAuthorizationHeaderMalformed, "the authorization header has an unknown parameter %q", name)
		}
	}
	if !haveCred || !haveSH || !haveSig {
		return errorf(ErrAuthorizationHeaderMalformed, "the authorization header requires Credential, SignedHeaders and Signature")
	}
	return nil
}

// parseCredential parses "AK/20130524/us-east-1/s3/aws4_request".
func parseCredential(c string, s *signed, malformed *Error) error {
	// The access key is everything before the last four fields, so a key
	// is never split.
	i := len(c)
	var f [4]string
	for n := 3; n >= 0; n-- {
		j := strings.LastIndexByte(c[:i], '/')
		if j < 0 {
			return errorf(malformed, "the Credential %q is malformed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"", c)
		}
		f[n] = c[j+1 : i]
		i = j
	}
	s.accessKey = c[:i]
	s.date, s.region, s.service = f[0], f[1], f[2]
	if s.accessKey == "" || f[3] != terminator || len(s.date) != 8 || !allDigits(s.date) || s.region == "" {
		return errorf(malformed, "the Credential %q is malformed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"", c)
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validSignedHeaders accepts a ';'-separated list of non-empty lowercase
// header names that includes host.
func validSignedHeaders(sh string) bool {
	host := false
	for sh != "" {
		var name string
		name, sh, _ = strings.Cut(sh, ";")
		if name == "" {
			return false
		}
		for i := 0; i < len(name); i++ {
			c := name[i]
			if c >= 'A' && c <= 'Z' || c <= ' ' || c >= 0x7f || c == ':' {
				return false
			}
		}
		if name == "host" {
			host = true
		}
	}
	return host
}

func decodeSignature(sig string, out *[32]byte) bool {
	if len(sig) != 64 {
		return false
	}
	_, err := hex.Decode(out[:], []byte(sig))
	return err == nil
}

// checkPayloadHash validates an x-amz-content-sha256 value.
func checkPayloadHash(p string) error {
	switch p {
	case UnsignedPayload, StreamingPayload, StreamingPayloadTrailer, StreamingUnsignedTrailer:
		return nil
	case "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER":
		return errorf(ErrNotImplemented, "x-amz-content-sha256 %s (SigV4a) is not implemented", p)
	}
	if len(p) == 64 {
		for i := 0; i < len(p); i++ {
			c := p[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return errorf(ErrInvalidArgument, "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-* value or a lowercase hex SHA-256")
			}
		}
		return nil
	}
	return errorf(ErrInvalidArgument, "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-* value or a lowercase hex SHA-256")
}

// streamingHeaders reads the headers an aws-chunked body depends on.
func streamingHeaders(r *http.Request, res *Result) error {
	dl := r.Header.Get("X-Amz-Decoded-Content-Length")
	if dl == "" {
		return errorf(ErrMissingContentLength, "a streaming upload requires x-amz-decoded-content-length")
	}
	n, err := strconv.ParseInt(dl, 10, 64)
	if err != nil || n < 0 {
		return errorf(ErrInvalidArgument, "x-amz-decoded-content-length %q is not a length", dl)
	}
	res.DecodedLength = n
	if res.PayloadHash == StreamingPayloadTrailer || res.PayloadHash == StreamingUnsignedTrailer {
		res.trailer = strings.ToLower(strings.TrimSpace(r.Header.Get("X-Amz-Trailer")))
		if res.trailer != "" && !supportedChecksum(res.trailer) {
			return errorf(ErrInvalidArgument, "x-amz-trailer %q is not a supported checksum", res.trailer)
		}
	}
	return nil
}

// unsignedAmzHeaders refuses x-amz-* headers the signature does not cover,
// as S3 does: otherwise anyone holding a presigned URL could add, say,
// x-amz-copy-source to it. x-amz-content-sha256 is exempt: its value is
// part of the canonical request whether listed or not.
func unsignedAmzHeaders(r *http.Request, signedHeaders string) error {
	for k := range r.Header {
		if len(k) < 6 || !strings.EqualFold(k[:6], "x-amz-") || strings.EqualFold(k, "x-amz-content-sha256") {
			continue
		}
		if !listHas(signedHeaders, k) {
			return errorf(ErrAccessDenied, "There were headers present in the request which were not signed: %s", strings.ToLower(k))
		}
	}
	return nil
}

func listHas(list, name string) bool {
	for list != "" {
		var n string
		n, list, _ = strings.Cut(list, ";")
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
