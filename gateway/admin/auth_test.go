package admin

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/datagate/datagate/fs"
)

// Wrong credentials from one address, MaxAuthFailures times in a row, make
// it wait (429, no bcrypt) — even with the right password; requests
// without credentials are no failures.
func TestFailedLoginsArePenalized(t *testing.T) {
	h := newAPI(t, nil)
	h.auth.SetPenalty(3, 400*time.Millisecond)
	// The unknown user first: its dummy bcrypt is slow (made on first
	// use, at the default cost), and failures count together only while
	// less than the penalty apart.
	for i, c := range []creds{basic("ghost", "guess"), basic("reader", "guess"), bearer("not-a-token")} {
		if code, b := h.call(t, c, "GET", "/api/v1/whoami", nil, nil); code != 401 {
			t.Fatalf("failure %d: %d %s", i, code, b)
		}
	}
	req, _ := http.NewRequest("GET", h.u("/api/v1/whoami"), nil)
	asReader()(req)
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var eb errorBody
	json.NewDecoder(resp.Body).Decode(&eb)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" || eb.Kind != fs.Permission.String() {
		t.Fatalf("right password during the penalty: %d, Retry-After %q, body %+v", resp.StatusCode, resp.Header.Get("Retry-After"), eb)
	}
	time.Sleep(450 * time.Millisecond)
	if code, _ := h.call(t, asReader(), "GET", "/api/v1/whoami", nil, nil); code != 200 {
		t.Fatalf("after the penalty: %d", code)
	}
	for range 5 {
		if code, _ := h.call(t, anon(), "GET", "/api/v1/whoami", nil, nil); code != 401 {
			t.Fatalf("no credentials: %d", code)
		}
	}
	// A success starts the count afresh: two more failures are not three.
	for range 2 {
		h.call(t, basic("reader", "guess"), "GET", "/api/v1/whoami", nil, nil)
	}
	if code, _ := h.call(t, asReader(), "GET", "/api/v1/whoami", nil, nil); code != 200 {
		t.Fatalf("after two failures: %d", code)
	}
}
