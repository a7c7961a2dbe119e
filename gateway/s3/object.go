package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/store"
	"github.com/datagate/datagate/gateway/httpserve"
	"github.com/datagate/datagate/gateway/s3/sigv4"
	"github.com/datagate/datagate/views"
)

// emptyETag is the ETag of empty content (folder objects).
const emptyETag = `"d41d8cd98f00b204e9800998ecf8427e"`

// metaPrefix is the header prefix of user metadata.
const metaPrefix = "x-amz-meta-"

// maxMetaSize is S3's limit on the user metadata of an object.
const maxMetaSize = 2 << 10

// etagOf is the S3 ETag of an object: the one a multipart upload gave it
// (md5-of-md5s-N, kept in the catalogue), else the MD5 of its content
// when known (always, for objects pushed through a front-end), else the
// source's entity tag, else the id (stable for the content version).
func etagOf(o *fs.Object) string {
	return quoteETag(o.ETag, o.MD5, o.ID, o.Version)
}

func quoteETag(etag string, sum []byte, id fs.ID, version uint32) string {
	etag = strings.Trim(etag, `"`)
	switch {
	case isMultipartETag(etag):
		return `"` + etag + `"`
	case len(sum) == md5.Size:
		return `"` + hex.EncodeToString(sum) + `"`
	case etag != "":
		return `"` + etag + `"`
	}
	return fmt.Sprintf(`"%s-%d"`, id, version)
}

func isHexMD5(e string) bool {
	if len(e) != 2*md5.Size {
		return false
	}
	_, err := hex.DecodeString(e)
	return err == nil
}

// isMultipartETag reports whether e has the form of a multipart upload's
// ETag: 32 hex digits, '-', the number of parts.
func isMultipartETag(e string) bool {
	sum, n, ok := strings.Cut(e, "-")
	if !ok || len(sum) != 2*md5.Size || n == "" || len(n) > 5 {
		return false
	}
	if _, err := hex.DecodeString(sum); err != nil {
		return false
	}
	_, err := strconv.ParseUint(n, 10, 32)
	return err == nil
}

// userMeta is the metadata returned as x-amz-meta-*: everything but the
// reserved dg. keys.
func userMeta(o *fs.Object) map[string]string {
	m := make(map[string]string, len(o.Meta))
	for k, v := range o.Meta {
		if !strings.HasPrefix(k, "dg.") {
			m[k] = v
		}
	}
	return m
}

// requestMeta collects x-amz-meta-* headers, keys lower-cased as S3 does.
func requestMeta(h http.Header) (map[string]string, error) {
	m := map[string]string{}
	size := 0
	for k, vs := range h {
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, metaPrefix) {
			continue
		}
		name := lk[len(metaPrefix):]
		v := strings.Join(vs, ",")
		size += len(name) + len(v)
		if name == "" {
			return nil, withMessage(ErrInvalidArgument, "empty metadata name")
		}
		m[name] = v
	}
	if size > maxMetaSize {
		return nil, &APIError{"MetadataTooLarge", http.StatusBadRequest, fmt.Sprintf("Your metadata headers exceed the maximum allowed metadata size (%d bytes).", maxMetaSize)}
	}
	return m, nil
}

