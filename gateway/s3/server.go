package s3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/datagate/datagate/fs/store"
	"github.com/datagate/datagate/gateway/s3/sigv4"
	"github.com/datagate/datagate/views"
)

// Defaults.
const (
	DefaultRegion       = "us-east-1"
	DefaultUploadMaxAge = 24 * time.Hour
	// MaxKeyLength is S3's limit on a key, in bytes.
	MaxKeyLength = 1024
	// MaxPutSize is S3's limit on a single PUT (5 GiB).
	MaxPutSize = 5 << 30
)

// Key is one S3 access key: its secret and the user it authenticates.
type Key struct {
	Secret string
	User   string
}

// Options configure New.
type Options struct {
	Store *store.Store
	Views *views.Set
	// Users are the profiles by user name; Keys the access keys by id:
	// a fixed set. A server whose users change while it runs (a
	// configuration reload) gives Tree and Key instead, which win.
	Users map[string]views.Profile
	Keys  map[string]Key
	// Tree returns an authenticated user's tree (made with ViewDirs), nil
	// for none (access denied); Key returns an access key by id. Both are
	// called on every request, so what they return may change between
	// requests; a request keeps what it started with.
	Tree func(user string) *views.Tree
	Key  func(id string) (Key, bool)
	// Region is what GetBucketLocation answers and the credential scope
	// must name; default DefaultRegion.
	Region string
	// Domain enables virtual-hosted-style addressing: a request to host
	// "<bucket>.<Domain>" addresses that bucket. Path style always works.
	Domain string
	// UploadDir is where multipart parts are spooled (created if needed).
	UploadDir string
	// UploadMaxAge is how long an unfinished multipart upload is kept;
	// default DefaultUploadMaxAge.
	UploadMaxAge time.Duration
	// StatfsDir is the data directory (for the trees' Statfs).
	StatfsDir string
	Logger    *slog.Logger
	// Audit gets failed authentications (views.AuditAuthFailure); nil:
	// the audit logger of Views.
	Audit *slog.Logger
	// Now is the clock for signatures; nil means time.Now.
	Now func() time.Time
}

// Server is the S3 API as an http.Handler. Close stops the cleaner of
// stale multipart uploads and the part MD5 lanes.
type Server struct {
	// immutable after New
	opts   Options
	log    *slog.Logger
	verify *sigv4.Verifier
	trees  map[string]*views.Tree
	mp     *multipart
	md5    *partHashes
	idPfx  string

	condLocks keyLocks    // conditional writes (condwrite.go)
	failAudit *auditLimit // failed logins recorded per address (audit.go)

	reqN   atomic.Uint64
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New makes the server and starts the cleaner of stale uploads.
func New(opts Options) (*Server, error) {
	if opts.Store == nil || opts.Views == nil {
		return nil, errors.New("s3: Store and Views are required")
	}
	if opts.UploadDir == "" {
		return nil, errors.New("s3: UploadDir is required")
	}
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if opts.UploadMaxAge <= 0 {
		opts.UploadMaxAge = DefaultUploadMaxAge
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Domain = strings.ToLower(strings.TrimPrefix(opts.Domain, "."))
	s := &Server{opts: opts, log: opts.Logger, trees: map[string]*views.Tree{}, failAudit: newAuditLimit(failAuditBurst, time.Minute)}
	for u, p := range opts.Users {
		s.trees[u] = views.NewTree(views.TreeOptions{Set: opts.Views, Store: opts.Store, User: u, Profile: p, ViewDirs: true, StatfsDir: opts.StatfsDir})
	}
	keys, key := opts.Keys, opts.Key
	if key == nil {
		key = func(id string) (Key, bool) { k, ok := keys[id]; return k, ok }
	}
	s.verify = &sigv4.Verifier{Region: opts.Region, Now: opts.Now, Creds: sigv4.CredentialsFunc(func(id string) (string, string, bool) {
		k, ok := key(id)
		return k.Secret, k.User, ok
	})}
	var b [4]byte
	rand.Read(b[:])
	s.idPfx = strings.ToUpper(hex.EncodeToString(b[:]))
	mp, err := newMultipart(opts.UploadDir, opts.UploadMaxAge, s.log)
	if err != nil {
		return nil, err
	}
	s.mp = mp
	s.md5 = newPartHashes()
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(1)
	go func() { defer s.wg.Done(); mp.cleanLoop(ctx) }()
	return s, nil
}

// Close stops the background cleaner and, once the part uploads using
// it end, the MD5 lanes. In-flight requests are the HTTP server's to
// drain.
func (s *Server) Close() error {
	s.cancel()
	s.wg.Wait()
	s.md5.close()
	return nil
}

// req is one request being served.
type req struct {
	w      http.ResponseWriter
	r      *http.Request
	id     string
	bucket string
	key    string
	user   string
	tree   *views.Tree
	auth   *sigv4.Result
	qs     url.Values // the parsed query, once per request
}

func (q *req) fail(s *Server, err error) {
	ae := toAPI(err)
	switch {
	case q.r.Context().Err() != nil:
		// The client went away (a GET cancelled mid-body): not a fault
		// of the server's to raise an operator for.
		s.log.DebugContext(q.r.Context(), "s3 request ended: the client went away", "method", q.r.Method, "bucket", q.bucket, "key", q.key, "user", q.user, "err", err)
	case ae.Status >= 500:
		s.log.ErrorContext(q.r.Context(), "s3 request failed", "method", q.r.Method, "bucket", q.bucket, "key", q.key, "user", q.user, "err", err)
	default:
		s.log.DebugContext(q.r.Context(), "s3 request refused", "method", q.r.Method, "bucket", q.bucket, "key", q.key, "user", q.user, "err", err)
	}
	writeError(q.w, q.r, ae, q.id, q.bucket, q.key)
}

// ServeHTTP authenticates and dispatches one S3 request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := s.begin(w, r) // request id and actor (audit.go)
	r = q.r
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.ErrorContext(r.Context(), "s3 handler panic", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
			writeError(w, r, ErrInternal, q.id, q.bucket, q.key)
		}
	}()
	h := w.Header()
	h["X-Amz-Request-Id"] = []string{q.id}
	h["Server"] = []string{"datagate"}
	q.bucket, q.key = s.address(r)
	res, err := s.verify.Verify(r)
	if err != nil {
		s.auditFailedAuth(q, err)
		q.fail(s, err)
		return
	}
	q.auth, q.user = res, res.User
	q.r = r.WithContext(views.WithUser(r.Context(), res.User))
	if q.tree = s.tree(res.User); q.tree == nil {
		q.fail(s, ErrAccessDenied)
		return
	}
	if len(q.key) > MaxKeyLength {
		q.fail(s, ErrKeyTooLong)
		return
	}
	s.route(q)
}

