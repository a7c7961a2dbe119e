package sigv4

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"strings"

	"github.com/minio/crc64nvme"
)

// MaxChunkSize bounds one aws-chunked chunk. The decoder holds a whole
// chunk before handing any of it out (its signature covers all of it), so
// this is also the most it buffers per upload. Clients use 8-64 KiB.
const MaxChunkSize = 16 << 20

// emptyHashLine sits between the previous signature and the chunk's hash
// in a chunk's string to sign (the hash of its empty "headers").
var emptyHashLine = []byte("\n" + emptySHA256 + "\n")

const (
	// readBufSize buffers the connection under the chunk framing: big
	// enough that a 64 KiB chunk, its header and the next one's come in
	// one read rather than a system call for each piece.
	readBufSize    = 128 << 10
	maxChunkLine   = 4096 // a chunk header or trailer line
	maxTrailers    = 16
	trailerSigName = "x-amz-trailer-signature"
)

// Body returns the reader a handler must consume r's body through, for the
// Result Verify gave:
//   - a hex x-amz-content-sha256: the body, with the hash checked at EOF —
//     the read that would return io.EOF returns ErrContentSHA256Mismatch
//     instead, so a handler that commits only on io.EOF never stores it;
//   - STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER): the decoded aws-chunked
//     payload, each chunk's signature checked before any of its bytes are
//     returned, the total held to x-amz-decoded-content-length, a trailing
//     checksum verified;
//   - STREAMING-UNSIGNED-PAYLOAD-TRAILER: the decoded payload, its trailing
//     checksum verified;
//   - UNSIGNED-PAYLOAD: the body as is.
//
// Errors are *Error (ErrContentSHA256Mismatch, ErrSignatureDoesNotMatch,
// ErrIncompleteBody, ErrMalformedChunk, ErrBadDigest), except failures of
// the underlying connection, which pass through. Close closes r.Body.
func (v *Verifier) Body(r *http.Request, res *Result) io.ReadCloser {
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	switch p := res.PayloadHash; {
	case p == UnsignedPayload:
		return body
	case p == StreamingPayload || p == StreamingPayloadTrailer || p == StreamingUnsignedTrailer:
		return newChunkedReader(body, res)
	default:
		h := &hashReader{body: body, h: sha256.New()}
		if _, err := hex.Decode(h.want[:], []byte(p)); err != nil {
			// Verify never yields this; refuse rather than pass unchecked.
			h.err = errorf(ErrInvalidArgument, "x-amz-content-sha256 %q is not a SHA-256", p)
		}
		return h
	}
}

// ContentSHA256 is the SHA-256 the body must have, when
// x-amz-content-sha256 is a real hash (not UNSIGNED-PAYLOAD or a
// streaming literal). A handler that stores the body with a store which
// hashes it anyway may read r.Body directly and have the store refuse a
// mismatch, instead of going through Body (which would hash it twice);
// it must then not act on the content before the store has checked it.
func (res *Result) ContentSHA256() ([]byte, bool) {
	p := res.PayloadHash
	if len(p) != 2*sha256.Size || p == UnsignedPayload || strings.HasPrefix(p, "STREAMING-") {
		return nil, false
	}
	sum, err := hex.DecodeString(p)
	if err != nil {
		return nil, false
	}
	return sum, true
}

// hashReader checks the SHA-256 of everything read against want at EOF.
type hashReader struct {
	body io.ReadCloser
	h    hash.Hash
	want [32]byte
	err  error // sticky
}

func (h *hashReader) Read(p []byte) (int, error) {
	if h.err != nil {
		return 0, h.err
	}
	n, err := h.body.Read(p)
	h.h.Write(p[:n])
	if err == io.EOF {
		var sum [32]byte
		if !bytes.Equal(h.h.Sum(sum[:0]), h.want[:]) {
			err = errorf(ErrContentSHA256Mismatch, "The provided 'x-amz-content-sha256' header does not match what was computed: %x", sum)
		}
	}
	if err != nil {
		h.err = err
	}
	return n, err
}

func (h *hashReader) Close() error { return h.body.Close() }

