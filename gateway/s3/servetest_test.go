package s3

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/backendtest"
	s3backend "github.com/datagate/datagate/backends/s3"
)

// Our own S3 provider driver, pointed at this server (rooted under a
// prefix), passes the backend conformance suite.
func TestBackendSuiteThroughGateway(t *testing.T) {
	e := newTestEnv(t)
	backendtest.Run(t, func(t *testing.T, files map[string][]byte) backends.Provider {
		// Files sit under a prefix, beside a decoy the provider must not see.
		put(t, e.alice, "data", "decoy.txt", []byte("outside the prefix"), minio.PutObjectOptions{})
		for p, b := range files {
			put(t, e.alice, "data", "root/"+p, b, minio.PutObjectOptions{})
		}
		p, err := s3backend.New("gw", s3backend.Config{
			Endpoint: e.host, Bucket: "data", Prefix: "root", AccessKey: aliceKey, SecretKey: aliceSecret,
			Region: DefaultRegion, PathStyle: true, Timeout: 30 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		return p
	})
	if got := get(t, e.alice, "data", "decoy.txt", minio.GetObjectOptions{}); !bytes.Equal(got, []byte("outside the prefix")) || strings.Contains(string(got), "root") {
		t.Errorf("decoy changed: %q", got)
	}
}
