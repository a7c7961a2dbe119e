package webdav

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBadPaths(t *testing.T) {
	e := newEnv(t)
	e.want(t, 201, req{method: "PUT", path: "/files/x", body: "x"})
	e.want(t, 201, req{method: "PUT", path: "/s", body: "s", user: "bob"}) // bob's root is his one view
	for _, c := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/files/%2e%2e/secret/s", 400},
		{"GET", "/files/%2e%2e%2fsecret%2fs", 400},
		{"GET", "/files/..%2f..%2fetc%2fpasswd", 400},
		{"GET", "/files/%252e%252e/x", 404}, // a literal "%2e%2e": just a name
		{"PUT", "/files/%2e", 400},
		{"GET", "/files/x%00", 400},
		{"PUT", "/files/a%00b", 400},
		{"GET", "/files//x", 400},
		{"PROPFIND", "/files/%2e%2e/", 400},
		{"PUT", "/files/" + strings.Repeat("n", 300), 400}, // name over 255 bytes
		{"GET", "/secret/s", 404},                          // bob's view, seen by alice
		{"PROPFIND", "/secret/", 404},
		{"PUT", "/secret/s", 404},
		{"PUT", "/ro/new", 403}, // read-only view
		{"DELETE", "/ro/", 403},
		{"MKCOL", "/ro/d", 403},
	} {
		hdr := map[string]string{}
		if c.method == "PROPFIND" {
			hdr["Depth"] = "0"
		}
		body := ""
		if c.method == "PUT" {
			body = "data"
		}
		if got, body, _ := e.do(t, req{method: c.method, path: c.path, body: body, hdr: hdr}); got != c.code {
			t.Errorf("%s %s: %d, want %d (%q)", c.method, c.path, got, c.code, trunc(body))
		}
	}
	// bob still has his file; alice's view is nothing to him
	if body, _ := e.want(t, 200, req{method: "GET", path: "/s", user: "bob"}); body != "s" {
		t.Fatalf("bob's file: %q", body)
	}
	e.want(t, 404, req{method: "GET", path: "/files/x", user: "bob"})

	dest := func(d string) map[string]string { return map[string]string{"Destination": d} }
	e.want(t, 502, req{method: "MOVE", path: "/files/x", hdr: dest("http://elsewhere.example/files/y")})
	e.want(t, 502, req{method: "COPY", path: "/files/x", hdr: dest("http://elsewhere.example/files/y")})
	e.want(t, 403, req{method: "MOVE", path: "/files/x", hdr: dest(e.ts.URL + "/files/%2e%2e/secret/x")})
	e.want(t, 403, req{method: "COPY", path: "/files/x", hdr: dest("/files/../../x")})
	e.want(t, 404, req{method: "COPY", path: "/files/x", hdr: dest(e.ts.URL + "/secret/x")}) // not alice's
	e.want(t, 403, req{method: "COPY", path: "/files/x", hdr: dest(e.ts.URL + "/ro/x")})
	e.want(t, 400, req{method: "COPY", path: "/files/x"})
	if body, _ := e.want(t, 200, req{method: "GET", path: "/files/x"}); body != "x" {
		t.Fatalf("source after refused moves: %q", body)
	}
}

