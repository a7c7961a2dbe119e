// Package s3 is the provider driver for an S3-compatible bucket (AWS S3,
// MinIO, Ceph RGW, our own gateway/s3), built on minio-go.
//
// A Provider maps provider paths to object keys under an optional key
// prefix that acts as its root. Keys ending in "/" (directory markers made
// by some tools) are not files and are skipped by List.
//
// # Timeouts and retries
//
// Config.Timeout bounds dialing, the wait for response headers and every
// single Read of an object body: a server that stops sending mid-body
// surfaces as backends.ErrUnavailable within Timeout, never a hang. The
// SDK's own retries are off: retrying is the job of the retry decorator, and
// ten silent SDK retries would multiply every timeout.
//
// # Errors
//
// Every error names the provider, bucket and key (never a credential) and
// is classified in one place, classify, into the backends vocabulary.
//
// A Provider is safe for concurrent use.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/datagate/datagate/backends"
)

// Defaults for the zero values of Config.
const (
	DefaultTimeout  = 30 * time.Second
	DefaultPartSize = 16 << 20

	// S3's limits on multipart uploads.
	minPartSize  = 5 << 20
	maxPartSize  = 5 << 30
	maxPartCount = 10000

	// probeSize is what Put reads of an upload of unknown size before
	// choosing between a single PUT and a multipart upload.
	probeSize = 1 << 20
)

// Config configures a Provider.
type Config struct {
	// Endpoint is host[:port], without a scheme.
	Endpoint string `yaml:"endpoint"`
	Bucket   string `yaml:"bucket"`
	// Prefix is an optional key prefix under which the provider's files
	// live; it acts as the provider's root.
	Prefix    string `yaml:"prefix"`
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key"`
	// Secure selects https.
	Secure bool   `yaml:"secure"`
	Region string `yaml:"region"`
	// PathStyle forces path-style requests (http://host/bucket/key), which
	// most non-AWS servers need; otherwise minio-go picks per endpoint.
	PathStyle bool `yaml:"path_style"`
	// Timeout bounds dialing, waiting for response headers and each idle
	// read of a body. Default DefaultTimeout.
	Timeout time.Duration `yaml:"timeout"`
	// PartSize is the multipart upload part size, also the memory one
	// upload of unknown size buffers. Default DefaultPartSize.
	PartSize uint64 `yaml:"part_size"`
}

// Provider reads and writes the objects of one bucket (under one prefix).
type Provider struct {
	// immutable after New
	name     string
	bucket   string
	root     string // "" or a key prefix ending in "/"
	timeout  time.Duration
	partSize uint64
	client   *minio.Client
}

