package store

import (
	"bytes"
	"context"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	s3backend "github.com/datagate/datagate/backends/s3"
	sftpbackend "github.com/datagate/datagate/backends/sftp"
	"github.com/datagate/datagate/backends/sftp/sftptest"
	"github.com/datagate/datagate/fs"
)

// s3Store starts an in-memory S3 server on loopback with a bucket and
// returns a store on it.
func s3Store(t *testing.T, name string) *s3backend.Provider {
	t.Helper()
	p, _ := s3StoreWith(t, name)
	return p
}

// s3StoreWith is s3Store with options for the server; it returns a client
// of the bucket ("copies") too.
func s3StoreWith(t *testing.T, name string, opts ...gofakes3.Option) (*s3backend.Provider, *minio.Client) {
	t.Helper()
	srv := httptest.NewServer(gofakes3.New(s3mem.New(), opts...).Server())
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	mc, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4("ak", "sk", ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := mc.MakeBucket(ctx, "copies", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	p, err := s3backend.New(name, s3backend.Config{Endpoint: u.Host, Bucket: "copies", AccessKey: "ak", SecretKey: "sk", Region: "us-east-1", PathStyle: true, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return p, mc
}

// sftpStore starts an SFTP server on loopback serving a temporary
// directory and returns a store on it and the directory.
func sftpStore(t *testing.T, name string) (*sftpbackend.Provider, string) {
	t.Helper()
	dir := t.TempDir()
	srv := sftptest.NewServer(t, dir)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(srv.KnownHostsLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := sftpbackend.New(name, sftpbackend.Config{Address: srv.Addr, User: srv.User, Password: srv.Password, KnownHosts: kh, Timeout: 10 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, dir
}

// TestReplicateToS3AndSFTP copies pushed objects to an S3 bucket and an
// SFTP server (four copies in all), then reads one back from the remote
// copies alone.
func TestReplicateToS3AndSFTP(t *testing.T) {
	s3p := s3Store(t, "bucket")
	sftpp, sftpDir := sftpStore(t, "remote")
	e := newRepEnv(t, func(r *Replication) {
		r.Stores = append(r.Stores, Target{Name: "bucket", W: s3p}, Target{Name: "remote", W: sftpp})
		r.Replicas = 4
	})
	ctx := ctxT(t)
	var objs []*fs.Object
	for i := range 3 {
		o, err := e.st.Put(ctx, PutRequest{Name: "f", Size: -1}, bytes.NewReader(pattern(200_000+i)))
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	e.run()
	waitFor(t, func() bool { return queued(t, e.st) == 0 })
	for i, o := range objs {
		// Get reads the readers' shared snapshot, which the last copy's
		// commit moves just after the queue (read afresh) is empty.
		var n *fs.Object
		waitFor(t, func() bool { n, _ = e.st.Get(ctx, o.ID); return n != nil && len(n.Stores) == 4 })
		if len(n.Stores) != 4 {
			t.Fatalf("object %d in stores %v, want 4", i, n.Stores)
		}
		if b, err := os.ReadFile(filepath.Join(sftpDir, copyPath(o))); err != nil || !bytes.Equal(b, pattern(200_000+i)) {
			t.Fatalf("SFTP copy of %d: %v", i, err)
		}
	}
	// Only the remote copies left: the read comes from S3 or SFTP.
	o := objs[1]
	os.Remove(filepath.Join(e.dir, "objects", primaryPath(o.ID)))
	os.Remove(filepath.Join(e.secondRoot, copyPath(o)))
	if got, err := readObject(t, e.st, o.ID); err != nil || !bytes.Equal(got, pattern(200_001)) {
		t.Fatalf("read from remote copies: %v", err)
	}
	os.Remove(filepath.Join(sftpDir, copyPath(o)))
	e.st.cache.Remove(o.ContentKey())
	if got, err := readObject(t, e.st, o.ID); err != nil || !bytes.Equal(got, pattern(200_001)) {
		t.Fatalf("read from the S3 copy alone: %v", err)
	}
}
