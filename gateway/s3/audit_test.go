package s3

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/datagate/datagate/views"
	"github.com/datagate/datagate/views/audittest"
)

// TestAuditAndRequestIDs: minio-go's PUT and DELETE are recorded with the
// user, the address and the request id; a wrong secret and a tampered
// presigned URL are recorded as failed authentications naming the key,
// and no secret or signature reaches the audit or the log.
func TestAuditAndRequestIDs(t *testing.T) {
	audit, logs := &audittest.Log{}, &audittest.Log{}
	e := newTestEnv(t, func(o *Options) {
		o.Views.SetAudit(audit.JSON())
		o.Logger = slog.New(views.LogHandler(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	})
	ctx := ctxT(t)
	if _, err := e.alice.PutObject(ctx, "data", "a/b.txt", strings.NewReader("hello"), 5, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.alice.RemoveObject(ctx, "data", "a/b.txt", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.alice.MakeBucket(ctx, "newbucket", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.alice.RemoveBucket(ctx, "newbucket"); err != nil {
		t.Fatal(err)
	}
	wrong := e.client(t, aliceKey, "not-alices-secret-9")
	if _, err := wrong.PutObject(ctx, "data", "c.txt", strings.NewReader("x"), 1, minio.PutObjectOptions{}); err == nil {
		t.Fatal("PUT with a wrong secret succeeded")
	}
	// A presigned URL whose signature was altered; the client's request id
	// comes back as the x-amz-request-id too.
	u, err := e.alice.PresignedGetObject(ctx, "data", "a/b.txt", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	sig := u.Query().Get("X-Amz-Signature")
	q := u.Query()
	q.Set("X-Amz-Signature", strings.Repeat("0", len(sig)))
	u.RawQuery = q.Encode()
	req, _ := http.NewRequestWithContext(ctx, "GET", u.String(), nil)
	req.Header.Set("X-Request-Id", "presigned-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Request-Id") != "presigned-1" || resp.Header.Get("X-Amz-Request-Id") != "presigned-1" {
		t.Fatalf("tampered URL: %d, ids %q %q", resp.StatusCode, resp.Header.Get("X-Request-Id"), resp.Header.Get("X-Amz-Request-Id"))
	}

	a := audit.String()
	for _, want := range []string{
		`"op":"create","user":"alice","view":"data","path":"/data/a/b.txt"`,
		`"op":"remove","user":"alice","view":"data","path":"/data/a/b.txt"`,
		`"frontend":"s3"`,
		`"op":"create view","user":"alice","view":"newbucket","path":"newbucket","result":"ok"`,
		`"op":"delete view","user":"alice","view":"newbucket","path":"newbucket","result":"ok"`,
		`"op":"login","result":"denied","user":"alice","method":"sigv4","reason":"SignatureDoesNotMatch (access key AKIAALICE)"`,
		`"request_id":"presigned-1"`,
	} {
		if !strings.Contains(a, want) {
			t.Errorf("audit lacks %s:\n%s", want, a)
		}
	}
	if strings.Count(a, `"op":"login"`) != 2 {
		t.Errorf("want 2 failed logins:\n%s", a)
	}
	l := logs.String()
	if !strings.Contains(l, "request_id=presigned-1") {
		t.Errorf("the refused request's log line lacks its id:\n%s", l)
	}
	for _, secret := range []string{aliceSecret, "not-alices-secret-9", sig} {
		if strings.Contains(a, secret) || strings.Contains(l, secret) {
			t.Errorf("secret %q logged:\n%s\n%s", secret, a, l)
		}
	}
}