// chunkedReader decodes an aws-chunked body.
type chunkedReader struct {
	// immutable after newChunkedReader
	body        io.ReadCloser
	br          *bufio.Reader
	signed      bool      // chunk signatures (STREAMING-AWS4-HMAC-SHA256-*)
	hasTrailer  bool      // *-TRAILER: trailing headers after the last chunk
	mac         hash.Hash // keyed with the signing key
	chunkPrefix []byte    // "AWS4-HMAC-SHA256-PAYLOAD\n<date>\n<scope>\n"
	trailPrefix []byte    // "AWS4-HMAC-SHA256-TRAILER\n<date>\n<scope>\n"
	checksum    string    // the x-amz-checksum-* trailer announced, or ""
	limited     bool      // the decoded length is known

	prev      [64]byte  // hex signature of the previous chunk (seed first)
	remaining int64     // decoded bytes still due, when limited
	sum       hash.Hash // of the decoded data, for the checksum trailer
	buf       []byte    // the current verified chunk
	off       int       // next byte of buf to hand out
	err       error     // sticky; io.EOF once complete

	// Scratch space per chunk, here rather than on the stack: handed to
	// hash.Hash and io.Reader methods, it would escape, an allocation a
	// chunk.
	hx   [64]byte
	mac2 [32]byte
	crlf [2]byte
}

func newChunkedReader(body io.ReadCloser, res *Result) *chunkedReader {
	c := &chunkedReader{
		body:       body,
		br:         bufio.NewReaderSize(body, readBufSize),
		signed:     res.PayloadHash != StreamingUnsignedTrailer,
		hasTrailer: res.PayloadHash != StreamingPayload,
		checksum:   res.trailer,
		limited:    res.DecodedLength >= 0,
		remaining:  res.DecodedLength,
	}
	if c.signed {
		c.mac = hmac.New(sha256.New, res.signingKey)
		c.chunkPrefix = []byte("AWS4-HMAC-SHA256-PAYLOAD\n" + res.amzDate + "\n" + res.scope + "\n")
		c.trailPrefix = []byte("AWS4-HMAC-SHA256-TRAILER\n" + res.amzDate + "\n" + res.scope + "\n")
		hex.Encode(c.prev[:], res.seed[:])
	}
	if c.checksum != "" {
		c.sum = newChecksum(c.checksum)
	}
	return c
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	for c.off >= len(c.buf) {
		if c.err != nil {
			return 0, c.err
		}
		n, err := c.next(p)
		if err != nil {
			c.buf, c.off, c.err = nil, 0, err
			continue
		}
		if n > 0 {
			// The chunk went straight into p. Chunks already arriving
			// behind it follow while they fit, so the reader gets up to
			// len(p) at once rather than one chunk (64 KiB from most
			// clients) per call: fewer, bigger writes downstream. An
			// error stays for the next call; these bytes are checked.
			for n < len(p) && c.br.Buffered() > 0 {
				m, err := c.next(p[n:])
				if err != nil {
					c.buf, c.off, c.err = nil, 0, err
					break
				}
				if m == 0 {
					break // too big for what is left of p: in c.buf
				}
				n += m
			}
			return n, nil
		}
	}
	n := copy(p, c.buf[c.off:])
	c.off += n
	return n, nil
}

func (c *chunkedReader) Close() error {
	c.buf = nil
	if c.err == nil {
		c.err = errorf(ErrIncompleteBody, "body closed before its end")
	}
	return c.body.Close()
}

// next reads and checks the next chunk, or finishes the body with io.EOF.
// A chunk that fits in p is read straight into it and its size returned
// (the caller's buffer holds unchecked bytes meanwhile, but Read returns
// none of them unless the signature matches); otherwise it goes to c.buf
// and next returns 0.
func (c *chunkedReader) next(p []byte) (int, error) {
	line, err := c.readLine()
	if err != nil {
		return 0, err
	}
	size, sig, err := c.parseHeader(line)
	if err != nil {
		return 0, err
	}
	if c.limited && int64(size) > c.remaining {
		return 0, errorf(ErrMalformedChunk, "the chunks carry more data than x-amz-decoded-content-length")
	}
	direct := size > 0 && size <= len(p)
	var data []byte
	if direct {
		data = p[:size]
		c.buf, c.off = c.buf[:0], 0
		if err := c.readFull(data); err != nil {
			return 0, err
		}
	} else {
		if err := c.readData(size); err != nil {
			return 0, err
		}
		data = c.buf
	}
	if err := c.check(size, sig, data); err != nil {
		return 0, err
	}
	if direct {
		return size, nil
	}
	return 0, nil
}

