package sigv4

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

// BenchmarkVerifyGET: a typical GetObject with header auth, as minio-go
// signs it, on a server-side request.
func BenchmarkVerifyGET(b *testing.B) {
	req := httptest.NewRequest("GET", "http://127.0.0.1:9000/photos/2026/11/22/IMG_0042.jpg", nil)
	req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	req.Header.Set("Range", "bytes=0-4095")
	signedReq := signer.SignV4(*req, cliAK, cliSecret, "", cliRegion)
	// As the server sees it: Host out of the header map, a User-Agent and
	// Accept-Encoding added by the transport.
	r := httptest.NewRequest("GET", "/photos/2026/11/22/IMG_0042.jpg", nil)
	r.Host = "127.0.0.1:9000"
	r.Header = signedReq.Header.Clone()
	r.Header.Set("User-Agent", "MinIO (linux; amd64) minio-go/v7.4.1")
	r.Header.Set("Accept-Encoding", "gzip")
	t, _ := time.Parse(amzDateFmt, r.Header.Get("X-Amz-Date"))
	v := &Verifier{
		Region: cliRegion,
		Now:    func() time.Time { return t },
		Creds:  CredentialsFunc(func(ak string) (string, string, bool) { return cliSecret, "alice", ak == cliAK }),
	}
	if _, err := v.Verify(r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyPresigned: a presigned GET with a response override.
func BenchmarkVerifyPresigned(b *testing.B) {
	req := httptest.NewRequest("GET", "http://127.0.0.1:9000/photos/IMG_0042.jpg?response-content-disposition=attachment", nil)
	u := signer.PreSignV4(*req, cliAK, cliSecret, "", cliRegion, 3600).URL
	r := httptest.NewRequest("GET", u.RequestURI(), nil)
	r.Host = "127.0.0.1:9000"
	r.Header = http.Header{"User-Agent": {"curl/8.5.0"}, "Accept": {"*/*"}}
	v := &Verifier{
		Region: cliRegion,
		Creds:  CredentialsFunc(func(ak string) (string, string, bool) { return cliSecret, "alice", ak == cliAK }),
	}
	if _, err := v.Verify(r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChunkedDecode: decoding and verifying a signed aws-chunked body
// of 64 KiB chunks, as minio-go and the AWS SDKs send.
func BenchmarkChunkedDecode(b *testing.B) {
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	const n = 64 // 4 MiB
	chunks := make([][]byte, 0, n+1)
	for range n {
		chunks = append(chunks, chunk)
	}
	body := signChunks(exampleResult(0), append(chunks, nil)...)
	buf := make([]byte, 32<<10)
	b.SetBytes(n * 64 << 10)
	b.ReportAllocs()
	for b.Loop() {
		c := newChunkedReader(io.NopCloser(bytes.NewReader(body)), exampleResult(n*64<<10))
		if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{c}, buf); err != nil {
			b.Fatal(err)
		}
	}
}
