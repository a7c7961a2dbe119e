package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/datagate/datagate/views"
)

// Multipart limits (S3's).
const (
	MaxParts    = 10000
	MinPartSize = 5 << 20 // every part but the last
	MaxPartSize = 5 << 30
	// maxCompleteBody caps a CompleteMultipartUpload body: 10,000 parts
	// take about 1 MB.
	maxCompleteBody = 2 << 20
)

// multipart keeps unfinished uploads as directories under dir: info.json
// (who, where, metadata), an assembly file where parts of the common size
// land at their final offsets with an empty record file per part
// ("<number:05d>-<md5 hex>.a<size>", assembly.go), and one file per other
// part named "<number:05d>-<md5 hex>", written to a temporary name first.
// A part is either whole (its record or file exists) or absent.
// Completing renames the directory first, so a part that arrives
// meanwhile finds no upload.
type multipart struct {
	// immutable after newMultipart
	dir    string
	maxAge time.Duration
	log    *slog.Logger
	order  *orderHashes // the uploads' SHA-256 in part order (parthash_order.go)
	asm    *assemblies  // the uploads' assembly files (assembly.go)
	linked atomic.Int64 // Completes that handed the store an assembly file
	joined atomic.Int64 // or the parts copied into one file (joinParts)
}

type uploadInfo struct {
	Bucket      string            `json:"bucket"`
	Key         string            `json:"key"`
	User        string            `json:"user"`
	ContentType string            `json:"content_type,omitempty"`
	Meta        map[string]string `json:"meta,omitempty"`
	Created     time.Time         `json:"created"`
	// The write conditions sent with CreateMultipartUpload (condwrite.go).
	IfNoneMatch string `json:"if_none_match,omitempty"`
	IfMatch     string `json:"if_match,omitempty"`
}

// partFile is an uploaded part.
type partFile struct {
	n    int
	etag string      // hex MD5
	name string      // its spool file, or its record when in the assembly
	fi   os.FileInfo // of name as listed: the part's identity
	data string      // the file holding its bytes: name, or the assembly
	off  int64       // where in data
	sz   int64
}

func (p partFile) size() int64 { return p.sz }

func (p partFile) inAssembly() bool { return p.data != p.name }

// moved is p after its upload directory was renamed to dir.
func (p partFile) moved(dir string) partFile {
	p.name = filepath.Join(dir, filepath.Base(p.name))
	p.data = filepath.Join(dir, filepath.Base(p.data))
	return p
}

func newMultipart(dir string, maxAge time.Duration, log *slog.Logger) (*multipart, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("s3: multipart upload directory: %w", err)
	}
	return &multipart{dir: dir, maxAge: maxAge, log: log, order: newOrderHashes(), asm: newAssemblies()}, nil
}