// tree returns the user's tree: Options.Tree's, or the fixed set's.
func (s *Server) tree(user string) *views.Tree {
	if s.opts.Tree != nil {
		return s.opts.Tree(user)
	}
	return s.trees[user]
}

// requestID is the instance prefix and a counter in 12 uppercase hex
// digits, built by hand: this runs on every request.
func (s *Server) requestID() string {
	const digits = "0123456789ABCDEF"
	var b [32]byte
	n := copy(b[:], s.idPfx)
	c := s.reqN.Add(1)
	for i := n + 11; i >= n; i-- {
		b[i] = digits[c&15]
		c >>= 4
	}
	return string(b[:n+12])
}

// address finds the bucket and key: virtual-hosted style when the host
// is a subdomain of Domain, path style otherwise. The key is the
// decoded path, taken as is (no cleaning: the Tree refuses unclean paths).
func (s *Server) address(r *http.Request) (bucket, key string) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	if s.opts.Domain != "" {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.ToLower(host)
		if b, ok := strings.CutSuffix(host, "."+s.opts.Domain); ok && b != "" {
			return b, p
		}
	}
	bucket, key, _ = strings.Cut(p, "/")
	return bucket, key
}

// route dispatches by method, addressing and sub-resource.
func (s *Server) route(q *req) {
	r := q.r
	q.qs = requestQuery(r.URL.RawQuery)
	qs := q.qs
	has := func(k string) bool { _, ok := qs[k]; return ok }
	m := r.Method
	switch {
	case q.bucket == "":
		if m == http.MethodGet {
			s.listBuckets(q)
			return
		}
		q.fail(s, ErrMethodNotAllowed)
		return
	case q.key == "":
		switch {
		case m == http.MethodGet && has("location"):
			s.bucketLocation(q)
		case m == http.MethodGet && has("uploads"):
			s.listUploads(q)
		case m == http.MethodGet && has("versions"):
			s.listObjects(q, listVersions)
		case m == http.MethodGet && has("versioning"):
			s.bucketVersioning(q)
		case m == http.MethodGet && (has("acl") || has("policy") || has("cors") || has("lifecycle") || has("tagging") || has("encryption") || has("website") || has("logging") || has("notification") || has("replication") || has("object-lock") || has("ownershipControls") || has("publicAccessBlock") || has("accelerate") || has("requestPayment")):
			s.bucketSubresource(q, qs)
		case m == http.MethodGet && qs.Get("list-type") == "2":
			s.listObjects(q, listV2)
		case m == http.MethodGet:
			s.listObjects(q, listV1)
		case m == http.MethodHead:
			s.headBucket(q)
		case m == http.MethodPut && has("acl"):
			s.putBucketACL(q)
		case m == http.MethodPut && len(qs) == 0:
			s.createBucket(q)
		case m == http.MethodDelete && len(qs) == 0:
			s.deleteBucket(q)
		case m == http.MethodPost && has("delete"):
			s.deleteObjects(q)
		case m == http.MethodPut || m == http.MethodDelete || m == http.MethodPost:
			q.fail(s, ErrNotImplemented)
		default:
			q.fail(s, ErrMethodNotAllowed)
		}
		return
	}
	if v, ok := qs["versionId"]; ok && (len(v) != 1 || v[0] != "null") {
		q.fail(s, withMessage(ErrInvalidArgument, "Invalid version id specified: buckets are unversioned; only versionId=null exists"))
		return
	}
	if m == http.MethodPut || m == http.MethodPost {
		if err := refuseUnsupported(r.Header); err != nil {
			q.fail(s, err)
			return
		}
	}
	uploadID := qs.Get("uploadId")
	switch {
	case m == http.MethodPost && has("uploads"):
		s.createUpload(q)
	case m == http.MethodPut && uploadID != "" && has("partNumber"):
		s.uploadPart(q, uploadID)
	case m == http.MethodPost && uploadID != "":
		s.completeUpload(q, uploadID)
	case m == http.MethodDelete && uploadID != "":
		s.abortUpload(q, uploadID)
	case m == http.MethodGet && uploadID != "":
		s.listParts(q, uploadID)
	case (m == http.MethodGet || m == http.MethodDelete) && has("tagging"):
		s.objectTagging(q, m == http.MethodDelete)
	case (m == http.MethodGet || m == http.MethodPut || m == http.MethodDelete) && (has("tagging") || has("retention") || has("legal-hold") || has("torrent") || has("restore") || has("attributes") || has("renameObject")):
		q.fail(s, ErrNotImplemented)
	case m == http.MethodGet && has("acl"):
		s.objectACL(q)
	case m == http.MethodPut && has("acl"):
		s.putObjectACL(q)
	case m == http.MethodGet:
		s.getObject(q, false)
	case m == http.MethodHead:
		s.getObject(q, true)
	case m == http.MethodPut && r.Header.Get("x-amz-copy-source") != "":
		s.copyObject(q)
	case m == http.MethodPut:
		s.putObject(q)
	case m == http.MethodDelete:
		s.deleteObject(q)
	case m == http.MethodPost:
		q.fail(s, ErrNotImplemented)
	default:
		q.fail(s, ErrMethodNotAllowed)
	}
}