func TestBadXML(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxXMLBody = 64 << 10 })
	e.want(t, 201, req{method: "PUT", path: "/files/x", body: "x"})
	d0 := map[string]string{"Depth": "0"}
	e.want(t, 400, req{method: "PROPFIND", path: "/files/x", hdr: d0, body: `<propfind xmlns="DAV:"><prop>`})
	e.want(t, 400, req{method: "PROPFIND", path: "/files/x", hdr: d0, body: `not xml at all`})
	e.want(t, 400, req{method: "PROPPATCH", path: "/files/x", body: `<propertyupdate xmlns="DAV:"><set><prop>`})
	e.want(t, 400, req{method: "LOCK", path: "/files/x", body: `<lockinfo xmlns="DAV:"><lockscope>`})
	bomb := `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>` +
		`<propfind xmlns="DAV:"><prop><displayname>&lol2;</displayname></prop></propfind>`
	e.want(t, 400, req{method: "PROPFIND", path: "/files/x", hdr: d0, body: bomb})
	huge := `<propfind xmlns="DAV:"><prop>` + strings.Repeat(`<x:a xmlns:x="urn:x"/>`, 10000) + `</prop></propfind>`
	e.want(t, 413, req{method: "PROPFIND", path: "/files/x", hdr: d0, body: huge})
	// Without Content-Length the cap cuts the read: 400, not a server
	// that reads forever.
	hr, _ := http.NewRequest("PROPFIND", e.ts.URL+"/files/x", io.MultiReader(strings.NewReader(huge), infinite{}))
	hr.SetBasicAuth("alice", password)
	hr.Header.Set("Depth", "0")
	resp, err := e.ts.Client().Do(hr)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != 400 && resp.StatusCode != 413 {
			t.Fatalf("unbounded PROPFIND body: %d", resp.StatusCode)
		}
	}
}

type infinite struct{}

func (infinite) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

// A client that goes away mid-PUT leaves nothing: no path, no content.
func TestAbandonedPut(t *testing.T) {
	e := newEnv(t)
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			conn, err := net.Dial("tcp", e.ts.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			hdr := "PUT /files/half HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWxpY2U6Y29ycmVjdCBob3JzZQ==\r\n"
			half := bytes.Repeat([]byte("h"), 1<<20)
			if chunked {
				fmt.Fprintf(conn, "%sTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", hdr, len(half), half)
			} else {
				fmt.Fprintf(conn, "%sContent-Length: %d\r\n\r\n%s", hdr, 2*len(half), half)
			}
			time.Sleep(200 * time.Millisecond)
			conn.Close()
			deadline := time.Now().Add(10 * time.Second)
			for {
				code, _, _ := e.do(t, req{method: "GET", path: "/files/half"})
				if code != 404 {
					t.Fatalf("after an abandoned PUT: GET %d", code)
				}
				if n := countFiles(t, filepath.Join(e.dir, "objects")); n == 0 {
					break
				} else if time.Now().After(deadline) {
					t.Fatalf("%d content files left behind", n)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

func countFiles(t *testing.T, dir string) int {
	n := 0
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

// Concurrent PUTs to one path: each is whole, and what stays is exactly
// one of them.
func TestConcurrentPuts(t *testing.T) {
	e := newEnv(t)
	const n = 8
	payloads := make([]string, n)
	for i := range payloads {
		payloads[i] = strings.Repeat(string(rune('a'+i)), 256<<10)
	}
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _, _ = e.do(t, req{method: "PUT", path: "/files/race", body: payloads[i]})
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != 201 {
			t.Errorf("PUT %d: %d", i, c)
		}
	}
	body, _ := e.want(t, 200, req{method: "GET", path: "/files/race"})
	found := false
	for _, p := range payloads {
		found = found || body == p
	}
	if !found {
		t.Fatalf("GET after concurrent PUTs: %d bytes matching none of them", len(body))
	}
}

// A raw HTTP exchange, for requests net/http's client would clean up.
func rawRequest(t *testing.T, addr, request string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, request)
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return line
}

func TestRawTraversal(t *testing.T) {
	e := newEnv(t)
	auth := "Authorization: Basic YWxpY2U6Y29ycmVjdCBob3JzZQ==\r\n"
	for _, p := range []string{"/files/../secret/s", "/files/./x", "/../../etc/passwd"} {
		line := rawRequest(t, e.ts.Listener.Addr().String(), "GET "+p+" HTTP/1.1\r\nHost: x\r\n"+auth+"Connection: close\r\n\r\n")
		if !strings.Contains(line, " 400 ") {
			t.Errorf("GET %s: %q", p, line)
		}
	}
}