// cleanLoop removes stale uploads until ctx ends (Server.Close), then
// waits for the parts being hashed from their spool files.
func (m *multipart) cleanLoop(ctx context.Context) {
	defer m.order.wait()
	every := min(max(m.maxAge/4, time.Second), 10*time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		m.clean(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// clean removes the uploads (and leftovers of interrupted completions)
// older than maxAge.
func (m *multipart) clean(now time.Time) {
	ents, err := os.ReadDir(m.dir)
	if err != nil {
		m.log.Warn("s3: listing multipart uploads", "dir", m.dir, "err", err)
		return
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || now.Sub(fi.ModTime()) < m.maxAge {
			continue
		}
		id := strings.TrimSuffix(e.Name(), ".completing")
		if info, err := m.info(id); err == nil && now.Sub(info.Created) < m.maxAge {
			continue
		}
		m.order.take(id)
		if u := m.asm.take(id); u != nil {
			u.seal()
		}
		if err := os.RemoveAll(filepath.Join(m.dir, e.Name())); err != nil {
			m.log.Warn("s3: removing stale multipart upload", "upload", e.Name(), "err", err)
			continue
		}
		m.log.Info("s3: removed stale multipart upload", "upload", e.Name(), "age", now.Sub(fi.ModTime()).Round(time.Second))
	}
	// In-order hashes and assembly states of uploads gone otherwise (a
	// part that arrived as its upload was completed or aborted); one
	// being completed is not gone.
	exists := func(id string) bool {
		for _, name := range []string{id, id + ".completing"} {
			if _, err := os.Stat(filepath.Join(m.dir, name)); err == nil {
				return true
			}
		}
		return false
	}
	m.order.prune(exists)
	m.asm.prune(exists)
}

func validUploadID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

func (m *multipart) info(id string) (*uploadInfo, error) {
	if !validUploadID(id) {
		return nil, ErrNoSuchUpload
	}
	b, err := os.ReadFile(filepath.Join(m.dir, id, "info.json"))
	if err != nil {
		return nil, ErrNoSuchUpload
	}
	var info uploadInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("s3: upload %s: info.json: %w", id, err)
	}
	return &info, nil
}

// upload returns an upload of the user, for that bucket and key.
func (m *multipart) upload(q *req, id string) (*uploadInfo, error) {
	info, err := m.info(id)
	if err != nil {
		return nil, err
	}
	if info.User != q.user || info.Bucket != q.bucket || info.Key != q.key {
		return nil, ErrNoSuchUpload
	}
	return info, nil
}

func (m *multipart) parts(dir string) ([]partFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, ErrNoSuchUpload
	}
	var asmSize int64
	for _, e := range ents {
		if s, ok := assemblySize(e.Name()); ok {
			asmSize = s
		}
	}
	var out []partFile
	for _, e := range ents {
		n, sum, size, ok := parsePartName(e.Name())
		if !ok || size > asmSize {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		p := partFile{n: n, etag: sum, name: filepath.Join(dir, e.Name()), fi: fi}
		if size >= 0 {
			p.data, p.off, p.sz = filepath.Join(dir, assemblyName(asmSize)), int64(n-1)*asmSize, size
		} else {
			p.data, p.sz = p.name, fi.Size()
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].n != out[j].n {
			return out[i].n < out[j].n
		}
		return out[i].fi.ModTime().After(out[j].fi.ModTime()) // newest first: it wins
	})
	// A part uploaded twice concurrently may briefly have two files.
	uniq := out[:0]
	for _, p := range out {
		if len(uniq) == 0 || uniq[len(uniq)-1].n != p.n {
			uniq = append(uniq, p)
		}
	}
	return uniq, nil
}

type initiateResult struct {
	XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
	NS       string   `xml:"xmlns,attr"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	UploadID string   `xml:"UploadId"`
}

func (s *Server) createUpload(q *req) {
	rights, err := s.bucketRights(q, q.bucket)
	if err == nil && rights&views.Write == 0 {
		err = ErrAccessDenied
	}
	if err == nil && strings.HasSuffix(q.key, "/") {
		err = withMessage(ErrInvalidArgument, "a key ending in '/' is a directory")
	}
	if err == nil {
		// Refuse a key that fits no template now, not after the parts.
		err = q.tree.CheckCreate(q.r.Context(), objectPath(q.r.Context(), q.tree, q.bucket, q.key))
	}
	var meta map[string]string
	if err == nil {
		meta, err = requestMeta(q.r.Header)
	}
	noneMatch, match := q.r.Header.Get("If-None-Match"), q.r.Header.Get("If-Match")
	if err == nil {
		var unlock func()
		if unlock, err = s.writeConditions(q, noneMatch, match); err == nil {
			unlock() // checked again at completion
		}
	}
	if err != nil {
		q.fail(s, err)
		return
	}
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	info := uploadInfo{Bucket: q.bucket, Key: q.key, User: q.user, ContentType: q.r.Header.Get("Content-Type"), Meta: meta, Created: time.Now().UTC(), IfNoneMatch: noneMatch, IfMatch: match}
	js, _ := json.Marshal(info)
	dir := filepath.Join(s.mp.dir, id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		q.fail(s, fmt.Errorf("s3: create upload %s: %w", id, err))
		return
	}
	if err := os.WriteFile(filepath.Join(dir, "info.json"), js, 0o600); err != nil {
		os.RemoveAll(dir)
		q.fail(s, fmt.Errorf("s3: create upload %s: %w", id, err))
		return
	}
	writeXML(q.w, initiateResult{NS: s3NS, Bucket: q.bucket, Key: q.key, UploadID: id})
}

func partNumber(q *req) (int, error) {
	n, err := strconv.Atoi(q.qs.Get("partNumber"))
	if err != nil || n < 1 || n > MaxParts {
		return 0, ErrInvalidPartNumber
	}
	return n, nil
}

type copyPartResult struct {
	XMLName      xml.Name `xml:"CopyPartResult"`
	NS           string   `xml:"xmlns,attr"`
	LastModified string   `xml:"LastModified"`
	ETag         string   `xml:"ETag"`
}

// uploadPart spools a part (UploadPart, or UploadPartCopy with
// x-amz-copy-source) into the upload's directory.
func (s *Server) uploadPart(q *req, id string) {
	n, err := partNumber(q)
	if err == nil {
		_, err = s.mp.upload(q, id)
	}
	if err != nil {
		q.fail(s, err)
		return
	}
	var src io.Reader
	var size int64
	var want []byte
	copying := q.r.Header.Get("x-amz-copy-source") != ""
	if copying {
		f, o, err := s.openSource(q)
		if err != nil {
			q.fail(s, err)
			return
		}
		defer f.Close()
		off, cnt := int64(0), max(o.Size, 0)
		if rg := q.r.Header.Get("x-amz-copy-source-range"); rg != "" {
			var ok bool
			off, cnt, ok, err = parseRange(rg, cnt)
			if err != nil || !ok {
				q.fail(s, withMessage(ErrInvalidArgument, "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy"))
				return
			}
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			q.fail(s, err)
			return
		}
		src, size = contextReader{q.r.Context(), io.LimitReader(f, cnt)}, cnt
	} else {
		body := s.verify.Body(q.r, q.auth)
		defer body.Close()
		if want, err = contentMD5(q.r.Header); err != nil {
			q.fail(s, err)
			return
		}
		src, size = &clientBody{r: body}, q.uploadSize()
	}
	if size > MaxPartSize {
		q.fail(s, ErrEntityTooLarge)
		return
	}
	dir := filepath.Join(s.mp.dir, id)
	// Into its slot of the upload's assembly file when it can go there,
	// else into a spool file of its own (assembly.go).
	asm := s.mp.asm.get(id, dir)
	var ap *assemblyPart
	if !copying {
		ap = asm.claim(dir, n, size)
	}
	if ap != nil {
		defer ap.finish("") // released even on a panic; no-op after finish
	}
	var tmp *os.File
	var dst io.Writer = ap
	if ap == nil {
		if tmp, err = os.CreateTemp(dir, "tmp-"); err != nil {
			q.fail(s, ErrNoSuchUpload)
			return
		}
		dst = tmp
	}
	// Background MD5s of earlier uploads wait while parts arrive.
	defer s.opts.Store.Uploading()()
	h, release := s.md5.get()
	// The whole object's SHA-256 too, when this part is next in order.
	order := s.mp.order.get(id)
	var spooled *partFile
	w := io.MultiWriter(dst, h)
	sh := order.begin(n)
	if sh != nil {
		w = io.MultiWriter(dst, h, sh)
	}
	defer func() { order.end(s.mp.order, n, spooled, sh != nil) }()
	bp := copyBufs.Get().(*[]byte)
	got, err := io.CopyBuffer(w, src, *bp)
	copyBufs.Put(bp)
	var fi os.FileInfo
	if tmp != nil {
		var serr error
		fi, serr = tmp.Stat()
		if cerr := tmp.Close(); err == nil {
			err = errors.Join(serr, cerr)
		}
	}
	sum := h.Sum(nil)
	release()
	switch {
	case err != nil:
		if cb, ok := src.(*clientBody); ok && cb.err != nil && errors.Is(err, io.ErrUnexpectedEOF) {
			// The client went away mid-part: its fault, not the server's
			// (it was an InternalError, logged as one).
			err = withMessage(ErrIncompleteBody, "the part's body ended after %d of %d bytes", got, size)
		}
	case size >= 0 && got != size:
		err = ErrIncompleteBody
	case want != nil && !equalBytes(want, sum):
		err = ErrBadDigest
	}
	if err != nil {
		if tmp != nil {
			os.Remove(tmp.Name())
		}
		q.fail(s, err)
		return
	}
	etag := hex.EncodeToString(sum)
	var p partFile
	if ap != nil {
		name := filepath.Join(dir, partName(n, etag, got))
		rfi, err := ap.finish(name)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				err = ErrNoSuchUpload // completed or aborted meanwhile
			}
			q.fail(s, err)
			return
		}
		p = partFile{n: n, etag: etag, name: name, fi: rfi, data: ap.path, off: ap.off, sz: got}
	} else {
		name := filepath.Join(dir, partName(n, etag, -1))
		if err := os.Rename(tmp.Name(), name); err != nil {
			os.Remove(tmp.Name())
			q.fail(s, ErrNoSuchUpload) // completed or aborted meanwhile
			return
		}
		asm.markHeld(n)
		p = partFile{n: n, etag: etag, name: name, fi: fi, data: name, sz: fi.Size()}
	}
	spooled = &p
	// Drop earlier uploads of this part number.
	if olds, err := filepath.Glob(filepath.Join(dir, fmt.Sprintf("%05d-*", n))); err == nil {
		for _, o := range olds {
			if o != p.name {
				os.Remove(o)
			}
		}
	}
	if copying {
		writeXML(q.w, copyPartResult{NS: s3NS, LastModified: s3Time(time.Now()), ETag: `"` + etag + `"`})
		return
	}
	q.w.Header().Set("ETag", `"`+etag+`"`)
	q.w.WriteHeader(http.StatusOK)
}

// clientBody is a part's body from the client, remembering a read error
// so that one is told from a failed write of the spool.
type clientBody struct {
	r   io.Reader
	err error
}

func (c *clientBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// copyBufs are the buffers parts are spooled through: far bigger than
// io.Copy's 32 KiB, so a part is written in fewer system calls.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

func equalBytes(a, b []byte) bool { return string(a) == string(b) }

type completeRequest struct {
	XMLName xml.Name `xml:"CompleteMultipartUpload"`
	Parts   []struct {
		PartNumber int    `xml:"PartNumber"`
		ETag       string `xml:"ETag"`
	} `xml:"Part"`
}

type completeResult struct {
	XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
	NS       string   `xml:"xmlns,attr"`
	Location string   `xml:"Location"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	ETag     string   `xml:"ETag"`
}

// completeUpload joins the named parts into the object: Tree.Create of
// the upload's assembly file when the parts fill it (spoolFile: the store
// links it), else of a reader of the parts (partsReader: the store copies
// them).
func (s *Server) completeUpload(q *req, id string) {
	info, err := s.mp.upload(q, id)
	if err != nil {
		q.fail(s, err)
		return
	}
	b, err := s.readSmallBody(q, maxCompleteBody)
	if err != nil {
		q.fail(s, err)
		return
	}
	var cr completeRequest
	if err := xml.Unmarshal(b, &cr); err != nil || len(cr.Parts) == 0 {
		q.fail(s, ErrMalformedXML)
		return
	}
	if len(cr.Parts) > MaxParts {
		q.fail(s, withMessage(ErrInvalidArgument, "Part number must be an integer between 1 and %d, inclusive: %d parts given", MaxParts, len(cr.Parts)))
		return
	}
	dir := filepath.Join(s.mp.dir, id)
	have, err := s.mp.parts(dir)
	if err != nil {
		q.fail(s, err)
		return
	}
	byN := make(map[int]partFile, len(have))
	for _, p := range have {
		byN[p.n] = p
	}
	var files []partFile
	var total int64
	sums := md5.New()
	for i, p := range cr.Parts {
		if i > 0 && p.PartNumber <= cr.Parts[i-1].PartNumber {
			q.fail(s, ErrInvalidPartOrder)
			return
		}
	}
	for i, p := range cr.Parts {
		f, ok := byN[p.PartNumber]
		if !ok || strings.Trim(p.ETag, `" `) != f.etag {
			q.fail(s, withMessage(ErrInvalidPart, "part %d: not uploaded, or its ETag differs", p.PartNumber))
			return
		}
		if i < len(cr.Parts)-1 && f.size() < MinPartSize {
			q.fail(s, withMessage(ErrEntityTooSmall, "part %d is %d bytes: every part but the last must be at least %d", p.PartNumber, f.size(), MinPartSize))
			return
		}
		raw, _ := hex.DecodeString(f.etag)
		sums.Write(raw)
		files = append(files, f)
		total += f.size()
	}
	noneMatch, match := q.r.Header.Get("If-None-Match"), q.r.Header.Get("If-Match")
	if noneMatch == "" && match == "" {
		noneMatch, match = info.IfNoneMatch, info.IfMatch
	}
	unlock, err := s.writeConditions(q, noneMatch, match)
	if err != nil {
		q.fail(s, err)
		return
	}
	defer unlock()
	// Take the upload away from concurrent part uploads and completions.
	busy := dir + ".completing"
	if err := os.Rename(dir, busy); err != nil {
		q.fail(s, ErrNoSuchUpload)
		return
	}
	for i := range files {
		files[i] = files[i].moved(busy)
	}
	ctx := q.r.Context()
	// The SHA-256 of the parts hashed in order as they were spooled, the
	// rest hashed now (nil: none hashed, the store hashes its copy).
	var sha []byte
	if u := s.mp.order.take(id); u != nil {
		sha = u.sum(s.mp.order, files)
	} else {
		s.mp.order.unhashed.Add(1)
	}
	// The object keeps the multipart ETag, so later reads give what
	// Complete answered (clients compare them). The store links the
	// assembly file, or copies it or the parts by the kernel (hashing the
	// copy with SHA-256 unless given it); the whole content's MD5, which
	// nothing here needs, it computes afterwards.
	etag := fmt.Sprintf("%s-%d", hex.EncodeToString(sums.Sum(nil)), len(files))
	var content io.Reader = &partsReader{ctx: ctx, parts: files}
	if !anyInAssembly(files) {
		content = &partFilesReader{content.(*partsReader), sha}
	} else {
		var f *os.File
		var ferr error
		if asm, ok := assembled(files); ok {
			if f, ferr = takeAssembly(s.mp.asm.get(id, busy), busy, asm, files, total); f != nil {
				s.mp.linked.Add(1)
			}
		}
		if f == nil && ferr == nil && sha != nil {
			if f, ferr = joinParts(busy, files); f != nil {
				s.mp.joined.Add(1)
			}
		}
		if ferr != nil {
			s.log.Warn("s3: multipart parts not joined in a file, copied", "upload", id, "err", ferr)
		}
		if f != nil {
			defer f.Close()
			content = &spoolFile{io.NewSectionReader(f, 0, total), f, sha}
		}
	}
	_, err = q.tree.Create(ctx, objectPath(ctx, q.tree, q.bucket, q.key), content, views.CreateOptions{
		Size: total, ContentType: info.ContentType, Meta: info.Meta, ETag: etag,
	})
	if err != nil {
		os.Rename(busy, dir) // the client may retry or abort
		q.fail(s, err)
		return
	}
	// The whole answer first, its length given so the client need not
	// wait for the handler's end: unlinking the parts takes a while (tens
	// of ms for 256 MiB). A failed flush only delays the answer; parts
	// left by a crash here are the cleaner's.
	var answer bytes.Buffer
	writeXML(bufferedAnswer{q.w, &answer}, completeResult{NS: s3NS, Location: objectURL(q.r), Bucket: q.bucket, Key: q.key, ETag: `"` + etag + `"`})
	q.w.Header().Set("Content-Length", strconv.Itoa(answer.Len()))
	q.w.WriteHeader(http.StatusOK)
	q.w.Write(answer.Bytes())
	http.NewResponseController(q.w).Flush()
	s.mp.asm.take(id)
	os.RemoveAll(busy)
}

// objectURL is the object's absolute URL as the request addressed it
// (path or virtual-hosted style), CompleteMultipartUpload's Location:
// clients take it as a URL, so the key is escaped.
func objectURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + (&url.URL{Path: r.URL.Path}).EscapedPath()
}

