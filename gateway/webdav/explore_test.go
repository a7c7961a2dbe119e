package webdav

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/webdav"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/views"
)

// TestWritePreconditions: If-Match, If-None-Match and If-Unmodified-Since
// hold for PUT, DELETE, MOVE, COPY and PROPPATCH as for GET (Apache
// answers 412). They were ignored: a PUT with If-None-Match: * replaced
// an existing file, one with a stale If-Match the newer version.
func TestWritePreconditions(t *testing.T) {
	e := newEnv(t)
	_, h := e.want(t, 201, req{method: "PUT", path: "/files/doc", body: "v1"})
	v1 := h.Get("ETag")
	if v1 == "" {
		t.Fatal("PUT gave no ETag")
	}
	hdr := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	const stale = `"0123456789abcdef0123456789abcdef"`
	e.want(t, 412, req{method: "PUT", path: "/files/doc", body: "x", hdr: hdr("If-None-Match", "*")})
	e.want(t, 412, req{method: "PUT", path: "/files/doc", body: "x", hdr: hdr("If-Match", stale)})
	e.want(t, 412, req{method: "PUT", path: "/files/doc", body: "x", hdr: hdr("If-None-Match", stale+", "+v1)})
	e.want(t, 412, req{method: "PUT", path: "/files/doc", body: "x", hdr: hdr("If-Match", "W/"+v1)}) // strong comparison
	e.want(t, 412, req{method: "PUT", path: "/files/doc", body: "x", hdr: hdr("If-Unmodified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")})
	e.want(t, 412, req{method: "PUT", path: "/files/new", body: "x", hdr: hdr("If-Match", "*")})
	e.want(t, 412, req{method: "DELETE", path: "/files/doc", hdr: hdr("If-Match", stale)})
	e.want(t, 412, req{method: "MOVE", path: "/files/doc", hdr: hdr("If-Match", stale, "Destination", e.ts.URL+"/files/moved")})
	e.want(t, 412, req{method: "COPY", path: "/files/doc", hdr: hdr("If-None-Match", v1, "Destination", e.ts.URL+"/files/copied")})
	e.want(t, 412, req{method: "PROPPATCH", path: "/files/doc", hdr: hdr("If-Match", stale),
		body: `<?xml version="1.0"?><propertyupdate xmlns="DAV:"><set><prop><x xmlns="urn:t">1</x></prop></set></propertyupdate>`})
	if body, _ := e.want(t, 200, req{method: "GET", path: "/files/doc"}); body != "v1" {
		t.Fatalf("after refused writes: %q", body)
	}

	// the conditions that hold let the request through
	e.want(t, 201, req{method: "PUT", path: "/files/new", body: "n", hdr: hdr("If-None-Match", "*")})
	e.want(t, 201, req{method: "PUT", path: "/files/doc", body: "v2", hdr: hdr("If-Match", v1)})
	e.want(t, 412, req{method: "PUT", path: "/files/doc", body: "v3", hdr: hdr("If-Match", v1)}) // v1 is gone
	e.want(t, 201, req{method: "PUT", path: "/files/doc", body: "v3", hdr: hdr("If-Match", "*", "If-Unmodified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")})
	e.want(t, 201, req{method: "COPY", path: "/files/doc", hdr: hdr("If-Match", "*", "Destination", e.ts.URL+"/files/copied")})
	e.want(t, 201, req{method: "MKCOL", path: "/files/dir", hdr: hdr("If-None-Match", "*")})
	e.want(t, 412, req{method: "MKCOL", path: "/files/dir", hdr: hdr("If-None-Match", "*")})
	e.want(t, 204, req{method: "DELETE", path: "/files/dir", hdr: hdr("If-Match", "*")})
	e.want(t, 204, req{method: "DELETE", path: "/files/new", hdr: hdr("If-Match", `"x", `+etagOfBody(t, e, "/files/new"))})
	if body, _ := e.want(t, 200, req{method: "GET", path: "/files/doc"}); body != "v3" {
		t.Fatalf("doc: %q", body)
	}
}

