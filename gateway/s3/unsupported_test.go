package s3

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// Object Lock retention and legal hold on a PUT were ignored: the object
// was stored deletable while the client believed it locked. They are
// InvalidRequest, as S3 answers for a bucket without Object Lock; SSE-C
// (stored in clear, readable without the key) is NotImplemented. Nothing
// is stored. SSE-S3 is accepted (the answer names no encryption).
func TestUnsupportedWriteOptions(t *testing.T) {
	e := newTestEnv(t)
	ctx := ctxT(t)
	body := []byte("x")
	for name, o := range map[string]minio.PutObjectOptions{
		"retention":  {Mode: minio.Governance, RetainUntilDate: time.Now().Add(time.Hour)},
		"legal hold": {LegalHold: minio.LegalHoldEnabled},
	} {
		if _, err := e.alice.PutObject(ctx, "data", "locked", bytes.NewReader(body), 1, o); s3Code(err) != "InvalidRequest" {
			t.Errorf("%s: %v", name, err)
		}
		big := make([]byte, 6<<20)
		o.PartSize = 5 << 20
		if _, err := e.alice.PutObject(ctx, "data", "locked", bytes.NewReader(big), int64(len(big)), o); s3Code(err) != "InvalidRequest" {
			t.Errorf("%s, multipart: %v", name, err)
		}
	}
	st, code, b := e.do(t, http.MethodPut, "/data/ssec", body, map[string]string{
		"X-Amz-Server-Side-Encryption-Customer-Algorithm": "AES256",
		"X-Amz-Server-Side-Encryption-Customer-Key":       "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=",
	})
	if st != http.StatusNotImplemented || code != "NotImplemented" {
		t.Errorf("SSE-C: %d %s", st, b)
	}
	e.mustNotExist(t, "data", "locked")
	e.mustNotExist(t, "data", "ssec")
	if st, _, b := e.do(t, http.MethodPut, "/data/sse-s3", body, map[string]string{"X-Amz-Server-Side-Encryption": "AES256"}); st != http.StatusOK {
		t.Errorf("SSE-S3: %d %s", st, b)
	}
}