// bufferedAnswer is a ResponseWriter whose headers are w's and whose body
// goes to b, for an answer written whole later.
type bufferedAnswer struct {
	w http.ResponseWriter
	b *bytes.Buffer
}

func (a bufferedAnswer) Header() http.Header         { return a.w.Header() }
func (a bufferedAnswer) Write(p []byte) (int, error) { return a.b.Write(p) }
func (a bufferedAnswer) WriteHeader(int)             {}

func anyInAssembly(parts []partFile) bool {
	for _, p := range parts {
		if p.inAssembly() {
			return true
		}
	}
	return false
}

// partsReader reads the parts in turn, one file open at a time.
type partsReader struct {
	ctx   context.Context
	parts []partFile
	cur   *os.File
	rest  int64 // of the current part
}

// partFilesReader is a partsReader of whole part files. As a
// store.HashedFiles it lets the store copy them by the kernel instead,
// with their SHA-256 when this process hashed them.
type partFilesReader struct {
	*partsReader
	sha []byte // of the parts' files, computed here; nil: unknown
}

func (p *partFilesReader) SHA256() []byte { return p.sha }

func (p *partFilesReader) LocalFiles() []string {
	names := make([]string, len(p.parts))
	for i, f := range p.parts {
		names[i] = f.data
	}
	return names
}

