package webdav

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestAuth(t *testing.T) {
	e := newEnv(t)
	_, h := e.want(t, 401, req{method: "PROPFIND", path: "/", user: "-", hdr: map[string]string{"Depth": "0"}})
	if got := h.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Basic realm="datagate"`) {
		t.Fatalf("WWW-Authenticate %q", got)
	}
	e.want(t, 401, req{method: "PROPFIND", path: "/", user: "mallory", hdr: map[string]string{"Depth": "0"}})
	r, _ := http.NewRequest("PROPFIND", e.ts.URL+"/", nil)
	r.SetBasicAuth("alice", "wrong")
	resp, err := e.ts.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	e.want(t, 207, req{method: "PROPFIND", path: "/", hdr: map[string]string{"Depth": "0"}})
	e.want(t, 207, req{method: "PROPFIND", path: "/", user: "bob", hdr: map[string]string{"Depth": "0"}})
}

func TestAuthCache(t *testing.T) {
	c := newAuthCache(time.Minute, 2)
	now := time.Now()
	k := authKey("alice", []byte("$2a$hash"), "pw")
	if bytes.Contains(k[:], []byte("pw")) {
		t.Fatal("the key holds the password")
	}
	if c.hit(k, now) {
		t.Fatal("hit before add")
	}
	c.add(k, now)
	if !c.hit(k, now.Add(30*time.Second)) {
		t.Fatal("miss within the TTL")
	}
	if c.hit(k, now.Add(2*time.Minute)) {
		t.Fatal("hit after the TTL")
	}
	if k2 := authKey("alice", []byte("$2a$other"), "pw"); k2 == k {
		t.Fatal("a changed hash gives the same key")
	}
	for i := range 5 {
		c.add(authKey(fmt.Sprint(i), nil, "pw"), now)
	}
	if len(c.ok) > 2 {
		t.Fatalf("cache holds %d entries, bound 2", len(c.ok))
	}
}

func TestPutGet(t *testing.T) {
	e := newEnv(t)
	payload := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320000 bytes
	sum := sha256.Sum256(payload)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`

	e.want(t, 409, req{method: "PUT", path: "/files/a/b.txt", body: "x"}) // no parent
	e.want(t, 201, req{method: "MKCOL", path: "/files/a"})
	e.want(t, 405, req{method: "MKCOL", path: "/files/a"})
	_, h := e.want(t, 201, req{method: "PUT", path: "/files/a/b.txt", body: string(payload)})
	if h.Get("ETag") != etag {
		t.Fatalf("PUT ETag %q, want %q", h.Get("ETag"), etag)
	}
	body, h := e.want(t, 200, req{method: "GET", path: "/files/a/b.txt"})
	if body != string(payload) || h.Get("ETag") != etag || h.Get("Last-Modified") == "" || h.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("GET: %d bytes, headers %v", len(body), h)
	}
	if h.Get("OC-Checksum") != "SHA256:"+hex.EncodeToString(sum[:]) {
		t.Fatalf("OC-Checksum %q", h.Get("OC-Checksum"))
	}
	_, h = e.want(t, 200, req{method: "HEAD", path: "/files/a/b.txt"})
	if h.Get("Content-Length") != fmt.Sprint(len(payload)) {
		t.Fatalf("HEAD Content-Length %q", h.Get("Content-Length"))
	}
	body, h = e.want(t, 206, req{method: "GET", path: "/files/a/b.txt", hdr: map[string]string{"Range": "bytes=10-19"}})
	if body != string(payload[10:20]) || h.Get("Content-Range") != fmt.Sprintf("bytes 10-19/%d", len(payload)) {
		t.Fatalf("range: %q %v", body, h)
	}
	body, h = e.want(t, 206, req{method: "GET", path: "/files/a/b.txt", hdr: map[string]string{"Range": "bytes=0-1,100-101"}})
	if !strings.HasPrefix(h.Get("Content-Type"), "multipart/byteranges") || !strings.Contains(body, "01") || !strings.Contains(body, "45") {
		t.Fatalf("multi-range: %v %q", h, trunc(body))
	}
	e.want(t, 416, req{method: "GET", path: "/files/a/b.txt", hdr: map[string]string{"Range": "bytes=999999999-"}})
	e.want(t, 304, req{method: "GET", path: "/files/a/b.txt", hdr: map[string]string{"If-None-Match": etag}})
	e.want(t, 412, req{method: "GET", path: "/files/a/b.txt", hdr: map[string]string{"If-Match": `"nope"`}})
	e.want(t, 304, req{method: "GET", path: "/files/a/b.txt", hdr: map[string]string{"If-Modified-Since": time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}})

	// overwrite: a new version, a new ETag
	_, h = e.want(t, 201, req{method: "PUT", path: "/files/a/b.txt", body: "v2"}) // x/net/webdav: 201 for overwrites too
	if h.Get("ETag") == etag {
		t.Fatal("ETag unchanged by an overwrite")
	}
	if body, _ := e.want(t, 200, req{method: "GET", path: "/files/a/b.txt"}); body != "v2" {
		t.Fatalf("after overwrite: %q", body)
	}
	// an empty file
	e.want(t, 201, req{method: "PUT", path: "/files/a/empty"})
	if body, _ := e.want(t, 200, req{method: "GET", path: "/files/a/empty"}); body != "" {
		t.Fatalf("empty: %q", body)
	}
}