var _ http.Handler = (*Server)(nil)

// requestQuery parses a query without a presigned URL's X-Amz-*
// parameters: they are the signature (checked already), not a
// sub-resource or an option, so a presigned CreateBucket has "no query",
// and a presigned GET of an object parses nothing at all.
func requestQuery(raw string) url.Values {
	other := false
	for rest := raw; rest != "" && !other; {
		var kv string
		kv, rest, _ = strings.Cut(rest, "&")
		other = kv != "" && !strings.HasPrefix(kv, "X-Amz-")
	}
	if !other {
		return nil // reads of a nil map find nothing
	}
	qs, _ := url.ParseQuery(raw) // as URL.Query: a malformed pair is dropped
	for k := range qs {
		if strings.HasPrefix(k, "X-Amz-") {
			delete(qs, k)
		}
	}
	return qs
}

// treePath is the Tree path of a key in a bucket: the root holds one
// directory per view (ViewDirs), so "<bucket>/<key>", the key's segments
// escaped (keys.go).
func treePath(bucket, key string) string { return "/" + bucket + "/" + treeKey(key) }

// bucketRights returns the user's rights on bucket, or NoSuchBucket when
// they do not see it (another user's bucket is not revealed).
func (s *Server) bucketRights(q *req, bucket string) (views.Rights, error) {
	if bucket == "" {
		return 0, ErrNoSuchBucket
	}
	r, ok := q.tree.Views()[bucket]
	if !ok {
		return 0, withMessage(ErrNoSuchBucket, "The specified bucket does not exist: %s", bucket)
	}
	return r, nil
}

// objectErr refines an error of an object operation: NotExist of the
// key is NoSuchKey.
func objectErr(err error) error {
	var ae *APIError
	if errors.As(err, &ae) {
		return err
	}
	if errors.Is(err, os.ErrNotExist) {
		return ErrNoSuchKey
	}
	return err
}
