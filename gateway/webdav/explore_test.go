package webdav

import (
	"strings"
	"testing"
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