// objectHeaders sets the headers describing o.
func objectHeaders(h http.Header, o *fs.Object) {
	ct := o.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	// Canonical keys set directly: Header.Set would canonicalise each on
	// every request.
	h["Content-Type"] = []string{ct}
	h["Etag"] = []string{etagOf(o)}
	h["Last-Modified"] = []string{o.ModTime.UTC().Format(http.TimeFormat)}
	h["Accept-Ranges"] = []string{"bytes"}
	n, size := 0, 0
	for k, v := range o.Meta {
		if !strings.HasPrefix(k, "dg.") {
			n++
			size += len(k) + len(v)
		}
	}
	if n <= maxMetaHeaders && size <= maxMetaOut {
		for k, v := range o.Meta {
			if !strings.HasPrefix(k, "dg.") {
				h[metaPrefix+k] = []string{v}
			}
		}
		return
	}
	// More than a client takes: the first keys in order, and how many
	// were left out in x-amz-missing-meta, as S3 does for metadata its
	// REST API cannot carry.
	keys := make([]string, 0, n)
	for k := range o.Meta {
		if !strings.HasPrefix(k, "dg.") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	size, sent := 0, 0
	for _, k := range keys {
		v := o.Meta[k]
		if sent == maxMetaHeaders || size+len(k)+len(v) > maxMetaOut {
			break
		}
		h[metaPrefix+k] = []string{v}
		size += len(k) + len(v)
		sent++
	}
	h["X-Amz-Missing-Meta"] = []string{strconv.Itoa(n - sent)}
}

// maxMetaHeaders and maxMetaOut bound the x-amz-meta-* headers of an
// answer. Metadata registered or set through WebDAV may hold more than
// S3's 2 KiB: 5,000 keys made 5,000 headers, and the aws CLI (Python's
// http.client takes 100 headers) could no longer HEAD or GET the object.
const (
	maxMetaHeaders = 64
	maxMetaOut     = 8 << 10
)

// conditions evaluates If-Match, If-Unmodified-Since, If-None-Match and
// If-Modified-Since with S3's precedence: a true If-Match overrides a
// false If-Unmodified-Since; a false If-None-Match overrides a true
// If-Modified-Since. prefix is "" or "x-amz-copy-source-".
func conditions(h http.Header, prefix, etag string, mod time.Time, notModified *APIError) error {
	mod = mod.Truncate(time.Second)
	if v := h.Get(prefix + "If-Match"); v != "" {
		if !etagMatch(v, etag) {
			return ErrPreconditionFailed
		}
	} else if v := h.Get(prefix + "If-Unmodified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil && mod.After(t) {
			return ErrPreconditionFailed
		}
	}
	if v := h.Get(prefix + "If-None-Match"); v != "" {
		if etagMatch(v, etag) {
			return notModified
		}
	} else if v := h.Get(prefix + "If-Modified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil && !mod.After(t) {
			return notModified
		}
	}
	return nil
}

func etagMatch(list, etag string) bool {
	want := strings.Trim(etag, `"`)
	for _, e := range strings.Split(list, ",") {
		e = strings.TrimSpace(e)
		e = strings.TrimPrefix(e, "W/")
		if e == "*" || strings.Trim(e, `"`) == want {
			return true
		}
	}
	return false
}

// parseRange parses a single byte range. ok is false when the header is
// absent or not a single well-formed range (S3 then sends everything).
func parseRange(h string, size int64) (off, n int64, ok bool, err error) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, nil
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, nil
	}
	if a == "" {
		k, perr := strconv.ParseInt(b, 10, 64)
		if perr != nil || k < 0 {
			return 0, 0, false, nil
		}
		if k == 0 {
			return 0, 0, false, ErrInvalidRange
		}
		if k > size {
			k = size
		}
		return size - k, k, true, nil
	}
	start, perr := strconv.ParseInt(a, 10, 64)
	if perr != nil || start < 0 {
		return 0, 0, false, nil
	}
	end := size - 1
	if b != "" {
		e, perr := strconv.ParseInt(b, 10, 64)
		if perr != nil || e < start {
			return 0, 0, false, nil
		}
		if e < end {
			end = e
		}
	}
	if start >= size {
		return 0, 0, false, ErrInvalidRange
	}
	return start, end - start + 1, true, nil
}

// responseOverrides are the query parameters that override response
// headers of a GET.
var responseOverrides = map[string]string{
	"response-content-type":        "Content-Type",
	"response-content-language":    "Content-Language",
	"response-expires":             "Expires",
	"response-cache-control":       "Cache-Control",
	"response-content-disposition": "Content-Disposition",
	"response-content-encoding":    "Content-Encoding",
}