// New returns a provider for cfg. It validates cfg but makes no network
// call; the first request finds out whether the bucket is reachable.
func New(name string, cfg Config) (*Provider, error) {
	invalid := func(format string, a ...any) error {
		return fmt.Errorf("s3 provider %q: %s: %w", name, fmt.Sprintf(format, a...), iofs.ErrInvalid)
	}
	if name == "" {
		return nil, invalid("empty name")
	}
	if cfg.Endpoint == "" {
		return nil, invalid("endpoint is required")
	}
	if strings.Contains(cfg.Endpoint, "://") {
		return nil, invalid("endpoint %q must be host[:port], without a scheme (use secure: true for https)", cfg.Endpoint)
	}
	if cfg.Bucket == "" {
		return nil, invalid("bucket is required")
	}
	if cfg.Timeout < 0 {
		return nil, invalid("negative timeout %v", cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.PartSize < minPartSize || cfg.PartSize > maxPartSize {
		return nil, invalid("part_size %d outside S3's limits [%d, %d]", cfg.PartSize, minPartSize, maxPartSize)
	}
	root := strings.Trim(cfg.Prefix, "/")
	if root != "" {
		if !validPath(root) {
			return nil, invalid("bad prefix %q", cfg.Prefix)
		}
		root += "/"
	}

	tr, err := minio.DefaultTransport(cfg.Secure)
	if err != nil {
		return nil, fmt.Errorf("s3 provider %q: transport: %w", name, err)
	}
	tr.DialContext = (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = cfg.Timeout
	tr.ResponseHeaderTimeout = cfg.Timeout
	tr.ExpectContinueTimeout = time.Second

	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       cfg.Secure,
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    tr,
		MaxRetries:   1, // no SDK retries: see the package doc
	})
	if err != nil {
		return nil, invalid("endpoint %q: %v", cfg.Endpoint, err)
	}
	return &Provider{
		name:     name,
		bucket:   cfg.Bucket,
		root:     root,
		timeout:  cfg.Timeout,
		partSize: cfg.PartSize,
		client:   client,
	}, nil
}

// Name returns the provider's configured name.
func (p *Provider) Name() string { return p.name }

// validPath reports whether path is a clean relative slash path.
func validPath(path string) bool {
	if path == "" || strings.HasPrefix(path, "/") || strings.HasSuffix(path, "/") {
		return false
	}
	for elem := range strings.SplitSeq(path, "/") {
		if elem == "" || elem == "." || elem == ".." {
			return false
		}
	}
	return true
}

// key returns the object key of a provider path.
func (p *Provider) key(op, path string) (string, error) {
	if !validPath(path) {
		return "", fmt.Errorf("s3 provider %q: %s %q in bucket %s: bad path: %w", p.name, op, path, p.bucket, iofs.ErrInvalid)
	}
	return p.root + path, nil
}

// Open returns bytes [off, off+length) of the file at path ([off, EOF) for
// length < 0) with one GET. The reader is bound to ctx, and each of its
// Reads to the provider's timeout.
func (p *Provider) Open(ctx context.Context, path string, off, length int64) (io.ReadCloser, error) {
	return p.open(ctx, path, off, length, -1)
}

// OpenSized is Open for a file that must be size bytes long: the answer's
// Content-Range total (Content-Length for a whole read) gives the
// object's size, and another size is backends.ErrChanged.
func (p *Provider) OpenSized(ctx context.Context, path string, off, length, size int64) (io.ReadCloser, error) {
	return p.open(ctx, path, off, length, size)
}

// open is Open; size is the object's expected size, < 0 if unknown.
func (p *Provider) open(ctx context.Context, path string, off, length, size int64) (io.ReadCloser, error) {
	key, err := p.key("open", path)
	if err != nil {
		return nil, err
	}
	if off < 0 || (length > 0 && off > math.MaxInt64-length) {
		return nil, p.errorf("open", key, iofs.ErrInvalid, "bad range off=%d len=%d", off, length)
	}
	if length == 0 {
		// Nothing to fetch, but the file must exist and reach off.
		return p.openAtEnd(ctx, key, off, 0, size, nil)
	}

	var opts minio.GetObjectOptions
	ranged := true
	switch {
	case length > 0:
		err = opts.SetRange(off, off+length-1)
	case off > 0:
		err = opts.SetRange(off, 0)
	default:
		ranged = false
	}
	if err != nil {
		return nil, p.errorf("open", key, iofs.ErrInvalid, "range off=%d len=%d: %v", off, length, err)
	}

	// The request's own context lets the read watchdog abort a stalled body.
	rctx, cancel := context.WithCancel(ctx)
	// Core's GetObject makes one request and fails at once, where
	// Client's defers both to the first Read.
	body, _, hdr, err := minio.Core{Client: p.client}.GetObject(rctx, p.bucket, key, opts)
	if err != nil {
		cancel()
		var er minio.ErrorResponse
		if errors.As(err, &er) && er.Code == "InvalidRange" {
			// off is at or past the end (or the file is empty).
			return p.openAtEnd(ctx, key, off, length, size, err)
		}
		return nil, p.classify("open", key, err)
	}
	if ranged {
		// Never hand out the wrong bytes: a server that ignored Range
		// answers from byte 0.
		start, ok := contentRangeStart(hdr.Get("Content-Range"))
		if (ok && start != off) || (!ok && off != 0) {
			body.Close()
			cancel()
			return nil, p.errorf("open", key, nil, "asked for bytes from %d, server sent Content-Range %q", off, hdr.Get("Content-Range"))
		}
	}
	if size >= 0 {
		total, ok := contentRangeTotal(hdr.Get("Content-Range"))
		if !ranged {
			total, err = strconv.ParseInt(hdr.Get("Content-Length"), 10, 64)
			ok = err == nil
		}
		if ok && total != size {
			body.Close()
			cancel()
			return nil, p.errorf("open", key, backends.ErrChanged, "%d bytes, registered with %d", total, size)
		}
	}
	return newReader(p, key, body, cancel, length), nil
}

// openAtEnd serves a read that starts at or past the end of the file, or
// asks for no bytes: S3 refuses those ranges, so Stat tells an empty read
// from one past the end. cause is the refusal, if any.
func (p *Provider) openAtEnd(ctx context.Context, key string, off, length, size int64, cause error) (io.ReadCloser, error) {
	info, err := p.client.StatObject(ctx, p.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return nil, p.classify("open", key, err)
	}
	switch {
	case size >= 0 && info.Size != size:
		return nil, p.errorf("open", key, backends.ErrChanged, "%d bytes, registered with %d", info.Size, size)
	case off > info.Size:
		return nil, p.errorf("open", key, iofs.ErrInvalid, "offset %d beyond the end (%d bytes)", off, info.Size)
	case cause != nil && off < info.Size:
		// Refused a range inside the file: it changed under us.
		return nil, p.classify("open", key, cause)
	case length < 0 || off+length <= info.Size:
		return io.NopCloser(strings.NewReader("")), nil
	}
	return io.NopCloser(&shortReader{err: p.errorf("read", key, io.ErrUnexpectedEOF, "file ends at %d, before %d", info.Size, off+length)}), nil
}

// contentRangeStart parses the first byte position of "bytes a-b/n".
func contentRangeStart(h string) (int64, bool) {
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, false
	}
	a, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(a, 10, 64)
	return n, err == nil
}

