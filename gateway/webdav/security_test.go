package webdav

import (
	"bufio"
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

	"golang.org/x/crypto/bcrypt"

	"github.com/datagate/datagate/fs"
)

// The drain of a refused request's body (so that clients without
// Expect: 100-continue, as neon, see the status) is bounded in time: a
// body that trickles in (slowloris: a byte now and then of a 100 MB PUT,
// without credentials or to a view one may only read) is answered and
// its connection closed once the drain's grace is over and its rate too
// low. It was drained, up to 1 GiB with no time bound, before the
// answer: one client held a connection and a goroutine as long as it
// liked (against serve: still open after 150 s).
func TestTrickledBodyDrainIsBounded(t *testing.T) {
	e := newEnv(t)
	e.srv.drainGrace = time.Second // before any request
	for _, c := range []struct {
		auth string
		code int
	}{
		{"", http.StatusUnauthorized},
		{"Authorization: Basic YWxpY2U6d3Jvbmc=\r\n", http.StatusUnauthorized},          // alice:wrong
		{"Authorization: Basic YWxpY2U6Y29ycmVjdCBob3JzZQ==\r\n", http.StatusForbidden}, // alice, read-only view
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(e.ts.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "PUT /ro/slow.bin HTTP/1.1\r\nHost: x\r\n%sContent-Length: 100000000\r\n\r\n", c.auth)
		stop := make(chan struct{})
		go func() { // the trickle
			tk := time.NewTicker(50 * time.Millisecond)
			defer tk.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tk.C:
					if _, err := conn.Write([]byte("x")); err != nil {
						return
					}
				}
			}
		}()
		conn.SetReadDeadline(time.Now().Add(8 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		close(stop)
		if err != nil {
			t.Fatalf("%q: no answer within 8 s while the body trickles: %v", c.auth, err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Errorf("%q: status %d, want %d", c.auth, resp.StatusCode, c.code)
		}
	}
}

// Wrong passwords sent at once from one address are bounded like those
// sent in turn: at most MaxAuthFailures bcrypt checks in flight, the
// rest answered 429 at once. The penalty counted a failure only once its
// check was over, so 40 concurrent guesses were 40 bcrypt comparisons
// and 40 answers (seen against serve: 300 guesses, 18 s of CPU, all
// 401). Requests with the same right password at once (a client starting
// its transfers) share one check and all get in.
func TestConcurrentLoginsAreBounded(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *Options) {
		o.PasswordHash = func(u string) ([]byte, bool) { return hash, u == "alice" }
	})
	run := func(n int, user func(i int) (string, string)) map[int]int {
		var mu sync.Mutex
		got := map[int]int{}
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, _ := http.NewRequestWithContext(ctxT(t), "PROPFIND", e.ts.URL+"/", nil)
				r.Header.Set("Depth", "0")
				u, p := user(i)
				r.SetBasicAuth(u, p)
				resp, err := e.ts.Client().Do(r)
				code := -1
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
				}
				mu.Lock()
				got[code]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		return got
	}
	if got := run(16, func(int) (string, string) { return "alice", password }); got[http.StatusMultiStatus] != 16 {
		t.Errorf("16 logins with the right password at once: %v, want 16 × 207", got)
	}
	got := run(40, func(i int) (string, string) { return fmt.Sprint("nobody", i), "guess" })
	if checked := got[http.StatusUnauthorized]; checked > 2*10 || got[http.StatusUnauthorized]+got[http.StatusTooManyRequests] != 40 {
		t.Errorf("40 guesses at once: %v, want at most 20 checked (401), the rest 429", got)
	}
}

// A GET of content that cannot be read for the server's own reasons (the
// provider's "file" is a directory) is a 500 whose body says nothing
// more, the cause in the log: it was a 400, the client's fault, whose
// body named the provider and its path.
func TestServerSideReadFailureIs500(t *testing.T) {
	e := newEnv(t)
	if err := os.MkdirAll(filepath.Join(e.dir, "src", "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Register(ctxT(t), []*fs.Object{{Name: "adir.bin", Size: 10, Meta: map[string]string{"path": "adir.bin"},
		Source: fs.Location{Provider: "disk", Path: "adir"}}}); err != nil {
		t.Fatal(err)
	}
	code, body, _ := e.do(t, req{method: "GET", path: "/files/adir.bin"})
	if code != http.StatusInternalServerError || strings.Contains(body, "disk") || strings.Contains(body, "adir") {
		t.Errorf("GET: %d %q, want a bare 500", code, body)
	}
}

