package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/bcrypt"
	gossh "golang.org/x/crypto/ssh"
)

// What a remote user is told when a read fails on the server's side (a
// provider answering 500, a stored copy gone bad) names neither the
// provider's URL, its credentials, nor the data directory, on WebDAV, S3,
// SFTP and md5sum over SSH; and no secret the test used — the users'
// passwords, an S3 secret, a presigned URL's signature, the provider's
// password and API-key header — is in the log (debug level) or the audit
// log. S3 answered a 200 cut before any byte for the provider's failure,
// and S3, SFTP and md5sum told the store's "set aside as
// DATA/objects/…corrupt".
func TestSecretsAndServerPathsStayInside(t *testing.T) {
	const (
		password = "sec-Pa55:word"
		s3Key    = "AKIASECALICE"
		s3Secret = "sec-s3-Secret-Key-1"
		provUser = "provuser"
		provPW   = "prov-Pa55word-2"
		apiKey   = "api-Key-Secret-3"
	)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream trouble", http.StatusInternalServerError)
	}))
	defer failing.Close()
	provURL := strings.Replace(failing.URL, "http://", "http://"+provUser+":"+provPW+"@", 1) + "/base/"

	data := t.TempDir()
	hash, _ := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	davPort, sftpPort, s3Addr := freePort(t), freePort(t), s3FreePort(t)
	cfg := fmt.Sprintf(`data: %s
listen: {admin: '127.0.0.1:0', webdav: '127.0.0.1:%s', sftp: '127.0.0.1:%s', s3: '%s'}
log: {level: debug}
providers:
  web: {type: http, url: %q, timeout: 2s, retries: 1, headers: {X-Api-Key: %q}}
views:
  files: {path: "{path...}"}
users:
  alice:
    password_hash: '%s'
    s3_keys: [{id: %s, secret: %s}]
    views: {files: rwd}
`, data, davPort, sftpPort, s3Addr, provURL, apiKey, hash, s3Key, s3Secret)
	s := startAuditServer(t, cfg, "json")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Over the data directory's socket: an object of the failing provider.
	sock := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(data, "datagate.sock"))
	}}}
	resp, err := sock.Post("http://socket/api/v1/objects", "application/x-ndjson", strings.NewReader(
		`{"name":"far.bin","size":100,"meta":{"path":"far.bin"},"location":{"provider":"web","path":"far.bin"}}`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("register: %d %s", resp.StatusCode, b)
	}
	// And a stored object whose copy is then replaced by a directory.
	dav := "http://127.0.0.1:" + davPort
	if r := davPut(t, dav+"/bad.bin", "alice", password, "sec-put", "stored content"); r.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d", r.StatusCode)
	}
	var stored string
	filepath.WalkDir(filepath.Join(data, "objects"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && stored == "" {
			stored = p
		}
		return nil
	})
	if stored == "" {
		t.Fatal("no stored copy")
	}
	os.Remove(stored)
	os.Mkdir(stored, 0o700)

	told := map[string]string{} // what each client was told
	for _, name := range []string{"far.bin", "bad.bin"} {
		req, _ := http.NewRequestWithContext(ctx, "GET", dav+"/"+name, nil)
		req.SetBasicAuth("alice", password)
		if r, err := http.DefaultClient.Do(req); err != nil {
			told["webdav "+name] = err.Error()
		} else {
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if r.StatusCode < 400 {
				t.Errorf("WebDAV GET %s: %d", name, r.StatusCode)
			}
			told["webdav "+name] = string(b)
		}

		mc, err := minio.New(s3Addr, &minio.Options{Creds: credentials.NewStaticV4(s3Key, s3Secret, ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath, MaxRetries: 1})
		if err != nil {
			t.Fatal(err)
		}
		o, err := mc.GetObject(ctx, "files", name, minio.GetObjectOptions{})
		if err == nil {
			_, err = io.ReadAll(o)
			o.Close()
		}
		if code := minio.ToErrorResponse(err).Code; code != "ServiceUnavailable" {
			t.Errorf("S3 GET %s: %v, want ServiceUnavailable", name, err)
		}
		told["s3 "+name] = fmt.Sprint(err, minio.ToErrorResponse(err).Message)
	}

	c, err := gossh.Dial("tcp", "127.0.0.1:"+sftpPort, &gossh.ClientConfig{User: "alice", Auth: []gossh.AuthMethod{gossh.Password(password)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := pkgsftp.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	for _, name := range []string{"far.bin", "bad.bin"} {
		f, err := sc.Open("/" + name)
		if err == nil {
			_, err = io.ReadAll(f)
			f.Close()
		}
		if err == nil {
			t.Errorf("SFTP read of %s succeeded", name)
		} else {
			told["sftp "+name] = err.Error()
		}
		sess, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		sess.Stderr = &stderr
		sess.Run("md5sum /" + name)
		sess.Close()
		told["md5sum "+name] = stderr.String()
	}
	for what, msg := range told {
		for _, leak := range []string{data, failing.URL, "/base/", provUser, provPW, apiKey, "objects/"} {
			if strings.Contains(msg, leak) {
				t.Errorf("%s: the client is told %q (holds %q)", what, msg, leak)
			}
		}
	}

	// Secrets sent or configured: none in the logs.
	mc, _ := minio.New(s3Addr, &minio.Options{Creds: credentials.NewStaticV4(s3Key, s3Secret, ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
	u, err := mc.PresignedGetObject(ctx, "files", "far.bin", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	sig := u.Query().Get("X-Amz-Signature")
	for _, raw := range []string{u.String(), strings.Replace(u.String(), sig, strings.Repeat("0", len(sig)), 1)} {
		if r, err := http.Get(raw); err == nil {
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
	}
	davPut(t, dav+"/x.bin", "alice", password+"-wrong", "sec-wrong", "x")
	if c, err := gossh.Dial("tcp", "127.0.0.1:"+sftpPort, &gossh.ClientConfig{User: "alice", Auth: []gossh.AuthMethod{gossh.Password(password + "-wrong")},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second}); err == nil {
		c.Close()
		t.Error("SSH login with a wrong password")
	}
	time.Sleep(200 * time.Millisecond) // the last log lines
	audit, _ := os.ReadFile(filepath.Join(data, "audit.log"))
	logs := s.stderr.String()
	for _, secret := range []string{password, s3Secret, sig, provPW, apiKey, string(hash)} {
		if strings.Contains(logs, secret) || strings.Contains(string(audit), secret) {
			t.Errorf("secret %q is logged", secret)
		}
	}
}
