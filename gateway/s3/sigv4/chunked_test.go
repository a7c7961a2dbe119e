package sigv4

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
)

// exampleResult is the Result of AWS's chunked upload example, for driving
// the decoder directly.
func exampleResult(decoded int64) *Result {
	res := &Result{
		PayloadHash:   StreamingPayload,
		Streaming:     true,
		DecodedLength: decoded,
		signingKey:    signingKey(s3Secret, "20130524", "us-east-1", "s3"),
		scope:         "20130524/us-east-1/s3/aws4_request",
		amzDate:       "20130524T000000Z",
	}
	hex.Decode(res.seed[:], []byte("4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"))
	return res
}

// signChunks encodes chunks the way a client does, chaining from res's
// seed. (The chaining itself is proven against AWS's published chunk
// signatures in TestS3DocChunkedUpload.)
func signChunks(res *Result, chunks ...[]byte) []byte {
	var out bytes.Buffer
	prev := hex.EncodeToString(res.seed[:])
	for _, c := range chunks {
		sum := sha256.Sum256(c)
		m := hmac.New(sha256.New, res.signingKey)
		io.WriteString(m, "AWS4-HMAC-SHA256-PAYLOAD\n"+res.amzDate+"\n"+res.scope+"\n"+prev+"\n"+emptySHA256+"\n"+hex.EncodeToString(sum[:]))
		prev = hex.EncodeToString(m.Sum(nil))
		fmt.Fprintf(&out, "%x;chunk-signature=%s\r\n", len(c), prev)
		out.Write(c)
		out.WriteString("\r\n")
	}
	return out.Bytes()
}

func decode(res *Result, body []byte) ([]byte, error) {
	c := newChunkedReader(io.NopCloser(bytes.NewReader(body)), res)
	return io.ReadAll(c)
}

func TestChunkedDecoder(t *testing.T) {
	a := bytes.Repeat([]byte("a"), 1000)
	b := bytes.Repeat([]byte("b"), 500)
	cases := []struct {
		name     string
		declared int64
		body     []byte
		want     []byte // data handed out
		err      error
	}{
		{"valid", 1500, signChunks(exampleResult(0), a, b, nil), append(append([]byte{}, a...), b...), nil},
		{"no CRLF after the final chunk", 1500, bytes.TrimSuffix(signChunks(exampleResult(0), a, b, nil), []byte("\r\n")), append(append([]byte{}, a...), b...), ErrIncompleteBody},
		{"more than declared", 1499, signChunks(exampleResult(0), a, b, nil), a, ErrMalformedChunk},
		{"less than declared", 1501, signChunks(exampleResult(0), a, b, nil), append(append([]byte{}, a...), b...), ErrIncompleteBody},
		{"no final chunk", 1500, signChunks(exampleResult(0), a, b), append(append([]byte{}, a...), b...), ErrIncompleteBody},
		{"data after the final chunk", 1500, append(signChunks(exampleResult(0), a, b, nil), "xx"...), append(append([]byte{}, a...), b...), ErrMalformedChunk},
		{"final chunk repeated", 1500, append(signChunks(exampleResult(0), a, b, nil), signChunks(exampleResult(0), nil)...), append(append([]byte{}, a...), b...), ErrMalformedChunk},
		{"chunk over the limit", 1 << 30, []byte(strconv.FormatInt(MaxChunkSize+1, 16) + ";chunk-signature=" + strings.Repeat("0", 64) + "\r\nabc"), nil, ErrMalformedChunk},
		{"size not hex", 10, []byte("1g;chunk-signature=" + strings.Repeat("0", 64) + "\r\n"), nil, ErrMalformedChunk},
		{"size too long", 10, []byte("000000001;chunk-signature=" + strings.Repeat("0", 64) + "\r\n"), nil, ErrMalformedChunk},
		{"no signature", 10, []byte("a\r\n0123456789\r\n"), nil, ErrMalformedChunk},
		{"short signature", 10, []byte("a;chunk-signature=abc\r\n0123456789\r\n"), nil, ErrMalformedChunk},
		{"header line too long", 10, []byte("a;chunk-signature=" + strings.Repeat("0", 5000) + "\r\n"), nil, ErrMalformedChunk},
		{"data not followed by CRLF", 1000, bytes.Replace(signChunks(exampleResult(0), a, nil), []byte("a\r\n0;"), []byte("aXX0;"), 1), nil, ErrMalformedChunk},
		{"empty body", 0, nil, nil, ErrIncompleteBody},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := decode(exampleResult(c.declared), c.body)
			if c.err == nil && err != nil || c.err != nil && !errors.Is(err, c.err) {
				t.Fatalf("error %v, want %v", err, c.err)
			}
			if !bytes.Equal(got, c.want) {
				t.Fatalf("handed out %d bytes, want %d", len(got), len(c.want))
			}
		})
	}
}

// The decoder does not allocate the declared chunk size up front: a header
// claiming 16 MiB followed by a few bytes costs a few bytes.
func TestChunkedDecoderGrowsWithData(t *testing.T) {
	body := []byte(strconv.FormatInt(MaxChunkSize, 16) + ";chunk-signature=" + strings.Repeat("0", 64) + "\r\nabc")
	c := newChunkedReader(io.NopCloser(bytes.NewReader(body)), exampleResult(MaxChunkSize))
	if _, err := io.ReadAll(c); !errors.Is(err, ErrIncompleteBody) {
		t.Fatalf("error %v", err)
	}
	c2 := newChunkedReader(io.NopCloser(bytes.NewReader(body)), exampleResult(MaxChunkSize))
	c2.next(nil)
	if cap(c2.buf) > 64<<10 {
		t.Fatalf("decoder allocated %d bytes for 3 bytes of data", cap(c2.buf))
	}
}

