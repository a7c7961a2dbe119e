package s3

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/datagate/datagate/views/audittest"
)

// A client that goes away in the middle of a part (s3cmd interrupted,
// a dropped connection) is its own failure: the part is refused as
// IncompleteBody, logged at debug level; it was an InternalError with an
// ERROR line ("s3 request failed ... unexpected EOF") and a 5xx in the
// metrics. The upload goes on: the part can be sent again.
func TestPartCutByClient(t *testing.T) {
	var log audittest.Log
	e := newTestEnv(t, func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ctx := ctxT(t)
	core := minio.Core{Client: e.alice}
	id, err := core.NewMultipartUpload(ctx, "data", "cut", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const size = 1 << 20
	body := io.MultiReader(bytes.NewReader(make([]byte, size/4)), errReader{})
	req, err := http.NewRequest(http.MethodPut, e.url+"/data/cut?partNumber=1&uploadId="+id, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	req = signer.SignV4(*req, aliceKey, aliceSecret, "", DefaultRegion)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the cut request got an answer: %s", resp.Status)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(log.String(), `"key":"cut"`) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if l := log.String(); !strings.Contains(l, "IncompleteBody") || strings.Contains(l, `"level":"ERROR"`) {
		t.Errorf("log of the cut part:\n%s", l)
	}
	part, err := core.PutObjectPart(ctx, "data", "cut", id, 1, bytes.NewReader([]byte("whole")), 5, minio.PutObjectPartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := core.CompleteMultipartUpload(ctx, "data", "cut", id, []minio.CompletePart{{PartNumber: 1, ETag: part.ETag}}, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := get(t, e.alice, "data", "cut", minio.GetObjectOptions{}); string(got) != "whole" {
		t.Errorf("after the part was sent again: %q", got)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("client gone") }

// A client that stops reading a GET (a player seeking, "curl | head") is
// logged at debug level; it was a WARN line per cut download.
func TestGetCutByClient(t *testing.T) {
	var log audittest.Log
	e := newTestEnv(t, func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	put(t, e.alice, "data", "long", make([]byte, 64<<20), minio.PutObjectOptions{})
	u, err := e.alice.PresignedGetObject(ctxT(t), "data", "long", time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(resp.Body, make([]byte, 100))
	resp.Body.Close() // closes the connection: the body was not read to its end
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(log.String(), "sending content") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if l := log.String(); !strings.Contains(l, `"level":"DEBUG","msg":"s3 get: sending content"`) {
		t.Errorf("log of the cut GET:\n%s", l)
	}
}