// contentRangeTotal parses the complete length of "bytes a-b/n".
func contentRangeTotal(h string) (int64, bool) {
	_, n, ok := strings.Cut(h, "/")
	if !ok || !strings.HasPrefix(h, "bytes ") {
		return 0, false
	}
	total, err := strconv.ParseInt(n, 10, 64)
	return total, err == nil
}

// Stat describes the file at path with one HEAD.
func (p *Provider) Stat(ctx context.Context, path string) (backends.Entry, error) {
	key, err := p.key("stat", path)
	if err != nil {
		return backends.Entry{}, err
	}
	info, err := p.client.StatObject(ctx, p.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return backends.Entry{}, p.classify("stat", key, err)
	}
	return backends.Entry{Path: path, Size: info.Size, ModTime: info.LastModified, ETag: strings.Trim(info.ETag, `"`)}, nil
}

// List calls fn for every object under prefix, page by page.
func (p *Provider) List(ctx context.Context, prefix string, fn func(backends.Entry) error) error {
	prefix = strings.TrimSuffix(prefix, "/")
	full := p.root
	if prefix != "" {
		if !validPath(prefix) {
			return fmt.Errorf("s3 provider %q: list %q in bucket %s: bad prefix: %w", p.name, prefix, p.bucket, iofs.ErrInvalid)
		}
		full += prefix + "/"
	}
	// Cancelling stops the SDK's iterator when fn ends the listing early.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	noOwner := false
	for obj := range p.client.ListObjectsIter(ctx, p.bucket, minio.ListObjectsOptions{Prefix: full, Recursive: true, FetchOwner: &noOwner}) {
		if obj.Err != nil {
			if er := minio.ToErrorResponse(obj.Err); er.Code == "NoSuchBucket" {
				// Not an empty listing (which a crawl of a prefix not
				// there yet is): the configuration names no bucket.
				return p.errorf("list", full, iofs.ErrInvalid, "bucket %q does not exist", p.bucket)
			}
			return p.classify("list", full, obj.Err)
		}
		if strings.HasSuffix(obj.Key, "/") {
			continue // a directory marker, not a file
		}
		rel, ok := strings.CutPrefix(obj.Key, p.root)
		if !ok || rel == "" {
			continue
		}
		if err := fn(backends.Entry{Path: rel, Size: obj.Size, ModTime: obj.LastModified, ETag: strings.Trim(obj.ETag, `"`)}); err != nil {
			return err
		}
	}
	return nil
}

// Put uploads r to path: one PUT when the content fits in a part (or in
// probeSize, when size is unknown), else a multipart upload that buffers one
// part at a time. S3 makes the object visible only when the upload
// completes, and minio-go aborts a failed multipart upload, so a failed Put
// leaves nothing behind.
func (p *Provider) Put(ctx context.Context, path string, r io.Reader, size int64) error {
	key, err := p.key("put", path)
	if err != nil {
		return err
	}
	if size < 0 {
		// minio-go sends any upload of unknown size as a multipart
		// upload: three requests even for a few bytes. Read a little
		// first; when that is all, it goes in one PUT of known size.
		buf := make([]byte, min(probeSize, p.partSize))
		n, err := io.ReadFull(r, buf)
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			size, r = int64(n), bytes.NewReader(buf[:n])
		case err != nil:
			return p.wrap("put", key, nil, err)
		default:
			size, r = -1, io.MultiReader(bytes.NewReader(buf), r)
		}
	}
	opts := minio.PutObjectOptions{PartSize: partSizeFor(size, p.partSize)}
	if size == 0 {
		// Over http minio-go signs even an empty body in streaming mode
		// and then sends it chunked, without the Content-Length S3
		// requires. There is no payload to sign.
		opts.DisableContentSha256 = true
	}
	_, err = p.client.PutObject(ctx, p.bucket, key, r, size, opts)
	if err != nil {
		return p.classify("put", key, err)
	}
	return nil
}

// partSizeFor returns the configured part size, or for an object too big
// to fit in S3's 10,000 parts of it, the smallest whole MiB that fits.
func partSizeFor(size int64, configured uint64) uint64 {
	if size <= 0 || uint64(size) <= configured*maxPartCount {
		return configured
	}
	const mib = 1 << 20
	need := (uint64(size) + maxPartCount - 1) / maxPartCount
	return min((need+mib-1)/mib*mib, maxPartSize)
}

// Delete removes the object at path; S3 reports success for an absent key.
func (p *Provider) Delete(ctx context.Context, path string) error {
	key, err := p.key("delete", path)
	if err != nil {
		return err
	}
	err = p.client.RemoveObject(ctx, p.bucket, key, minio.RemoveObjectOptions{})
	var er minio.ErrorResponse
	if errors.As(err, &er) && er.Code == "NoSuchKey" {
		return nil // some S3 look-alikes do report it
	}
	if err != nil {
		return p.classify("delete", key, err)
	}
	return nil
}

var (
	_ backends.Provider    = (*Provider)(nil)
	_ backends.Writer      = (*Provider)(nil)
	_ backends.SizedOpener = (*Provider)(nil)
)
