package admin

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Wrong passwords sent at once from one address are bounded like those
// sent in turn: at most MaxAuthFailures bcrypt checks in flight, the
// rest answered 429 at once. The penalty counted a failure only once its
// check was over, so every guess sent at once was checked and answered
// (seen against serve: 200 guesses at once, 12 s of CPU, all 401).
// Logins with the right password at once all get in.
func TestConcurrentLoginsAreBounded(t *testing.T) {
	h := newAPI(t, nil)
	run := func(n int, c func(i int) creds) map[int]int {
		var mu sync.Mutex
		got := map[int]int{}
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				r, _ := http.NewRequestWithContext(ctx, "GET", h.u("/api/v1/whoami"), nil)
				c(i)(r)
				code := -1
				if resp, err := h.srv.Client().Do(r); err == nil {
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
	if got := run(16, func(int) creds { return asReader() }); got[http.StatusOK] != 16 {
		t.Errorf("16 logins with the right password at once: %v, want 16 × 200", got)
	}
	// Unknown users: each costs a bcrypt at the default cost.
	got := run(40, func(i int) creds { return basic(fmt.Sprint("ghost", i), "guess") })
	if got[http.StatusUnauthorized] > 2*MaxAuthFailures || got[http.StatusUnauthorized]+got[http.StatusTooManyRequests] != 40 {
		t.Errorf("40 guesses at once: %v, want at most %d checked (401), the rest 429", got, 2*MaxAuthFailures)
	}
}

// Content is served sandboxed (Content-Security-Policy: sandbox): an
// HTML file a front-end user put, opened by an operator in a browser,
// ran its scripts on the API's origin with the operator's kept Basic
// credentials and role.
func TestContentIsSandboxed(t *testing.T) {
	h := newAPI(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "PUT", h.u("/api/v1/objects?name=x.html&meta=k=v&content_type=text/html"), strings.NewReader("<script>alert(1)</script>"))
	asBoss()(req)
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %s", resp.Status)
	}
	req, _ = http.NewRequestWithContext(ctx, "GET", h.u(loc+"/content"), nil)
	asReader()(req)
	resp, err = h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") != "sandbox" {
		t.Errorf("content: %s, Content-Type %q, Content-Security-Policy %q", resp.Status, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Security-Policy"))
	}
}