// check finishes a chunk whose data was read: the framing after it, its
// signature, the counts; io.EOF after the last one.
func (c *chunkedReader) check(size int, sig [32]byte, data []byte) error {
	if size > 0 || !c.hasTrailer {
		if err := c.expectCRLF(); err != nil {
			return err
		}
	}
	if c.signed {
		dataSum := sha256.Sum256(data)
		c.mac.Reset()
		c.mac.Write(c.chunkPrefix)
		c.mac.Write(c.prev[:])
		c.mac.Write(emptyHashLine)
		hex.Encode(c.hx[:], dataSum[:])
		c.mac.Write(c.hx[:])
		if !hmac.Equal(c.mac.Sum(c.mac2[:0]), sig[:]) {
			return errorf(ErrSignatureDoesNotMatch, "the signature of a %d-byte chunk does not match", size)
		}
		hex.Encode(c.prev[:], sig[:])
	}
	if c.limited {
		c.remaining -= int64(size)
	}
	if c.sum != nil {
		c.sum.Write(data)
	}
	if size > 0 {
		return nil
	}
	return c.finish()
}

// finish handles what follows the zero-length chunk and returns io.EOF
// when the body is complete and consistent.
func (c *chunkedReader) finish() error {
	if c.hasTrailer {
		if err := c.readTrailers(); err != nil {
			return err
		}
	}
	// What may follow is the framing's closing CRLFs and nothing else.
	for n := 0; ; n++ {
		b, err := c.br.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if (b != '\r' && b != '\n') || n >= 4 {
			return errorf(ErrMalformedChunk, "data after the final chunk")
		}
	}
	if c.limited && c.remaining != 0 {
		return errorf(ErrIncompleteBody, "the chunks carry %d bytes less than x-amz-decoded-content-length", c.remaining)
	}
	return io.EOF
}

// readTrailers reads "name:value" lines up to the blank line (unsigned) or
// the x-amz-trailer-signature line (signed), checks the trailer signature
// and the announced checksum. Blank lines between trailers are tolerated:
// minio-go writes one.
func (c *chunkedReader) readTrailers() error {
	var canon []byte // "name:value\n" per trailer, what the signature covers
	var checksumValue string
	n := 0
	for {
		line, err := c.readLine()
		if err != nil {
			if errors.Is(err, ErrIncompleteBody) && !c.signed {
				break // the blank line closing unsigned trailers is optional at EOF
			}
			return err
		}
		if len(line) == 0 {
			if !c.signed && n > 0 {
				break
			}
			continue
		}
		name, value, ok := strings.Cut(string(line), ":")
		if !ok {
			return errorf(ErrMalformedChunk, "malformed trailer line")
		}
		name = strings.ToLower(strings.TrimSpace(name))
		value = strings.TrimSpace(value)
		if c.signed && name == trailerSigName {
			var sig [32]byte
			if !decodeSignature(value, &sig) {
				return errorf(ErrMalformedChunk, "malformed trailer signature")
			}
			h := sha256.Sum256(canon)
			c.mac.Reset()
			c.mac.Write(c.trailPrefix)
			c.mac.Write(c.prev[:])
			c.mac.Write([]byte{'\n'})
			var hx [64]byte
			hex.Encode(hx[:], h[:])
			c.mac.Write(hx[:])
			var got [32]byte
			if !hmac.Equal(c.mac.Sum(got[:0]), sig[:]) {
				return errorf(ErrSignatureDoesNotMatch, "the trailer signature does not match")
			}
			break
		}
		if n++; n > maxTrailers {
			return errorf(ErrMalformedChunk, "too many trailers")
		}
		canon = append(canon, name...)
		canon = append(canon, ':')
		canon = append(canon, value...)
		canon = append(canon, '\n')
		if name == c.checksum {
			checksumValue = value
		}
	}
	if c.sum != nil {
		if checksumValue == "" {
			return errorf(ErrMalformedChunk, "the body lacks the %s trailer x-amz-trailer announced", c.checksum)
		}
		if got := base64.StdEncoding.EncodeToString(c.sum.Sum(nil)); got != checksumValue {
			return errorf(ErrBadDigest, "%s %s does not match the data's %s", c.checksum, checksumValue, got)
		}
	}
	return nil
}