func TestChunkedDecoderClose(t *testing.T) {
	a := bytes.Repeat([]byte("a"), 100)
	c := newChunkedReader(io.NopCloser(bytes.NewReader(signChunks(exampleResult(0), a, a, nil))), exampleResult(200))
	p := make([]byte, 10)
	if n, err := c.Read(p); n != 10 || err != nil {
		t.Fatal(n, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(p); !errors.Is(err, ErrIncompleteBody) {
		t.Fatalf("read after close: %v", err)
	}
}

// FuzzChunkedDecoder: whatever the body, the decoder does not panic, never
// hands out more than x-amz-decoded-content-length, hands out exactly that
// much when it reports success, and in signed mode hands out nothing it
// could not verify.
func FuzzChunkedDecoder(f *testing.F) {
	a := bytes.Repeat([]byte("a"), 300)
	f.Add(signChunks(exampleResult(0), a, a[:20], nil), int64(320), uint8(0))
	f.Add(signChunks(exampleResult(0), nil), int64(0), uint8(0))
	f.Add([]byte("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n"), int64(5), uint8(1))
	f.Add([]byte("5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n"), int64(8), uint8(1))
	f.Add([]byte("5;chunk-signature=00\r\nhello\r\n0\r\n\r\n"), int64(5), uint8(2))
	f.Add([]byte("ffffff\r\n"), int64(1<<24), uint8(1))
	f.Fuzz(func(t *testing.T, body []byte, declared int64, mode uint8) {
		if declared < 0 {
			declared = -declared
			if declared < 0 {
				declared = 0
			}
		}
		res := exampleResult(declared)
		switch mode % 3 {
		case 1:
			res.PayloadHash = StreamingUnsignedTrailer
			if mode&4 != 0 {
				res.trailer = "x-amz-checksum-crc32"
			}
		case 2:
			res.PayloadHash = StreamingPayloadTrailer
		}
		c := newChunkedReader(io.NopCloser(bytes.NewReader(body)), res)
		var total int64
		var out []byte
		p := make([]byte, 1+int(mode)*37)
		var err error
		for {
			var n int
			n, err = c.Read(p)
			total += int64(n)
			out = append(out, p[:n]...)
			if total > declared {
				t.Fatalf("handed out %d bytes, more than the declared %d", total, declared)
			}
			if err != nil {
				break
			}
		}
		if err == io.EOF && total != declared {
			t.Fatalf("success after %d bytes of the declared %d", total, declared)
		}
		if res.PayloadHash != StreamingUnsignedTrailer {
			// Every byte handed out was under a verified signature; the
			// only chunks the example key signed in the corpus are runs
			// of 'a', so anything else escaped verification.
			if i := bytes.IndexFunc(out, func(r rune) bool { return r != 'a' }); i >= 0 {
				t.Fatalf("unverified byte %q handed out at %d", out[i], i)
			}
		}
		var e *Error
		if err != io.EOF && !errors.As(err, &e) {
			t.Fatalf("error %v is not an *Error", err)
		}
	})
}

// A chunk whose signature does not match hands out none of its bytes,
// whether it is read straight into the caller's buffer (big reads) or
// through the decoder's (small reads).
func TestChunkedDecoderHandsOutOnlySigned(t *testing.T) {
	a := bytes.Repeat([]byte("a"), 1000)
	b := bytes.Repeat([]byte("b"), 500)
	body := signChunks(exampleResult(0), a, b, nil)
	body = bytes.Replace(body, b[:10], []byte("cccccccccc"), 1) // tamper with the second chunk
	for _, size := range []int{64, 1 << 20} {
		c := newChunkedReader(io.NopCloser(bytes.NewReader(body)), exampleResult(1500))
		var got []byte
		buf := make([]byte, size)
		var err error
		for err == nil {
			var n int
			n, err = c.Read(buf)
			got = append(got, buf[:n]...)
		}
		if !errors.Is(err, ErrSignatureDoesNotMatch) || !bytes.Equal(got, a) {
			t.Errorf("reads of %d bytes: %v, handed out %d bytes, want the first chunk's %d", size, err, len(got), len(a))
		}
	}
}

// Chunks already received behind the first go into the same read, up to
// the caller's buffer; one that does not fit waits for the next read.
func TestChunkedDecoderFillsBuffer(t *testing.T) {
	a, b, c := bytes.Repeat([]byte("a"), 1000), bytes.Repeat([]byte("b"), 1000), bytes.Repeat([]byte("c"), 3000)
	body := signChunks(exampleResult(0), a, b, c, nil)
	r := newChunkedReader(io.NopCloser(bytes.NewReader(body)), exampleResult(5000))
	buf := make([]byte, 4000)
	var sizes []int
	var got []byte
	for {
		n, err := r.Read(buf)
		if n > 0 {
			sizes = append(sizes, n)
			got = append(got, buf[:n]...)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if want := append(append(append([]byte{}, a...), b...), c...); !bytes.Equal(got, want) {
		t.Fatalf("decoded %d bytes, not the %d sent", len(got), len(want))
	}
	if len(sizes) != 2 || sizes[0] != 2000 || sizes[1] != 3000 {
		t.Errorf("reads of %v bytes, want [2000 3000]", sizes)
	}
}
