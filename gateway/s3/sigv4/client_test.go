package sigv4

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

// Real client signing: requests signed by minio-go's signer, sent over
// HTTP to a server on 127.0.0.1 whose handler runs the Verifier and reads
// the body through Body.

const (
	cliAK     = "AKIADATAGATE0TEST"
	cliSecret = "s3cr3t/Key+with=odd/characters"
	cliRegion = "us-east-1"
)

type harness struct {
	t      *testing.T
	v      *Verifier
	srv    *httptest.Server
	client *http.Client
	skew   atomic.Int64 // added to the server clock
}

// The handler answers 200 with the body it read, or the S3 status with the
// code in X-Error-Code and, as the body, every byte Body handed out before
// failing.
func newHarness(t *testing.T) *harness {
	h := &harness{t: t}
	h.v = &Verifier{
		Region: cliRegion,
		Now:    func() time.Time { return time.Now().Add(time.Duration(h.skew.Load())) },
		Creds:  CredentialsFunc(func(ak string) (string, string, bool) { return cliSecret, "alice", ak == cliAK }),
	}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := h.v.Verify(r)
		if err != nil {
			writeErr(w, err, nil)
			return
		}
		body := h.v.Body(r, res)
		defer body.Close()
		var got []byte
		buf := make([]byte, 3000) // not a divisor of the chunk size
		for {
			n, err := body.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				writeErr(w, err, got)
				return
			}
		}
		w.Header().Set("X-User", res.User)
		w.Header().Set("X-Payload", res.PayloadHash)
		w.Write(got)
	}))
	t.Cleanup(h.srv.Close)
	h.client = h.srv.Client()
	h.client.Timeout = 30 * time.Second
	return h
}

func writeErr(w http.ResponseWriter, err error, handedOut []byte) {
	var e *Error
	if !errors.As(err, &e) {
		w.Header().Set("X-Error-Code", "InternalError")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, err.Error())
		return
	}
	w.Header().Set("X-Error-Code", e.Code)
	w.WriteHeader(e.Status)
	w.Write(handedOut)
}

type reply struct {
	status int
	code   string
	body   []byte
	user   string
}

func (h *harness) do(req *http.Request) reply {
	h.t.Helper()
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header.Get("X-Error-Code"), b, resp.Header.Get("X-User")}
}