// readLine returns the next line without its CRLF (or bare LF).
func (c *chunkedReader) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) || len(line) > maxChunkLine {
			return nil, errorf(ErrMalformedChunk, "chunk header line too long")
		}
		if err == io.EOF {
			return nil, errorf(ErrIncompleteBody, "the body ended inside the aws-chunked framing")
		}
		return nil, err
	}
	if len(line) > maxChunkLine {
		return nil, errorf(ErrMalformedChunk, "chunk header line too long")
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// parseHeader parses "<hex size>;chunk-signature=<64 hex>" (signed) or
// "<hex size>[;extensions]" (unsigned).
func (c *chunkedReader) parseHeader(line []byte) (int, [32]byte, error) {
	var sig [32]byte
	sizeHex, ext, hasExt := bytes.Cut(line, []byte{';'})
	if len(sizeHex) == 0 || len(sizeHex) > 8 {
		return 0, sig, errorf(ErrMalformedChunk, "malformed chunk size")
	}
	size := 0
	for _, d := range sizeHex {
		if !ishex(d) {
			return 0, sig, errorf(ErrMalformedChunk, "malformed chunk size")
		}
		size = size<<4 | int(unhex(d))
	}
	if size > MaxChunkSize {
		return 0, sig, errorf(ErrMalformedChunk, "chunk of %d bytes exceeds the %d-byte limit", size, MaxChunkSize)
	}
	if c.signed {
		const prefix = "chunk-signature="
		if !hasExt || !bytes.HasPrefix(ext, []byte(prefix)) || len(ext) != len(prefix)+64 {
			return 0, sig, errorf(ErrMalformedChunk, "a chunk lacks a valid chunk-signature")
		}
		if _, err := hex.Decode(sig[:], ext[len(prefix):]); err != nil {
			return 0, sig, errorf(ErrMalformedChunk, "a chunk lacks a valid chunk-signature")
		}
	}
	return size, sig, nil
}

// readData reads size bytes into c.buf, growing it as data arrives rather
// than trusting the declared size up front.
func (c *chunkedReader) readData(size int) error {
	c.buf, c.off = c.buf[:0], 0
	for len(c.buf) < size {
		if len(c.buf) == cap(c.buf) {
			nb := make([]byte, len(c.buf), min(size, max(2*cap(c.buf), 64<<10)))
			copy(nb, c.buf)
			c.buf = nb
		}
		end := min(cap(c.buf), size)
		n, err := io.ReadFull(c.br, c.buf[len(c.buf):end])
		c.buf = c.buf[:len(c.buf)+n]
		if err != nil {
			c.buf = c.buf[:0]
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return errorf(ErrIncompleteBody, "the body ended inside a chunk")
			}
			return err
		}
	}
	return nil
}

// readFull reads exactly len(b) bytes of chunk data.
func (c *chunkedReader) readFull(b []byte) error {
	if _, err := io.ReadFull(c.br, b); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return errorf(ErrIncompleteBody, "the body ended inside a chunk")
		}
		return err
	}
	return nil
}

func (c *chunkedReader) expectCRLF() error {
	if _, err := io.ReadFull(c.br, c.crlf[:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return errorf(ErrIncompleteBody, "the body ended inside the aws-chunked framing")
		}
		return err
	}
	if c.crlf != [2]byte{'\r', '\n'} {
		return errorf(ErrMalformedChunk, "chunk data is not followed by CRLF")
	}
	return nil
}

func supportedChecksum(name string) bool {
	switch name {
	case "x-amz-checksum-crc32", "x-amz-checksum-crc32c", "x-amz-checksum-crc64nvme",
		"x-amz-checksum-sha1", "x-amz-checksum-sha256":
		return true
	}
	return false
}

func newChecksum(name string) hash.Hash {
	switch name {
	case "x-amz-checksum-crc32":
		return crc32.NewIEEE()
	case "x-amz-checksum-crc32c":
		return crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case "x-amz-checksum-crc64nvme":
		return crc64nvme.New()
	case "x-amz-checksum-sha1":
		return sha1.New()
	case "x-amz-checksum-sha256":
		return sha256.New()
	}
	return nil
}