// getObject serves GetObject and HeadObject.
func (s *Server) getObject(q *req, head bool) {
	// A GET learns whether the bucket exists only when Open fails (the
	// Tree checks the rights): listing the user's views costs on every
	// request otherwise.
	if head || strings.HasSuffix(q.key, "/") {
		if _, err := s.bucketRights(q, q.bucket); err != nil {
			q.fail(s, err)
			return
		}
	}
	ctx := q.r.Context()
	if strings.HasSuffix(q.key, "/") {
		s.getFolder(q, treePath(q.bucket, q.key))
		return
	}
	p := objectPath(ctx, q.tree, q.bucket, q.key)
	var o *fs.Object
	var f *views.File
	if head {
		info, err := q.tree.Stat(ctx, p)
		if err == nil && info.IsDir() {
			err = ErrNoSuchKey
		}
		if err == nil && q.tree.Views()[q.bucket]&views.Read == 0 {
			err = ErrAccessDenied
		}
		if err == nil {
			o, err = s.opts.Store.Get(ctx, info.ID())
		}
		if err == nil && o.Size < 0 {
			o, err = learnSize(ctx, q.tree, p)
		}
		if err != nil {
			q.fail(s, objectErr(err))
			return
		}
	} else {
		var err error
		if f, err = q.tree.Open(ctx, p); err != nil {
			if fs.KindOf(err) == fs.IsDir {
				err = ErrNoSuchKey
			}
			if _, berr := s.bucketRights(q, q.bucket); berr != nil {
				err = berr
			}
			q.fail(s, objectErr(err))
			return
		}
		defer f.Close()
		o = f.Reader.Object()
		if o.ETag == "" && len(o.MD5) == 0 && o.State == fs.StateStored {
			// Pushed through another front-end a moment ago: its ETag,
			// the MD5, is still being computed (Store.Get waits for it).
			if n, err := s.opts.Store.Get(ctx, o.ID); err == nil && n.Version == o.Version {
				o = n
			}
		}
	}
	h := q.w.Header()
	if err := conditions(q.r.Header, "", etagOf(o), o.ModTime, ErrNotModified); err != nil {
		if errors.Is(err, ErrNotModified) {
			h.Set("ETag", etagOf(o))
			h.Set("Last-Modified", o.ModTime.UTC().Format(http.TimeFormat))
		}
		q.fail(s, err)
		return
	}
	size := o.Size
	if size < 0 {
		size = 0
	}
	off, n, partial, err := parseRange(q.r.Header.Get("Range"), size)
	if err != nil {
		h.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
		q.fail(s, err)
		return
	}
	if !partial {
		off, n = 0, size
	}
	if !head && n > 0 {
		if err := primeContent(ctx, f, off); err != nil {
			q.fail(s, objectErr(httpserve.FetchErr(err)))
			return
		}
	}
	objectHeaders(h, o)
	if strings.Contains(q.r.URL.RawQuery, "response-") {
		for k, hd := range responseOverrides {
			if v := q.qs.Get(k); v != "" {
				h.Set(hd, v)
			}
		}
	}
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	status := http.StatusOK
	if partial {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, size))
		status = http.StatusPartialContent
	}
	q.w.WriteHeader(status)
	if head || n == 0 {
		return
	}
	if err := sendContent(q.w, f, off, n, partial); err != nil {
		// Headers are gone: all we can do is cut the connection short. A
		// client that stopped reading (a player seeking, "| head") is no
		// server trouble: debug level.
		lvl := slog.LevelWarn
		if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || q.r.Context().Err() != nil {
			lvl = slog.LevelDebug
		}
		s.log.Log(q.r.Context(), lvl, "s3 get: sending content", "bucket", q.bucket, "key", q.key, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// learnSize opens the object at p, registered without a size and not
// read yet, so that the store asks its provider for the size, and
// returns its record. A HEAD answered Content-Length: 0 for it while a
// GET sent its bytes (a client comparing sizes saw a corrupt transfer),
// and 200 when the provider's file was gone and a GET NoSuchKey.
func learnSize(ctx context.Context, t *views.Tree, p string) (*fs.Object, error) {
	f, err := t.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Reader.Object(), nil
}

// primeContent reads the byte at off of content that is not a whole
// local file before the status is sent: content not cached yet is
// fetched on the way (the chunk stays cached for the copy that follows),
// so a provider that fails is an error answer (503 ServiceUnavailable,
// NoSuchKey for a file gone), not a 200 whose connection is cut before
// any byte: clients saw an empty reply and retried in vain.
func primeContent(ctx context.Context, f *views.File, off int64) error {
	if _, ok := f.File(); ok {
		return nil
	}
	var b [1]byte
	if _, err := f.ReadAtContext(ctx, b[:], off); err != nil && err != io.EOF {
		return err
	}
	return nil
}

// smallObject is the size up to which content is copied through a
// pooled buffer rather than sent with sendfile.
const smallObject = 64 << 10

var smallBufs = sync.Pool{New: func() any { b := make([]byte, smallObject); return &b }}

// sendContent copies n bytes at off of f. Whole local content goes as
// the plain file so net/http can use sendfile.
func sendContent(w io.Writer, f *views.File, off, n int64, partial bool) error {
	if n <= smallObject {
		// One read and one write beat sendfile's extra system calls.
		bp := smallBufs.Get().(*[]byte)
		defer smallBufs.Put(bp)
		buf := (*bp)[:n]
		if _, err := f.ReadAt(buf, off); err != nil && !(errors.Is(err, io.EOF) && int64(len(buf)) == n) {
			return err
		}
		_, err := w.Write(buf)
		return err
	}
	if osf, ok := f.File(); ok {
		if _, err := osf.Seek(off, io.SeekStart); err != nil {
			return err
		}
		_, err := io.Copy(w, io.LimitReader(osf, n))
		return err
	}
	if !partial {
		_, err := io.Copy(w, f) // File.WriteTo reads in large steps
		return err
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	_, err := io.Copy(w, io.LimitReader(f, n))
	return err
}

// getFolder serves a key ending in "/": a directory made by Mkdir (or a
// PUT of such a key) is an empty object; one only implied by the objects
// under it is not.
func (s *Server) getFolder(q *req, p string) {
	info, err := q.tree.Stat(q.r.Context(), p)
	if err == nil && (!info.IsDir() || info.ModTime().IsZero()) {
		err = ErrNoSuchKey
	}
	if err != nil {
		q.fail(s, objectErr(err))
		return
	}
	h := q.w.Header()
	h.Set("Content-Type", "application/x-directory")
	h.Set("ETag", emptyETag)
	h.Set("Last-Modified", info.ModTime().UTC().Format(http.TimeFormat))
	h.Set("Content-Length", "0")
	q.w.WriteHeader(http.StatusOK)
}

// contentMD5 decodes Content-MD5, or returns nil when absent.
func contentMD5(h http.Header) ([]byte, error) {
	v := h.Get("Content-MD5")
	if v == "" {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(b) != md5.Size {
		return nil, ErrInvalidDigest
	}
	return b, nil
}

// uploadSize is the declared size of the request's payload, or -1.
func (q *req) uploadSize() int64 {
	if q.auth.Streaming {
		return q.auth.DecodedLength
	}
	return q.r.ContentLength
}

// putErr refines the store's refusal of an upload whose checksum or size
// differs from what the client declared.
func putErr(err error, md5Given, shaGiven bool) error {
	var ae *APIError
	var se *sigv4.Error
	if errors.As(err, &ae) || errors.As(err, &se) || fs.KindOf(err) != fs.Invalid {
		return err
	}
	msg := err.Error()
	switch {
	case md5Given && strings.Contains(msg, "MD5"):
		return ErrBadDigest
	case shaGiven && strings.Contains(msg, "SHA-256"):
		return sigv4.ErrContentSHA256Mismatch
	case strings.Contains(msg, "size"):
		return withMessage(ErrIncompleteBody, "%s", msg)
	}
	return err
}

func (s *Server) putObject(q *req) {
	if _, err := s.bucketRights(q, q.bucket); err != nil {
		q.fail(s, err)
		return
	}
	ctx := q.r.Context()
	if strings.HasSuffix(q.key, "/") {
		body := s.verify.Body(q.r, q.auth)
		defer body.Close()
		s.putFolder(q, treePath(q.bucket, q.key), body)
		return
	}
	p := objectPath(ctx, q.tree, q.bucket, q.key)
	body, wantSHA := s.storeBody(q)
	defer body.Close()
	sum, err := contentMD5(q.r.Header)
	if err != nil {
		q.fail(s, err)
		return
	}
	size := q.uploadSize()
	if size > MaxPutSize {
		q.fail(s, ErrEntityTooLarge)
		return
	}
	meta, err := requestMeta(q.r.Header)
	if err != nil {
		q.fail(s, err)
		return
	}
	unlock, err := s.writeConditions(q, q.r.Header.Get("If-None-Match"), q.r.Header.Get("If-Match"))
	if err != nil {
		q.fail(s, err)
		return
	}
	defer unlock()
	// The ETag answered is the content's MD5: the store computes it on
	// the way rather than after.
	info, err := q.tree.Create(ctx, p, store.MD5Now(body), views.CreateOptions{
		Size: size, ContentType: q.r.Header.Get("Content-Type"), MD5: sum, SHA256: wantSHA, Meta: meta,
	})
	if err != nil {
		q.fail(s, putErr(err, sum != nil, wantSHA != nil))
		return
	}
	q.w.Header().Set("ETag", quoteETag(info.ETag(), info.MD5(), info.ID(), 0))
	q.w.WriteHeader(http.StatusOK)
}

// storeBody is the body of an upload that goes to the store, and the
// SHA-256 the store must find in it: x-amz-content-sha256 when it is a
// real hash. The store hashes everything it stores, so it checks that
// hash on the way instead of the signature checker hashing the body a
// second time; a mismatch fails the put and nothing is kept. Otherwise
// (streaming, unsigned) the body comes through the signature checker.
func (s *Server) storeBody(q *req) (io.ReadCloser, []byte) {
	if sum, ok := q.auth.ContentSHA256(); ok && q.r.Body != nil {
		return q.r.Body, sum
	}
	return s.verify.Body(q.r, q.auth), nil
}

// putFolder makes the directory of a key ending in "/" (an empty body).
func (s *Server) putFolder(q *req, p string, body io.Reader) {
	n, err := io.Copy(io.Discard, io.LimitReader(body, 1))
	if err == nil && n > 0 {
		err = withMessage(ErrInvalidArgument, "an object whose key ends in '/' is a directory and must be empty")
	}
	if err == nil {
		err = makeFolder(q, p)
	}
	if err != nil {
		q.fail(s, err)
		return
	}
	q.w.Header().Set("ETag", emptyETag)
	q.w.WriteHeader(http.StatusOK)
}

// makeFolder makes directory p for a folder key; one that exists already
// is a success.
func makeFolder(q *req, p string) error {
	err := q.tree.Mkdir(q.r.Context(), p)
	if fs.KindOf(err) == fs.Exist {
		if info, serr := q.tree.Stat(q.r.Context(), p); serr == nil && info.IsDir() {
			err = nil
		}
	}
	return err
}

// copySource parses x-amz-copy-source: "[/]bucket/key[?versionId=null]",
// URL-encoded.
func copySource(v string) (bucket, key string, err error) {
	if i := strings.Index(v, "?"); i >= 0 {
		qv, perr := url.ParseQuery(v[i+1:])
		if perr != nil || (qv.Has("versionId") && qv.Get("versionId") != "null") {
			return "", "", withMessage(ErrInvalidArgument, "copy source version: buckets are unversioned; only versionId=null exists")
		}
		v = v[:i]
	}
	u, err := url.PathUnescape(v)
	if err != nil {
		return "", "", ErrInvalidCopySource
	}
	bucket, key, ok := strings.Cut(strings.TrimPrefix(u, "/"), "/")
	if !ok || bucket == "" || key == "" {
		return "", "", ErrInvalidCopySource
	}
	if len(key) > MaxKeyLength {
		return "", "", ErrKeyTooLong
	}
	return bucket, key, nil
}

// openSource opens the source of a copy, checking its conditions.
func (s *Server) openSource(q *req) (*views.File, *fs.Object, error) {
	sb, sk, err := copySource(q.r.Header.Get("x-amz-copy-source"))
	if err != nil {
		return nil, nil, err
	}
	if _, err := s.bucketRights(q, sb); err != nil {
		return nil, nil, err
	}
	f, err := q.tree.Open(q.r.Context(), objectPath(q.r.Context(), q.tree, sb, sk))
	if err != nil {
		if fs.KindOf(err) == fs.IsDir {
			err = ErrNoSuchKey
		}
		return nil, nil, objectErr(err)
	}
	o := f.Reader.Object()
	if err := conditions(q.r.Header, "x-amz-copy-source-", etagOf(o), o.ModTime, ErrPreconditionFailed); err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, o, nil
}

type copyObjectResult struct {
	XMLName      xml.Name `xml:"CopyObjectResult"`
	NS           string   `xml:"xmlns,attr"`
	LastModified string   `xml:"LastModified"`
	ETag         string   `xml:"ETag"`
}

// copyObject copies within a bucket or across buckets (views). The
// metadata directive COPY (default) keeps the source's metadata and
// content type; REPLACE takes the request's.
func (s *Server) copyObject(q *req) {
	if _, err := s.bucketRights(q, q.bucket); err != nil {
		q.fail(s, err)
		return
	}
	if strings.HasSuffix(q.key, "/") {
		s.copyFolder(q)
		return
	}
	ctx := q.r.Context()
	f, o, err := s.openSource(q)
	if err != nil {
		q.fail(s, err)
		return
	}
	defer f.Close()
	meta, ct := userMeta(o), o.ContentType
	switch d := q.r.Header.Get("x-amz-metadata-directive"); d {
	case "", "COPY":
	case "REPLACE":
		if meta, err = requestMeta(q.r.Header); err != nil {
			q.fail(s, err)
			return
		}
		ct = q.r.Header.Get("Content-Type")
	default:
		q.fail(s, withMessage(ErrInvalidArgument, "Unknown metadata directive %q", d))
		return
	}
	info, err := q.tree.Create(ctx, treePath(q.bucket, q.key), store.MD5Now(contextReader{ctx, f}), views.CreateOptions{
		Size: o.Size, ContentType: ct, Meta: meta, MD5: o.MD5, ModTime: time.Now(),
	})
	if err != nil {
		q.fail(s, err)
		return
	}
	writeXML(q.w, copyObjectResult{NS: s3NS, LastModified: s3Time(info.ModTime()), ETag: quoteETag(info.ETag(), info.MD5(), info.ID(), 0)})
}

// copyFolder copies a folder object ("dir/", made by Mkdir) onto a key
// ending in "/": it makes that directory, as PUT of an empty "dir2/"
// does (a client renaming a folder copies its placeholder). Anything
// else onto such a key is InvalidArgument: a directory holds no content.
func (s *Server) copyFolder(q *req) {
	sb, sk, err := copySource(q.r.Header.Get("x-amz-copy-source"))
	if err == nil {
		_, err = s.bucketRights(q, sb)
	}
	if err == nil && !strings.HasSuffix(sk, "/") {
		err = withMessage(ErrInvalidArgument, "cannot copy an object onto a key ending in '/' (a directory)")
	}
	if err == nil {
		var info *views.Info
		info, err = q.tree.Stat(q.r.Context(), treePath(sb, sk))
		if err == nil && (!info.IsDir() || info.ModTime().IsZero()) {
			err = ErrNoSuchKey // no folder object at that key
		}
	}
	if err != nil {
		q.fail(s, objectErr(err))
		return
	}
	if err := makeFolder(q, treePath(q.bucket, q.key)); err != nil {
		q.fail(s, err)
		return
	}
	writeXML(q.w, copyObjectResult{NS: s3NS, LastModified: s3Time(time.Now()), ETag: emptyETag})
}

// contextReader stops a long copy when the client goes away.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// deleteObject removes a key; a missing key is a success, as in S3, but
// only for a user who may delete in the bucket (AccessDenied otherwise,
// also for a missing key: the client must not believe it deleted).
func (s *Server) deleteObject(q *req) {
	if err := s.mayDelete(q); err != nil {
		q.fail(s, err)
		return
	}
	if err := s.deleteKey(q.r.Context(), q.tree, q.bucket, q.key); err != nil {
		q.fail(s, err)
		return
	}
	q.w.WriteHeader(http.StatusNoContent)
}

// deleteKey removes the object at key, or the folder object of a key
// ending in "/" (the directory, when empty). Nothing there is not an
// error: a directory implied by the keys under it has no folder object at
// its key ("aws s3 rm s3://b/dir/" deletes nothing and succeeds, as in
// S3).
func (s *Server) deleteKey(ctx context.Context, t *views.Tree, bucket, key string) error {
	var p string
	var err error
	if strings.HasSuffix(key, "/") {
		p = treePath(bucket, key)
		err = t.Rmdir(ctx, p)
		if fs.KindOf(err) == fs.NotEmpty {
			// Keys under it: the folder object (Mkdir's marker, if
			// any) goes alone, as in S3, and the keys imply the folder.
			err = t.RemoveMarkers(ctx, p)
		}
	} else {
		p = objectPath(ctx, t, bucket, key)
		err = t.Remove(ctx, p)
		if fs.KindOf(err) == fs.IsDir {
			err = nil // no object at that key, only keys under it
		}
	}
	if fs.KindOf(err) == fs.NotExist || fs.KindOf(err) == fs.NotDir {
		err = nil
	}
	return err
}

// maxDeleteBody caps a DeleteObjects request (1,000 keys of 1 KiB each
// fit with room to spare).
const maxDeleteBody = 2 << 20

type deleteRequest struct {
	XMLName xml.Name `xml:"Delete"`
	Quiet   bool     `xml:"Quiet"`
	Objects []struct {
		Key       string `xml:"Key"`
		VersionID string `xml:"VersionId"`
	} `xml:"Object"`
}

type deletedXML struct {
	Key string `xml:"Key"`
}

type deleteErrorXML struct {
	Key     string `xml:"Key"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

type deleteResult struct {
	XMLName xml.Name         `xml:"DeleteResult"`
	NS      string           `xml:"xmlns,attr"`
	Deleted []deletedXML     `xml:"Deleted"`
	Errors  []deleteErrorXML `xml:"Error"`
}

// readSmallBody reads a capped XML body through the signature checker:
// over max bytes is refused (MalformedXML), so is a body whose hash or
// Content-MD5 does not match.
func (s *Server) readSmallBody(q *req, max int64) ([]byte, error) {
	body := s.verify.Body(q.r, q.auth)
	defer body.Close()
	if q.r.ContentLength > max {
		return nil, withMessage(ErrMalformedXML, "request body over %d bytes", max)
	}
	b, err := io.ReadAll(io.LimitReader(body, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, withMessage(ErrMalformedXML, "request body over %d bytes", max)
	}
	sum, err := contentMD5(q.r.Header)
	if err != nil {
		return nil, err
	}
	if sum != nil {
		if got := md5.Sum(b); !bytes.Equal(got[:], sum) {
			return nil, ErrBadDigest
		}
	}
	return b, nil
}

// mayDelete is NoSuchBucket or AccessDenied unless the user has the
// right to delete in the bucket.
func (s *Server) mayDelete(q *req) error {
	r, err := s.bucketRights(q, q.bucket)
	if err == nil && r&views.Delete == 0 {
		err = ErrAccessDenied
	}
	return err
}

// deleteObjects is DeleteObjects. Without the right to delete, each key
// gets AccessDenied in the answer, as in S3.
func (s *Server) deleteObjects(q *req) {
	denied := s.mayDelete(q)
	if denied != nil && denied != ErrAccessDenied {
		q.fail(s, denied)
		return
	}
	b, err := s.readSmallBody(q, maxDeleteBody)
	if err != nil {
		q.fail(s, err)
		return
	}
	var dr deleteRequest
	if err := xml.Unmarshal(b, &dr); err != nil || len(dr.Objects) == 0 || len(dr.Objects) > 1000 {
		q.fail(s, ErrMalformedXML)
		return
	}
	// Folder objects ("dir/") go last, deepest first: a batch listed in
	// key order (s3cmd del -r, rclone purge) has a folder before what is
	// in it, and a folder is removed only once empty. The answer keeps
	// the request's order.
	order := make([]int, len(dr.Objects))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		ka, kb := dr.Objects[order[a]].Key, dr.Objects[order[b]].Key
		fa, fb := strings.HasSuffix(ka, "/"), strings.HasSuffix(kb, "/")
		if fa != fb {
			return fb
		}
		return fa && len(ka) > len(kb)
	})
	errs := make([]error, len(dr.Objects))
	for _, i := range order {
		o := dr.Objects[i]
		switch {
		case denied != nil:
			errs[i] = denied
		case o.VersionID != "" && o.VersionID != "null":
			errs[i] = withMessage(ErrInvalidArgument, "Invalid version id specified")
		case o.Key == "":
			errs[i] = withMessage(ErrInvalidArgument, "empty key")
		case len(o.Key) > MaxKeyLength:
			errs[i] = ErrKeyTooLong
		default:
			errs[i] = s.deleteKey(q.r.Context(), q.tree, q.bucket, o.Key)
		}
	}
	res := deleteResult{NS: s3NS}
	for i, o := range dr.Objects {
		if err := errs[i]; err != nil {
			ae := toAPI(err)
			res.Errors = append(res.Errors, deleteErrorXML{Key: o.Key, Code: ae.Code, Message: ae.Message})
			continue
		}
		if !dr.Quiet {
			res.Deleted = append(res.Deleted, deletedXML{Key: o.Key})
		}
	}
	writeXML(q.w, res)
}

// objectACL answers a full-control ACL for an object the user can read.
func (s *Server) objectACL(q *req) {
	rights, err := s.bucketRights(q, q.bucket)
	if err != nil {
		q.fail(s, err)
		return
	}
	if _, err := q.tree.Stat(q.r.Context(), objectPath(q.r.Context(), q.tree, q.bucket, q.key)); err != nil {
		q.fail(s, objectErr(err))
		return
	}
	writeXML(q.w, s.acl(q, rights))
}

// putObjectACL accepts and ignores an ACL: access is the config's. A
// write: AccessDenied without the w right.
func (s *Server) putObjectACL(q *req) {
	if r, err := s.bucketRights(q, q.bucket); err != nil || r&views.Write == 0 {
		if err == nil {
			err = ErrAccessDenied
		}
		q.fail(s, err)
		return
	}
	if _, err := q.tree.Stat(q.r.Context(), objectPath(q.r.Context(), q.tree, q.bucket, q.key)); err != nil {
		q.fail(s, objectErr(err))
		return
	}
	io.Copy(io.Discard, io.LimitReader(q.r.Body, 64<<10))
	q.w.WriteHeader(http.StatusOK)
}
