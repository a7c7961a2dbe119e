package sigv4_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/datagate/datagate/gateway/s3/sigv4"
	"github.com/minio/minio-go/v7/pkg/signer"
)

// A handler authenticates with Verify, then reads the body only through
// Body and commits only after io.EOF.
func ExampleVerifier() {
	v := &sigv4.Verifier{
		Region: "us-east-1",
		Creds: sigv4.CredentialsFunc(func(ak string) (string, string, bool) {
			return "secret-of-alice", "alice", ak == "AKIAALICE"
		}),
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := v.Verify(r)
		if err == nil {
			body := v.Body(r, res)
			defer body.Close()
			var n int64
			if n, err = io.Copy(io.Discard, body); err == nil { // a real handler spools, then commits
				fmt.Printf("%s stored %d bytes\n", res.User, n)
				return
			}
		}
		var e *sigv4.Error
		if errors.As(err, &e) {
			fmt.Println("refused:", e.Code)
			http.Error(w, e.Message, e.Status) // the S3 front-end writes the XML error
		}
	})

	put := func(body []byte, declared []byte) {
		req := httptest.NewRequest("PUT", "http://127.0.0.1:9000/bucket/key", bytes.NewReader(body))
		sum := sha256.Sum256(declared)
		req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
		req = signer.SignV4(*req, "AKIAALICE", "secret-of-alice", "", "us-east-1")
		handler.ServeHTTP(httptest.NewRecorder(), req)
	}
	put([]byte("hello"), []byte("hello"))
	put([]byte("hellO"), []byte("hello"))
	// Output:
	// alice stored 5 bytes
	// refused: XAmzContentSHA256Mismatch
}
