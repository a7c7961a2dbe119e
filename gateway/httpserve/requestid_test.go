package httpserve

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/datagate/datagate/views"
)

func TestBegin(t *testing.T) {
	var got views.Actor
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = Begin(w, r, "webdav", nil)
		got, _ = views.ActorFrom(r.Context())
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(id string) string {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL, nil)
		if id != "" {
			req.Header.Set("X-Request-Id", id)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("X-Request-Id") != got.RequestID {
			t.Fatalf("echoed %q, context has %q", resp.Header.Get("X-Request-Id"), got.RequestID)
		}
		if got.Frontend != "webdav" || got.Remote != "127.0.0.1" {
			t.Fatalf("actor %+v", got)
		}
		return got.RequestID
	}
	if id := get("proxy-id.42_a"); id != "proxy-id.42_a" {
		t.Fatalf("sane id not kept: %q", id)
	}
	for _, bad := range []string{"", "a b", strings.Repeat("x", 65), "x\ty"} {
		if id := get(bad); id == bad || !views.SaneRequestID(id) {
			t.Fatalf("id for %q: %q", bad, id)
		}
	}
	if a, b := get(""), get(""); a == b {
		t.Fatalf("two requests, one id %q", a)
	}
}

func TestBeginKeepsAnOuterID(t *testing.T) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/", nil)
	r = r.WithContext(views.WithActor(r.Context(), views.Actor{Frontend: "s3", RequestID: "outer"}))
	r = Begin(w, r, "webdav", func() string { return "inner" })
	if a, _ := views.ActorFrom(r.Context()); a.RequestID != "outer" || w.Header().Get("X-Request-Id") != "outer" {
		t.Fatalf("actor %+v, header %q", a, w.Header().Get("X-Request-Id"))
	}
}