func TestPropfind(t *testing.T) {
	e := newEnv(t)
	e.want(t, 201, req{method: "MKCOL", path: "/files/d"})
	for i := range 3 {
		e.want(t, 201, req{method: "PUT", path: fmt.Sprintf("/files/d/f%d.grib", i), body: strings.Repeat("x", i+1)})
	}
	body, _ := e.want(t, 207, req{method: "PROPFIND", path: "/files/d/", hdr: map[string]string{"Depth": "1"}})
	for _, want := range []string{"/files/d/f0.grib", "/files/d/f2.grib", "<D:getcontentlength>3</D:getcontentlength>", "getetag", "<D:collection"} {
		if !strings.Contains(body, want) {
			t.Errorf("PROPFIND Depth 1 lacks %q:\n%s", want, trunc(body))
		}
	}
	sum := sha256.Sum256([]byte("x"))
	if !strings.Contains(body, hex.EncodeToString(sum[:])) {
		t.Errorf("PROPFIND ETag is not the SHA-256")
	}
	body, _ = e.want(t, 207, req{method: "PROPFIND", path: "/", hdr: map[string]string{"Depth": "1"}})
	if !strings.Contains(body, "<D:href>/files/</D:href>") || !strings.Contains(body, "<D:href>/ro/</D:href>") || strings.Contains(body, "secret") {
		t.Errorf("alice's root:\n%s", body)
	}
	body, _ = e.want(t, 207, req{method: "PROPFIND", path: "/files/d/f1.grib", hdr: map[string]string{"Depth": "0"},
		body: `<?xml version="1.0"?><propfind xmlns="DAV:"><prop><getcontentlength/><getcontenttype/><nope xmlns="urn:x"/></prop></propfind>`})
	if !strings.Contains(body, "<D:getcontentlength>2</D:getcontentlength>") || !strings.Contains(body, "404") {
		t.Errorf("PROPFIND prop:\n%s", body)
	}
	body, _ = e.want(t, 403, req{method: "PROPFIND", path: "/files/", hdr: map[string]string{"Depth": "infinity"}})
	if !strings.Contains(body, "propfind-finite-depth") {
		t.Errorf("Depth infinity: %q", body)
	}
	e.want(t, 403, req{method: "PROPFIND", path: "/files/"})
	e.want(t, 400, req{method: "PROPFIND", path: "/files/", hdr: map[string]string{"Depth": "2"}})
}