func (h *harness) newRequest(method, path string, body []byte) *http.Request {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	return req
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// signed signs a header-auth request with a real hashed payload.
func (h *harness) signed(method, path string, body []byte, ak, secret string) *http.Request {
	req := h.newRequest(method, path, body)
	req.Header.Set("X-Amz-Content-Sha256", sha256Hex(body))
	return signer.SignV4(*req, ak, secret, "", cliRegion)
}

func expect(t *testing.T, r reply, status int, code string) {
	t.Helper()
	if r.status != status || r.code != code {
		t.Fatalf("got %d %q (%q), want %d %q", r.status, r.code, r.body, status, code)
	}
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestClientHeaderAuth(t *testing.T) {
	h := newHarness(t)
	data := []byte("hello, datagate")

	t.Run("GET", func(t *testing.T) {
		r := h.do(h.signed("GET", "/bucket/some%20key/with+plus?list-type=2&prefix=a%2Fb&delimiter=%2F", nil, cliAK, cliSecret))
		expect(t, r, 200, "")
		if r.user != "alice" {
			t.Fatalf("user %q", r.user)
		}
	})
	t.Run("PUT hashed payload", func(t *testing.T) {
		r := h.do(h.signed("PUT", "/bucket/dir/ключ ~!$&'()*+,;=@.txt", data, cliAK, cliSecret))
		expect(t, r, 200, "")
		if !bytes.Equal(r.body, data) {
			t.Fatalf("server read %q", r.body)
		}
	})
	t.Run("PUT unsigned payload", func(t *testing.T) {
		req := h.newRequest("PUT", "/bucket/k", data)
		req.Header.Set("X-Amz-Content-Sha256", UnsignedPayload)
		r := h.do(signer.SignV4(*req, cliAK, cliSecret, "", cliRegion))
		expect(t, r, 200, "")
		if !bytes.Equal(r.body, data) {
			t.Fatalf("server read %q", r.body)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		expect(t, h.do(h.signed("GET", "/bucket/k", nil, cliAK, cliSecret+"x")), 403, "SignatureDoesNotMatch")
	})
	t.Run("unknown key", func(t *testing.T) {
		expect(t, h.do(h.signed("GET", "/bucket/k", nil, "AKIAUNKNOWN", cliSecret)), 403, "InvalidAccessKeyId")
	})
	t.Run("body does not match x-amz-content-sha256", func(t *testing.T) {
		req := h.newRequest("PUT", "/bucket/k", []byte("hello, datagatE"))
		req.Header.Set("X-Amz-Content-Sha256", sha256Hex(data))
		r := h.do(signer.SignV4(*req, cliAK, cliSecret, "", cliRegion))
		expect(t, r, 400, "XAmzContentSHA256Mismatch")
	})
	t.Run("missing authentication", func(t *testing.T) {
		expect(t, h.do(h.newRequest("GET", "/bucket/k", nil)), 403, "AccessDenied")
	})
	t.Run("unsigned x-amz header added", func(t *testing.T) {
		req := h.signed("PUT", "/bucket/k", data, cliAK, cliSecret)
		req.Header.Set("X-Amz-Copy-Source", "/other/secret")
		expect(t, h.do(req), 403, "AccessDenied")
	})
	t.Run("signed header changed", func(t *testing.T) {
		req := h.newRequest("PUT", "/bucket/k", data)
		req.Header.Set("X-Amz-Content-Sha256", sha256Hex(data))
		req.Header.Set("X-Amz-Meta-Color", "blue")
		req = signer.SignV4(*req, cliAK, cliSecret, "", cliRegion)
		req.Header.Set("X-Amz-Meta-Color", "red")
		expect(t, h.do(req), 403, "SignatureDoesNotMatch")
	})
	t.Run("query changed", func(t *testing.T) {
		req := h.signed("GET", "/bucket?prefix=a", nil, cliAK, cliSecret)
		req.URL.RawQuery = "prefix=b"
		expect(t, h.do(req), 403, "SignatureDoesNotMatch")
	})
	t.Run("SigV2", func(t *testing.T) {
		req := h.newRequest("GET", "/bucket/k", nil)
		req = signer.SignV2(*req, cliAK, cliSecret, false)
		expect(t, h.do(req), 400, "InvalidRequest")
	})

	malformed := map[string]func(string) string{
		"no signature":         func(a string) string { return a[:strings.Index(a, ", Signature=")] },
		"misspelt parameter":   func(a string) string { return strings.Replace(a, "Signature=", "Signatur=", 1) },
		"short signature":      func(a string) string { return a[:len(a)-2] },
		"no host signed":       func(a string) string { return strings.Replace(a, "host;", "", 1) },
		"credential too short": func(a string) string { return strings.Replace(a, "/"+cliRegion, "", 1) },
		"wrong terminator":     func(a string) string { return strings.Replace(a, "aws4_request", "aws4_reqest", 1) },
		"wrong region":         func(a string) string { return strings.Replace(a, cliRegion, "eu-west-1", 1) },
		"wrong service":        func(a string) string { return strings.Replace(a, "/s3/", "/ec2/", 1) },
		"credential date": func(a string) string {
			return strings.Replace(a, time.Now().UTC().Format("/20060102/"), "/20000101/", 1)
		},
		"no parameters": func(a string) string { return "AWS4-HMAC-SHA256" },
	}
	for name, f := range malformed {
		t.Run("malformed Authorization: "+name, func(t *testing.T) {
			req := h.signed("GET", "/bucket/k", nil, cliAK, cliSecret)
			req.Header.Set("Authorization", f(req.Header.Get("Authorization")))
			expect(t, h.do(req), 400, "AuthorizationHeaderMalformed")
		})
	}
}

func TestClientClockSkew(t *testing.T) {
	h := newHarness(t)
	for _, c := range []struct {
		skew time.Duration
		code string
	}{
		{14 * time.Minute, ""},
		{-14 * time.Minute, ""},
		{16 * time.Minute, "RequestTimeTooSkewed"},
		{-16 * time.Minute, "RequestTimeTooSkewed"},
	} {
		t.Run(c.skew.String(), func(t *testing.T) {
			h.skew.Store(int64(c.skew))
			defer h.skew.Store(0)
			r := h.do(h.signed("GET", "/bucket/k", nil, cliAK, cliSecret))
			if c.code == "" {
				expect(t, r, 200, "")
			} else {
				expect(t, r, 403, c.code)
			}
		})
	}
}

func TestClientPresigned(t *testing.T) {
	h := newHarness(t)
	presign := func(method, path string, expires int64) *http.Request {
		req := h.newRequest(method, path, nil)
		return signer.PreSignV4(*req, cliAK, cliSecret, "", cliRegion, expires)
	}
	// A presigned URL is used as a plain URL, as a browser or curl would.
	get := func(u *url.URL) reply {
		req, err := http.NewRequest("GET", u.String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return h.do(req)
	}

	t.Run("valid", func(t *testing.T) {
		r := get(presign("GET", "/bucket/a%20key?response-content-type=text%2Fplain", 3600).URL)
		expect(t, r, 200, "")
		if r.user != "alice" {
			t.Fatalf("user %q", r.user)
		}
	})
	t.Run("valid PUT", func(t *testing.T) {
		u := presign("PUT", "/bucket/up", 3600).URL
		req, _ := http.NewRequest("PUT", u.String(), strings.NewReader("uploaded"))
		r := h.do(req)
		expect(t, r, 200, "")
		if string(r.body) != "uploaded" {
			t.Fatalf("server read %q", r.body)
		}
	})
	t.Run("tampered query parameter", func(t *testing.T) {
		u := presign("GET", "/bucket/k?response-content-type=text%2Fplain", 3600).URL
		q := u.Query()
		q.Set("response-content-type", "text/html")
		u.RawQuery = q.Encode()
		expect(t, get(u), 403, "SignatureDoesNotMatch")
	})
	t.Run("tampered expiry", func(t *testing.T) {
		u := presign("GET", "/bucket/k", 3600).URL
		u.RawQuery = strings.Replace(u.RawQuery, "X-Amz-Expires=3600", "X-Amz-Expires=7200", 1)
		expect(t, get(u), 403, "SignatureDoesNotMatch")
	})
	t.Run("added parameter", func(t *testing.T) {
		u := presign("GET", "/bucket/k", 3600).URL
		u.RawQuery += "&versionId=7"
		expect(t, get(u), 403, "SignatureDoesNotMatch")
	})
	t.Run("tampered path", func(t *testing.T) {
		u := presign("GET", "/bucket/k", 3600).URL
		u.Path = "/bucket/other"
		expect(t, get(u), 403, "SignatureDoesNotMatch")
	})
	t.Run("expired", func(t *testing.T) {
		u := presign("GET", "/bucket/k", 60).URL
		h.skew.Store(int64(2 * time.Minute))
		defer h.skew.Store(0)
		expect(t, get(u), 403, "AccessDenied")
	})
	t.Run("dated in the future", func(t *testing.T) {
		u := presign("GET", "/bucket/k", 3600).URL
		h.skew.Store(int64(-16 * time.Minute))
		defer h.skew.Store(0)
		expect(t, get(u), 403, "AccessDenied")
	})
	t.Run("expires over a week", func(t *testing.T) {
		expect(t, get(presign("GET", "/bucket/k", 604801).URL), 400, "AuthorizationQueryParametersError")
	})
	t.Run("expires exactly a week", func(t *testing.T) {
		expect(t, get(presign("GET", "/bucket/k", 604800).URL), 200, "")
	})
	t.Run("wrong secret", func(t *testing.T) {
		req := h.newRequest("GET", "/bucket/k", nil)
		u := signer.PreSignV4(*req, cliAK, "not-the-secret", "", cliRegion, 3600).URL
		expect(t, get(u), 403, "SignatureDoesNotMatch")
	})
	t.Run("unknown key", func(t *testing.T) {
		req := h.newRequest("GET", "/bucket/k", nil)
		u := signer.PreSignV4(*req, "AKIAUNKNOWN", cliSecret, "", cliRegion, 3600).URL
		expect(t, get(u), 403, "InvalidAccessKeyId")
	})
	t.Run("both mechanisms", func(t *testing.T) {
		u := presign("GET", "/bucket/k", 3600).URL
		req := h.signed("GET", "/bucket/k", nil, cliAK, cliSecret)
		req.URL.RawQuery = u.RawQuery
		expect(t, h.do(req), 400, "InvalidArgument")
	})
}

// sha256Hasher is the md5simd.Hasher minio-go's streaming signer wants.
type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}

// streamingRequest signs data as an aws-chunked upload (64 KiB chunks) and
// returns the request and its encoded body.
func (h *harness) streamingRequest(data []byte, trailer http.Header) (*http.Request, []byte) {
	h.t.Helper()
	req := h.newRequest("PUT", "/bucket/big", data)
	req.Trailer = trailer
	req = signer.StreamingSignV4(req, cliAK, cliSecret, "", cliRegion, int64(len(data)), time.Now().UTC(), sha256Hasher{sha256.New()})
	enc, err := io.ReadAll(req.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	// (minio-go declares 0 for an empty body; withBody sets the real length.)
	if int64(len(enc)) != req.ContentLength && len(data) > 0 {
		h.t.Fatalf("encoded %d bytes, Content-Length %d", len(enc), req.ContentLength)
	}
	return req, enc
}

func withBody(req *http.Request, body []byte) *http.Request {
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	return req
}

func TestClientStreaming(t *testing.T) {
	h := newHarness(t)
	data := randomBytes(t, 200_000) // chunks of 65536, 65536, 65536, 3392, 0
	const chunk1 = 88 + 65536 + 2   // "10000;chunk-signature=<64>\r\n" + data + "\r\n"

	t.Run("valid", func(t *testing.T) {
		req, enc := h.streamingRequest(data, nil)
		r := h.do(withBody(req, enc))
		expect(t, r, 200, "")
		if !bytes.Equal(r.body, data) {
			t.Fatalf("server read %d bytes, not the data", len(r.body))
		}
	})
	t.Run("empty", func(t *testing.T) {
		req, enc := h.streamingRequest([]byte{}, nil)
		r := h.do(withBody(req, enc))
		expect(t, r, 200, "")
		if len(r.body) != 0 {
			t.Fatalf("server read %d bytes", len(r.body))
		}
	})
	t.Run("one chunk altered", func(t *testing.T) {
		req, enc := h.streamingRequest(data, nil)
		enc[chunk1+88+1000] ^= 0xff // inside the second chunk's data
		r := h.do(withBody(req, enc))
		expect(t, r, 403, "SignatureDoesNotMatch")
		// Only the first chunk was handed out: not one byte of the second.
		if !bytes.Equal(r.body, data[:65536]) {
			t.Fatalf("handed out %d bytes before failing, want the 65536 of the first chunk", len(r.body))
		}
	})
	t.Run("chunk signature altered", func(t *testing.T) {
		req, enc := h.streamingRequest(data, nil)
		i := bytes.Index(enc, []byte(";chunk-signature=")) + 17
		if enc[i] == '0' {
			enc[i] = '1'
		} else {
			enc[i] = '0'
		}
		r := h.do(withBody(req, enc))
		expect(t, r, 403, "SignatureDoesNotMatch")
		if len(r.body) != 0 {
			t.Fatalf("handed out %d bytes of a chunk with a bad signature", len(r.body))
		}
	})
	t.Run("chunks reordered", func(t *testing.T) {
		req, enc := h.streamingRequest(data, nil)
		swapped := append(append(append([]byte{}, enc[chunk1:2*chunk1]...), enc[:chunk1]...), enc[2*chunk1:]...)
		r := h.do(withBody(req, swapped))
		expect(t, r, 403, "SignatureDoesNotMatch")
		if len(r.body) != 0 {
			t.Fatalf("handed out %d bytes", len(r.body))
		}
	})
	t.Run("truncated", func(t *testing.T) {
		// Content-Length is not signed by minio-go, so a short body with a
		// matching Content-Length reaches the decoder.
		for _, cut := range []int{chunk1 - 1, chunk1, chunk1 + 40, len(enc0(h, data)) - 3} {
			req, enc := h.streamingRequest(data, nil)
			r := h.do(withBody(req, enc[:cut]))
			expect(t, r, 400, "IncompleteBody")
		}
	})
	t.Run("decoded length larger than sent", func(t *testing.T) {
		req, enc := h.streamingRequest(data, nil)
		req.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(data)+1))
		// The header is signed: this fails as a signature mismatch.
		expect(t, h.do(withBody(req, enc)), 403, "SignatureDoesNotMatch")
	})
	t.Run("signed trailer", func(t *testing.T) {
		sum := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], sum)
		req, enc := h.streamingRequest(data, http.Header{"x-amz-checksum-crc32c": {base64.StdEncoding.EncodeToString(b[:])}})
		r := h.do(withBody(req, enc))
		expect(t, r, 200, "")
		if !bytes.Equal(r.body, data) {
			t.Fatalf("server read %d bytes, not the data", len(r.body))
		}
	})
	t.Run("signed trailer with a wrong checksum", func(t *testing.T) {
		req, enc := h.streamingRequest(data, http.Header{"x-amz-checksum-crc32c": {"AAAAAA=="}})
		expect(t, h.do(withBody(req, enc)), 400, "BadDigest")
	})
	t.Run("signed trailer altered", func(t *testing.T) {
		sum := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], sum)
		req, enc := h.streamingRequest(data, http.Header{"x-amz-checksum-crc32c": {base64.StdEncoding.EncodeToString(b[:])}})
		i := bytes.Index(enc, []byte("x-amz-checksum-crc32c:")) + 22
		binary.BigEndian.PutUint32(b[:], sum+1)
		copy(enc[i:], base64.StdEncoding.EncodeToString(b[:]))
		expect(t, h.do(withBody(req, enc)), 403, "SignatureDoesNotMatch")
	})
}