func etagOfBody(t *testing.T, e *env, p string) string {
	t.Helper()
	_, h := e.want(t, 200, req{method: "HEAD", path: p})
	return h.Get("ETag")
}

// TestPartialPutRefused: a PUT with Content-Range (curl -C - -T) replaced
// the whole file with the range it carried; it is refused (400, RFC 7231
// 4.3.4) and the file is left as it was.
func TestPartialPutRefused(t *testing.T) {
	e := newEnv(t)
	e.want(t, 201, req{method: "PUT", path: "/files/ten", body: "0123456789"})
	e.want(t, 400, req{method: "PUT", path: "/files/ten", body: "AB", hdr: map[string]string{"Content-Range": "bytes 2-3/10"}})
	e.want(t, 400, req{method: "PUT", path: "/files/other", body: "AB", hdr: map[string]string{"Content-Range": "bytes 8-9/10"}})
	if body, _ := e.want(t, 200, req{method: "GET", path: "/files/ten"}); body != "0123456789" {
		t.Fatalf("after a refused partial PUT: %q", body)
	}
	e.want(t, 404, req{method: "GET", path: "/files/other"})
}

// TestLockDiscovery: PROPFIND shows a resource's locks in
// DAV:lockdiscovery, its own and the infinite-depth ones of its
// ancestors (404 before: cadaver's discover said "no locks found" on a
// locked file).
func TestLockDiscovery(t *testing.T) {
	e := newEnv(t)
	e.want(t, 201, req{method: "MKCOL", path: "/files/d"})
	e.want(t, 201, req{method: "PUT", path: "/files/d/a", body: "a"})
	e.want(t, 201, req{method: "PUT", path: "/files/b", body: "b"})
	_, h := e.want(t, 200, req{method: "LOCK", path: "/files/d", body: lockBody, hdr: map[string]string{"Timeout": "Second-600", "Depth": "infinity"}})
	tok := strings.Trim(h.Get("Lock-Token"), "<>")
	const ask = `<?xml version="1.0"?><propfind xmlns="DAV:"><prop><lockdiscovery/></prop></propfind>`
	body, _ := e.want(t, 207, req{method: "PROPFIND", path: "/files/d/a", body: ask, hdr: map[string]string{"Depth": "0"}})
	for _, want := range []string{"<D:lockdiscovery><D:activelock>", "<D:href>" + tok + "</D:href>", "<D:lockroot><D:href>/files/d</D:href>",
		"<D:depth>infinity</D:depth>", "<D:exclusive/>", "<D:owner>t</D:owner>", "<D:timeout>Second-"} {
		if !strings.Contains(body, want) {
			t.Fatalf("lockdiscovery of a file under a locked collection lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "404") {
		t.Fatalf("lockdiscovery not found:\n%s", body)
	}
	body, _ = e.want(t, 207, req{method: "PROPFIND", path: "/files/b", body: ask, hdr: map[string]string{"Depth": "0"}})
	if !strings.Contains(body, "<D:lockdiscovery></D:lockdiscovery>") || strings.Contains(body, "activelock") {
		t.Fatalf("lockdiscovery of an unlocked file:\n%s", body)
	}
	// allprop carries it too, as Apache's does
	body, _ = e.want(t, 207, req{method: "PROPFIND", path: "/files/d/", hdr: map[string]string{"Depth": "1"}})
	if n := strings.Count(body, "<D:href>"+tok+"</D:href>"); n != 2 {
		t.Fatalf("allprop Depth 1 shows the lock %d times, want 2 (d and d/a):\n%s", n, body)
	}
	// after UNLOCK the lock is gone
	e.want(t, 204, req{method: "UNLOCK", path: "/files/d", hdr: map[string]string{"Lock-Token": "<" + tok + ">"}})
	body, _ = e.want(t, 207, req{method: "PROPFIND", path: "/files/d/a", body: ask, hdr: map[string]string{"Depth": "0"}})
	if strings.Contains(body, "activelock") {
		t.Fatalf("lockdiscovery after UNLOCK:\n%s", body)
	}
}

// TestDeleteRespectsMemberLocks: a DELETE or MOVE of a collection, or a
// COPY or MOVE onto one, needs the tokens of the locks of its members
// (RFC 4918 9.6.1, 7.4); they removed a file another client had locked.
func TestDeleteRespectsMemberLocks(t *testing.T) {
	e := newEnv(t)
	e.users["carol"] = e.users["alice"]
	e.want(t, 201, req{method: "MKCOL", path: "/files/d"})
	e.want(t, 201, req{method: "MKCOL", path: "/files/d/sub"})
	e.want(t, 201, req{method: "PUT", path: "/files/d/sub/locked", body: "keep"})
	e.want(t, 201, req{method: "PUT", path: "/files/d/other", body: "o"})
	e.want(t, 201, req{method: "PUT", path: "/files/src", body: "s"})
	_, h := e.want(t, 200, req{method: "LOCK", path: "/files/d/sub/locked", body: lockBody, hdr: map[string]string{"Depth": "0"}})
	tok := h.Get("Lock-Token")
	dest := func(p string) map[string]string { return map[string]string{"Destination": e.ts.URL + p} }

	e.want(t, 423, req{method: "DELETE", path: "/files/d"})
	e.want(t, 423, req{method: "DELETE", path: "/files/d/sub", user: "carol"})
	e.want(t, 423, req{method: "MOVE", path: "/files/d", hdr: dest("/files/e")})
	e.want(t, 423, req{method: "MOVE", path: "/files/src", hdr: dest("/files/d")})
	e.want(t, 423, req{method: "COPY", path: "/files/src", hdr: dest("/files/d/sub")})
	// an If header that names another lock, or none of this one, fails
	e.want(t, 412, req{method: "DELETE", path: "/files/d", hdr: map[string]string{"If": "(Not <urn:uuid:x>)"}})
	if body, _ := e.want(t, 200, req{method: "GET", path: "/files/d/sub/locked"}); body != "keep" {
		t.Fatalf("locked file: %q", body)
	}
	e.want(t, 200, req{method: "GET", path: "/files/d/other"}) // all or nothing

	// carol cannot use alice's token; alice can, and then it goes
	e.want(t, 412, req{method: "DELETE", path: "/files/d", user: "carol", hdr: map[string]string{"If": "(" + tok + ")"}})
	e.want(t, 201, req{method: "MOVE", path: "/files/d", hdr: map[string]string{"Destination": e.ts.URL + "/files/e", "If": "<" + e.ts.URL + "/files/d/sub/locked> (" + tok + ")"}})
	// the lock went with its resource (RFC 4918 9.9.4, 9.6): nothing is
	// locked at the old path or the new one
	e.want(t, 201, req{method: "PUT", path: "/files/e/sub/locked", body: "new", user: "carol"})
	e.want(t, 201, req{method: "MKCOL", path: "/files/d", user: "carol"})
	e.want(t, 201, req{method: "MKCOL", path: "/files/d/sub", user: "carol"})
	e.want(t, 201, req{method: "PUT", path: "/files/d/sub/locked", body: "new", user: "carol"})
	e.want(t, 204, req{method: "DELETE", path: "/files/e", user: "carol"})
	e.want(t, 404, req{method: "GET", path: "/files/e/other"})

	// a DELETE destroys the locks rooted on what it removed
	_, h = e.want(t, 200, req{method: "LOCK", path: "/files/src", body: lockBody, hdr: map[string]string{"Depth": "0"}})
	e.want(t, 204, req{method: "DELETE", path: "/files/src", hdr: map[string]string{"If": "(" + h.Get("Lock-Token") + ")"}})
	e.want(t, 201, req{method: "PUT", path: "/files/src", body: "again", user: "carol"})
}

// TestDeleteViewRootKeepsFiles: DELETE of a view's root (and a MOVE or
// COPY onto it) is 403 with every file still there; it removed every
// file of the view, then failed on the root. DELETE of a collection with
// Depth other than infinity is 400 (it removed the whole tree).
func TestDeleteViewRootKeepsFiles(t *testing.T) {
	e := newEnv(t)
	e.want(t, 201, req{method: "MKCOL", path: "/files/d"})
	e.want(t, 201, req{method: "PUT", path: "/files/d/a", body: "a"})
	e.want(t, 201, req{method: "PUT", path: "/files/b", body: "b"})
	e.want(t, 403, req{method: "DELETE", path: "/files"})
	e.want(t, 403, req{method: "DELETE", path: "/files/"})
	e.want(t, 403, req{method: "MOVE", path: "/files/b", hdr: map[string]string{"Destination": e.ts.URL + "/files"}})
	e.want(t, 403, req{method: "COPY", path: "/files/d", hdr: map[string]string{"Destination": e.ts.URL + "/files/"}})
	for _, d := range []string{"0", "1"} {
		e.want(t, 400, req{method: "DELETE", path: "/files/d", hdr: map[string]string{"Depth": d}})
	}
	for _, p := range []string{"/files/d/a", "/files/b"} {
		e.want(t, 200, req{method: "GET", path: p})
	}
	e.want(t, 204, req{method: "DELETE", path: "/files/b", hdr: map[string]string{"Depth": "0"}}) // a file: Depth means nothing
	e.want(t, 204, req{method: "DELETE", path: "/files/d", hdr: map[string]string{"Depth": "infinity"}})
	e.want(t, 404, req{method: "GET", path: "/files/d/a"})
}

// TestErrorBodiesSayWhy: a refusal the user can act on says why in its
// body, which rclone prints as its error (it printed "Bad Request: 400
// Bad Request" for a name the view cannot hold); a 404 says nothing
// more, the same for another user's view as for no view.
func TestErrorBodiesSayWhy(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		r    req
		code int
		want string
	}{
		{req{method: "PUT", path: "/files/50%25.txt", body: "x"}, 400, `malformed escape`},
		{req{method: "PUT", path: "/ro/x", body: "x"}, 403, `needs right "w" on view ro`},
		{req{method: "PUT", path: "/dated/x", body: "x"}, 400, `does not match template "{date}/{name}"`},
		{req{method: "DELETE", path: "/files"}, 403, `a view cannot be removed`},
		{req{method: "GET", path: "/files/" + strings.Repeat("n", 300)}, 400, `name longer than 255 bytes`},
		{req{method: "PUT", path: "/secret/x", body: "x"}, 404, ""},
		{req{method: "PUT", path: "/nosuch/x", body: "x"}, 404, ""},
		{req{method: "GET", path: "/secret/x"}, 404, ""},
	} {
		body, _ := e.want(t, c.code, c.r)
		if c.want == "" {
			if strings.TrimSpace(body) != "Not Found" {
				t.Errorf("%s %s: body %q, want only Not Found", c.r.method, c.r.path, body)
			}
		} else if !strings.Contains(body, c.want) {
			t.Errorf("%s %s: body %q lacks %q", c.r.method, c.r.path, trunc(body), c.want)
		}
	}
}

// TestRefusedPutBodyIsRead: a client that sends a whole upload before it
// reads the answer (neon: cadaver, davfs2; no Expect: 100-continue) gets
// the status of a refused PUT. The server left the body unread and
// closed the connection: cadaver said "connection was closed by server"
// instead of 403 Forbidden.
func TestRefusedPutBodyIsRead(t *testing.T) {
	e := newEnv(t)
	body := bytes.Repeat([]byte("x"), 20<<20)
	for _, c := range []struct {
		path string
		code int
	}{{"/ro/x", 403}, {"/files/nodir/x", 409}, {"/secret/x", 404}} {
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(e.ts.URL, "http://"), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(time.Minute))
		auth := base64.StdEncoding.EncodeToString([]byte("alice:" + password))
		fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\nContent-Length: %d\r\n\r\n", c.path, auth, len(body))
		if _, err := conn.Write(body); err != nil {
			t.Fatalf("PUT %s: sending the body: %v", c.path, err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("PUT %s: reading the answer: %v", c.path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Fatalf("PUT %s: %d, want %d", c.path, resp.StatusCode, c.code)
		}
	}
	// a client that waits for 100 Continue gets the refusal without
	// sending the body (litmus' expect100)
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(e.ts.URL, "http://"), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "PUT /ro/x HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
		base64.StdEncoding.EncodeToString([]byte("alice:"+password)), len(body))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != 403 {
		t.Fatalf("PUT with Expect: 100-continue: %v %v, want 403 before the body", resp, err)
	}
}

// TestEarlyETagStillMatches: content fetched lazily has the ETag
// "id-version" until its first whole read has been digested, then the
// SHA-256 one; a write conditional on the earlier tag (davfs2's If-Match
// after it cached the file) still matches that unchanged version, and a
// GET revalidating it is 304.
func TestEarlyETagStillMatches(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	if err := os.MkdirAll(filepath.Join(e.dir, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "src", "reg.txt"), []byte("registered"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := &fs.Object{ID: e.st.NewID(), Name: "reg.txt", Size: 10, Meta: map[string]string{"path": "reg.txt"},
		Source: fs.Location{Provider: "disk", Path: "reg.txt"}}
	if _, err := e.st.Register(ctx, []*fs.Object{o}); err != nil {
		t.Fatal(err)
	}
	body, h := e.want(t, 200, req{method: "GET", path: "/files/reg.txt"})
	early := h.Get("ETag")
	if body != "registered" || !strings.HasSuffix(early, `-0"`) && !strings.HasSuffix(early, `-1"`) {
		t.Fatalf("first GET: %q, ETag %s (want the id-version one)", body, early)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, h := e.want(t, 200, req{method: "HEAD", path: "/files/reg.txt"})
		if h.Get("ETag") != early {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the ETag did not become the SHA-256 one")
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.want(t, 304, req{method: "GET", path: "/files/reg.txt", hdr: map[string]string{"If-None-Match": early}})
	if body, _ := e.want(t, 206, req{method: "GET", path: "/files/reg.txt", hdr: map[string]string{"If-Range": early, "Range": "bytes=2-4"}}); body != "gis" {
		t.Fatalf("If-Range with the early ETag: %q", body)
	}
	e.want(t, 207, req{method: "PROPPATCH", path: "/files/reg.txt", hdr: map[string]string{"If": "([" + early + "])"},
		body: `<?xml version="1.0"?><propertyupdate xmlns="DAV:"><set><prop><x xmlns="urn:t">1</x></prop></set></propertyupdate>`})
	e.want(t, 201, req{method: "PUT", path: "/files/reg.txt", body: "v2", hdr: map[string]string{"If-Match": early}})
	e.want(t, 412, req{method: "PUT", path: "/files/reg.txt", body: "v3", hdr: map[string]string{"If-Match": early}}) // changed since
	if body, _ := e.want(t, 200, req{method: "GET", path: "/files/reg.txt"}); body != "v2" {
		t.Fatalf("after the conditional PUTs: %q", body)
	}
}

// TestProppatchMoveDropsLock: a PROPPATCH of a template key moves the
// file, and its lock goes as after a MOVE; it stayed on the old path
// (423 for a file made there again) while the moved file was unlocked.
func TestProppatchMoveDropsLock(t *testing.T) {
	e := newEnv(t)
	e.users["carol"] = e.users["alice"]
	e.want(t, 201, req{method: "MKCOL", path: "/dated/2026-02-02"})
	e.want(t, 201, req{method: "PUT", path: "/dated/2026-02-02/m.txt", body: "v"})
	_, h := e.want(t, 200, req{method: "LOCK", path: "/dated/2026-02-02/m.txt", body: lockBody})
	tok := h.Get("Lock-Token")
	patch := `<?xml version="1.0"?><propertyupdate xmlns="DAV:" xmlns:m="` + MetaNS + `"><set><prop><m:date>%s</m:date></prop></set></propertyupdate>`
	e.want(t, 423, req{method: "PROPPATCH", path: "/dated/2026-02-02/m.txt", body: fmt.Sprintf(patch, "2026-02-03")})
	body, _ := e.want(t, 207, req{method: "PROPPATCH", path: "/dated/2026-02-02/m.txt", body: fmt.Sprintf(patch, "2026-02-03"), hdr: map[string]string{"If": "(" + tok + ")"}})
	if !strings.Contains(body, "200 OK") {
		t.Fatalf("PROPPATCH: %s", body)
	}
	e.want(t, 200, req{method: "GET", path: "/dated/2026-02-03/m.txt"})
	e.want(t, 201, req{method: "PUT", path: "/dated/2026-02-02/m.txt", body: "again", user: "carol"})
	// a PROPPATCH that moves nothing keeps the lock
	_, h = e.want(t, 200, req{method: "LOCK", path: "/dated/2026-02-03/m.txt", body: lockBody})
	e.want(t, 207, req{method: "PROPPATCH", path: "/dated/2026-02-03/m.txt", hdr: map[string]string{"If": "(" + h.Get("Lock-Token") + ")"},
		body: `<?xml version="1.0"?><propertyupdate xmlns="DAV:"><set><prop><x xmlns="urn:t">1</x></prop></set></propertyupdate>`})
	e.want(t, 423, req{method: "PUT", path: "/dated/2026-02-03/m.txt", body: "x", user: "carol"})
}

// TestLockNeedsWrite: LOCK needs the w right (Apache's does): a user who
// could only read a view locked it whole and kept its writers out.
func TestLockNeedsWrite(t *testing.T) {
	e := newEnv(t)
	e.users["carol"] = views.Profile{Views: map[string]views.Rights{"ro": views.All}}
	e.want(t, 201, req{method: "PUT", path: "/x", body: "x", user: "carol"}) // carol's root is ro
	for _, p := range []string{"/ro/", "/ro/x", "/"} {
		e.want(t, 403, req{method: "LOCK", path: p, body: lockBody})
	}
	e.want(t, 403, req{method: "LOCK", path: "/ro/new", body: lockBody})
	e.want(t, 201, req{method: "PUT", path: "/x", body: "y", user: "carol"})
	e.want(t, 200, req{method: "LOCK", path: "/", body: lockBody, user: "carol"}) // her one view, rwd
	e.want(t, 200, req{method: "LOCK", path: "/files/", body: lockBody})
}

// TestNoLockUnderDeleteUnderWay: while a DELETE, MOVE or COPY holds its
// request lock on a tree, no LOCK is granted inside it (the DELETE
// would remove the file just locked); LOCKs elsewhere and other
// requests' locks are not held up.
func TestNoLockUnderDeleteUnderWay(t *testing.T) {
	e := newEnv(t)
	tree := e.tree("alice")
	now := time.Now()
	del := e.locks.forTree(tree, false)
	del.forRequest("/files/d", "", true)
	tok, err := del.Create(now, webdav.LockDetails{Root: "/files/d", Duration: -1, ZeroDepth: true})
	if err != nil {
		t.Fatal(err)
	}
	lock := e.locks.forTree(tree, true)
	d0 := webdav.LockDetails{Root: "/files/d/x", Duration: time.Minute, ZeroDepth: true}
	if _, err := lock.Create(now, d0); !errors.Is(err, webdav.ErrLocked) {
		t.Fatalf("LOCK inside a tree being deleted: %v, want ErrLocked", err)
	}
	if _, err := lock.Create(now, webdav.LockDetails{Root: "/files/e", Duration: time.Minute, ZeroDepth: true}); err != nil {
		t.Fatalf("LOCK elsewhere: %v", err)
	}
	put := e.locks.forTree(tree, false)
	put.forRequest("/files/d/x", "", false)
	ptok, err := put.Create(now, webdav.LockDetails{Root: "/files/d/x", Duration: -1, ZeroDepth: true})
	if err != nil {
		t.Fatalf("another request's lock inside: %v", err)
	}
	for _, l := range []struct {
		tl  *treeLocks
		tok string
	}{{del, tok}, {put, ptok}} {
		if err := l.tl.Unlock(now, l.tok); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := lock.Create(now, d0); err != nil {
		t.Fatalf("LOCK after the DELETE: %v", err)
	}
}