func TestCopyMoveDelete(t *testing.T) {
	e := newEnv(t)
	dest := func(p string) map[string]string { return map[string]string{"Destination": e.ts.URL + p} }
	e.want(t, 201, req{method: "MKCOL", path: "/files/src"})
	e.want(t, 201, req{method: "PUT", path: "/files/src/a", body: "aaa"})
	e.want(t, 201, req{method: "PUT", path: "/files/src/b", body: "bbb"})

	e.want(t, 201, req{method: "COPY", path: "/files/src/a", hdr: dest("/files/src/c")})
	if body, _ := e.want(t, 200, req{method: "GET", path: "/files/src/c"}); body != "aaa" {
		t.Fatalf("copy: %q", body)
	}
	e.want(t, 412, req{method: "COPY", path: "/files/src/a", hdr: map[string]string{"Destination": e.ts.URL + "/files/src/b", "Overwrite": "F"}})
	e.want(t, 201, req{method: "COPY", path: "/files/src", hdr: dest("/files/copy")})
	if body, _ := e.want(t, 200, req{method: "GET", path: "/files/copy/b"}); body != "bbb" {
		t.Fatalf("copy of a collection: %q", body)
	}
	e.want(t, 201, req{method: "MOVE", path: "/files/src", hdr: dest("/files/moved")})
	e.want(t, 404, req{method: "GET", path: "/files/src/a"})
	if body, _ := e.want(t, 200, req{method: "GET", path: "/files/moved/c"}); body != "aaa" {
		t.Fatalf("move: %q", body)
	}
	e.want(t, 204, req{method: "MOVE", path: "/files/moved/a", hdr: dest("/files/moved/b")}) // overwrite
	if body, _ := e.want(t, 200, req{method: "GET", path: "/files/moved/b"}); body != "aaa" {
		t.Fatalf("move over: %q", body)
	}
	e.want(t, 409, req{method: "MOVE", path: "/files/moved/b", hdr: dest("/files/nowhere/b")})
	e.want(t, 204, req{method: "DELETE", path: "/files/moved"})
	e.want(t, 404, req{method: "GET", path: "/files/moved/b"})
	e.want(t, 404, req{method: "DELETE", path: "/files/moved"})
	e.want(t, 403, req{method: "DELETE", path: "/"})
	e.want(t, 403, req{method: "DELETE", path: "/files"}) // a view's root
}

func TestListing(t *testing.T) {
	e := newEnv(t)
	e.want(t, 201, req{method: "PUT", path: "/files/a%20%3Cb%3E.txt", body: "hello"})
	e.want(t, 201, req{method: "MKCOL", path: "/files/sub"})
	body, h := e.want(t, 200, req{method: "GET", path: "/files/"})
	if !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Fatalf("listing type %q", h.Get("Content-Type"))
	}
	for _, want := range []string{`href="/files/a%20%3Cb%3E.txt"`, "a &lt;b&gt;.txt", `href="/files/sub/"`, "5 B", `href="/"`} {
		if !strings.Contains(body, want) {
			t.Errorf("listing lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<b>") {
		t.Error("a name is not escaped")
	}
}

func TestOptions(t *testing.T) {
	e := newEnv(t)
	_, h := e.want(t, 200, req{method: "OPTIONS", path: "/"})
	if !strings.Contains(h.Get("DAV"), "2") {
		t.Fatalf("DAV header %q", h.Get("DAV"))
	}
}

// OC-Checksum on a PUT is checked: a mismatch stores nothing.
func TestPutChecksum(t *testing.T) {
	e := newEnv(t)
	sum := md5.Sum([]byte("right"))
	e.want(t, 201, req{method: "PUT", path: "/files/ok", body: "right", hdr: map[string]string{"OC-Checksum": "MD5:" + hex.EncodeToString(sum[:])}})
	e.want(t, 400, req{method: "PUT", path: "/files/bad", body: "wrong", hdr: map[string]string{"OC-Checksum": "MD5:" + hex.EncodeToString(sum[:])}})
	e.want(t, 404, req{method: "GET", path: "/files/bad"})
	e.want(t, 201, req{method: "PUT", path: "/files/mt", body: "m", hdr: map[string]string{"X-OC-Mtime": "1577934245"}})
	_, h := e.want(t, 200, req{method: "HEAD", path: "/files/mt"})
	if h.Get("Last-Modified") != "Thu, 02 Jan 2020 03:04:05 GMT" {
		t.Fatalf("X-OC-Mtime: Last-Modified %q", h.Get("Last-Modified"))
	}
}

func TestAuthPenalty(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxAuthFailures, o.AuthPenalty = 3, 300*time.Millisecond })
	bad := func() int {
		r, _ := http.NewRequest("GET", e.ts.URL+"/", nil)
		r.SetBasicAuth("alice", "guess")
		resp, err := e.ts.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 3 {
		if c := bad(); c != 401 {
			t.Fatalf("failure %d: %d", i, c)
		}
	}
	_, h := e.want(t, 429, req{method: "GET", path: "/files/"}) // even the right password waits
	if h.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	time.Sleep(350 * time.Millisecond)
	e.want(t, 200, req{method: "GET", path: "/files/"})
	// requests without credentials (a client's first try) are no failures
	for range 5 {
		e.want(t, 401, req{method: "GET", path: "/", user: "-"})
	}
	e.want(t, 200, req{method: "GET", path: "/files/"})
}