func enc0(h *harness, data []byte) []byte {
	_, enc := h.streamingRequest(data, nil)
	return enc
}

func TestClientUnsignedTrailer(t *testing.T) {
	h := newHarness(t)
	data := randomBytes(t, 150_000)
	sign := func(checksum string) (*http.Request, []byte) {
		req := h.newRequest("PUT", "/bucket/u", data)
		req.Header.Set("X-Amz-Content-Sha256", StreamingUnsignedTrailer)
		req = signer.SignV4Trailer(*req, cliAK, cliSecret, "", cliRegion, http.Header{"x-amz-checksum-crc32": {checksum}})
		enc, err := io.ReadAll(req.Body)
		if err != nil {
			t.Fatal(err)
		}
		return req, enc
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], crc32.ChecksumIEEE(data))
	good := base64.StdEncoding.EncodeToString(b[:])

	req, enc := sign(good)
	r := h.do(withBody(req, enc))
	expect(t, r, 200, "")
	if !bytes.Equal(r.body, data) {
		t.Fatalf("server read %d bytes, not the data", len(r.body))
	}

	req, enc = sign("AAAAAA==")
	expect(t, h.do(withBody(req, enc)), 400, "BadDigest")

	// Data altered in transit: the checksum catches it.
	req, enc = sign(good)
	enc[100] ^= 1
	expect(t, h.do(withBody(req, enc)), 400, "BadDigest")
}