// A lock's owner is at most maxLockOwner bytes (400 beyond): it is kept
// with the lock and sent in every lockdiscovery of the resource, so 30
// shared locks with 900 KB owners made each PROPFIND of the file 28 MB.
func TestLockOwnerIsBounded(t *testing.T) {
	e := newEnv(t)
	if code, _, _ := e.do(t, req{method: "PUT", path: "/files/l.txt", body: "x"}); code != http.StatusCreated {
		t.Fatalf("PUT: %d", code)
	}
	lock := func(owner string) (int, string) {
		code, body, _ := e.do(t, req{method: "LOCK", path: "/files/l.txt", hdr: map[string]string{"Timeout": "Second-60"},
			body: `<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>` + owner + `</D:owner></D:lockinfo>`})
		return code, body
	}
	if code, body := lock(strings.Repeat("o", 4<<10+1)); code != http.StatusBadRequest || !strings.Contains(body, "lock owner") {
		t.Errorf("LOCK with a %d-byte owner: %d %.80q, want 400", 4<<10+1, code, body)
	}
	if code, body := lock("<D:href>mailto:alice@example.org</D:href>"); code != http.StatusOK {
		t.Errorf("LOCK with a short owner: %d %q", code, body)
	}
}

// PROPPATCH may not leave a file with more than views.MaxMeta bytes of
// metadata (507 for every property, nothing changed; removals are always
// allowed): 5,000 properties of 150 bytes made a file whose listing was
// 10 MB and which the aws CLI could no longer HEAD, for every user who
// sees it.
func TestProppatchMetadataIsBounded(t *testing.T) {
	e := newEnv(t)
	if code, _, _ := e.do(t, req{method: "PUT", path: "/files/p.txt", body: "x"}); code != http.StatusCreated {
		t.Fatalf("PUT: %d", code)
	}
	patch := func(props string) (int, string) {
		code, body, _ := e.do(t, req{method: "PROPPATCH", path: "/files/p.txt",
			body: `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:m="urn:datagate:meta">` + props + `</D:propertyupdate>`})
		return code, body
	}
	var big strings.Builder
	for i := range 200 {
		fmt.Fprintf(&big, "<m:k%03d>%s</m:k%03d>", i, strings.Repeat("v", 150), i)
	}
	code, body := patch("<D:set><D:prop>" + big.String() + "</D:prop></D:set>")
	if code != http.StatusMultiStatus || !strings.Contains(body, "507") || strings.Contains(body, "200 OK") {
		t.Errorf("PROPPATCH of 30 KB of metadata: %d %.300s, want 507 for each", code, body)
	}
	o, err := e.tree("alice").Object(ctxT(t), "/files/p.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := o.Meta["k000"]; ok {
		t.Error("a refused PROPPATCH changed the metadata")
	}
	if code, body := patch("<D:set><D:prop><m:small>v</m:small></D:prop></D:set>"); code != http.StatusMultiStatus || !strings.Contains(body, "200 OK") {
		t.Errorf("a small PROPPATCH: %d %.300s", code, body)
	}
}

// File content is served sandboxed (Content-Security-Policy: sandbox):
// an HTML file one user put in a view another reads in a browser ran its
// scripts on the origin whose Basic credentials the browser keeps, able
// to read, write and delete in the reader's views.
func TestContentIsSandboxed(t *testing.T) {
	e := newEnv(t)
	if code, _, _ := e.do(t, req{method: "PUT", path: "/files/x.html", body: "<script>alert(1)</script>"}); code != http.StatusCreated {
		t.Fatalf("PUT: %d", code)
	}
	for _, m := range []string{"GET", "HEAD"} {
		code, _, h := e.do(t, req{method: m, path: "/files/x.html"})
		if code != http.StatusOK || h.Get("Content-Security-Policy") != "sandbox" {
			t.Errorf("%s: %d, Content-Security-Policy %q", m, code, h.Get("Content-Security-Policy"))
		}
	}
}