func (p *partsReader) Read(b []byte) (int, error) {
	for {
		if err := p.ctx.Err(); err != nil {
			return 0, err
		}
		if p.cur == nil {
			if len(p.parts) == 0 {
				return 0, io.EOF
			}
			part := p.parts[0]
			f, err := os.Open(part.data)
			if err == nil {
				_, err = f.Seek(part.off, io.SeekStart)
			}
			if err != nil {
				if f != nil {
					f.Close()
				}
				return 0, fmt.Errorf("s3: reading part %d: %w", part.n, err)
			}
			p.cur, p.rest, p.parts = f, part.sz, p.parts[1:]
		}
		n, err := p.cur.Read(b[:min(int64(len(b)), p.rest)])
		p.rest -= int64(n)
		if p.rest == 0 || errors.Is(err, io.EOF) {
			p.cur.Close()
			p.cur = nil
			if p.rest > 0 {
				return n, fmt.Errorf("s3: reading a part: %w", io.ErrUnexpectedEOF)
			}
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (s *Server) abortUpload(q *req, id string) {
	if _, err := s.mp.upload(q, id); err != nil {
		q.fail(s, err)
		return
	}
	s.mp.order.take(id)
	if u := s.mp.asm.take(id); u != nil {
		u.seal() // parts being written fail now rather than at their end
	}
	if err := os.RemoveAll(filepath.Join(s.mp.dir, id)); err != nil {
		q.fail(s, err)
		return
	}
	q.w.WriteHeader(http.StatusNoContent)
}

type partXML struct {
	PartNumber   int    `xml:"PartNumber"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
}

type listPartsResult struct {
	XMLName              xml.Name  `xml:"ListPartsResult"`
	NS                   string    `xml:"xmlns,attr"`
	Bucket               string    `xml:"Bucket"`
	Key                  string    `xml:"Key"`
	UploadID             string    `xml:"UploadId"`
	Initiator            owner     `xml:"Initiator"`
	Owner                owner     `xml:"Owner"`
	StorageClass         string    `xml:"StorageClass"`
	PartNumberMarker     int       `xml:"PartNumberMarker"`
	NextPartNumberMarker int       `xml:"NextPartNumberMarker"`
	MaxParts             int       `xml:"MaxParts"`
	IsTruncated          bool      `xml:"IsTruncated"`
	Parts                []partXML `xml:"Part"`
}

func (s *Server) listParts(q *req, id string) {
	if _, err := s.mp.upload(q, id); err != nil {
		q.fail(s, err)
		return
	}
	qs := q.qs
	maxParts, marker := 1000, 0
	if v := qs.Get("max-parts"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			q.fail(s, withMessage(ErrInvalidArgument, "max-parts must be a non-negative integer"))
			return
		}
		maxParts = min(n, 1000)
	}
	if v := qs.Get("part-number-marker"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			q.fail(s, withMessage(ErrInvalidArgument, "part-number-marker must be a non-negative integer"))
			return
		}
		marker = n
	}
	parts, err := s.mp.parts(filepath.Join(s.mp.dir, id))
	if err != nil {
		q.fail(s, err)
		return
	}
	res := listPartsResult{NS: s3NS, Bucket: q.bucket, Key: q.key, UploadID: id, Initiator: owner{q.user, q.user}, Owner: owner{q.user, q.user}, StorageClass: "STANDARD", PartNumberMarker: marker, MaxParts: maxParts}
	for _, p := range parts {
		if p.n <= marker {
			continue
		}
		if len(res.Parts) == maxParts {
			res.IsTruncated = true
			break
		}
		res.Parts = append(res.Parts, partXML{PartNumber: p.n, LastModified: s3Time(p.fi.ModTime()), ETag: `"` + p.etag + `"`, Size: p.size()})
		res.NextPartNumberMarker = p.n
	}
	writeXML(q.w, res)
}

type uploadXML struct {
	Key          string `xml:"Key"`
	UploadID     string `xml:"UploadId"`
	Initiator    owner  `xml:"Initiator"`
	Owner        owner  `xml:"Owner"`
	StorageClass string `xml:"StorageClass"`
	Initiated    string `xml:"Initiated"`
}

type listUploadsResult struct {
	XMLName            xml.Name    `xml:"ListMultipartUploadsResult"`
	NS                 string      `xml:"xmlns,attr"`
	Bucket             string      `xml:"Bucket"`
	KeyMarker          string      `xml:"KeyMarker"`
	UploadIDMarker     string      `xml:"UploadIdMarker"`
	NextKeyMarker      string      `xml:"NextKeyMarker"`
	NextUploadIDMarker string      `xml:"NextUploadIdMarker"`
	Prefix             string      `xml:"Prefix"`
	Delimiter          string      `xml:"Delimiter,omitempty"`
	MaxUploads         int         `xml:"MaxUploads"`
	IsTruncated        bool        `xml:"IsTruncated"`
	Uploads            []uploadXML `xml:"Upload"`
	CommonPrefixes     []prefixXML `xml:"CommonPrefixes"`
}

// listUploads lists the user's unfinished uploads in the bucket, by key
// then upload id. Delimiters are not supported (ignored).
func (s *Server) listUploads(q *req) {
	if _, err := s.bucketRights(q, q.bucket); err != nil {
		q.fail(s, err)
		return
	}
	qs := q.qs
	maxUp := 1000
	if v := qs.Get("max-uploads"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			q.fail(s, withMessage(ErrInvalidArgument, "max-uploads must be a non-negative integer"))
			return
		}
		maxUp = min(n, 1000)
	}
	prefix, km, um := qs.Get("prefix"), qs.Get("key-marker"), qs.Get("upload-id-marker")
	ents, err := os.ReadDir(s.mp.dir)
	if err != nil {
		q.fail(s, err)
		return
	}
	type up struct {
		id   string
		info *uploadInfo
	}
	var ups []up
	for _, e := range ents {
		info, err := s.mp.info(e.Name())
		if err != nil || info.User != q.user || info.Bucket != q.bucket || !strings.HasPrefix(info.Key, prefix) {
			continue
		}
		if info.Key < km || info.Key == km && (um == "" || e.Name() <= um) {
			continue
		}
		ups = append(ups, up{e.Name(), info})
	}
	sort.Slice(ups, func(i, j int) bool {
		if ups[i].info.Key != ups[j].info.Key {
			return ups[i].info.Key < ups[j].info.Key
		}
		return ups[i].id < ups[j].id
	})
	res := listUploadsResult{NS: s3NS, Bucket: q.bucket, KeyMarker: km, UploadIDMarker: um, Prefix: prefix, MaxUploads: maxUp}
	for _, u := range ups {
		if len(res.Uploads) == maxUp {
			res.IsTruncated = true
			break
		}
		res.Uploads = append(res.Uploads, uploadXML{Key: u.info.Key, UploadID: u.id, Initiator: owner{q.user, q.user}, Owner: owner{q.user, q.user}, StorageClass: "STANDARD", Initiated: s3Time(u.info.Created)})
		res.NextKeyMarker, res.NextUploadIDMarker = u.info.Key, u.id
	}
	writeXML(q.w, res)
}
