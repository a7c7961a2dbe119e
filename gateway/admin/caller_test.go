package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/fs/ingest"
	"github.com/datagate/datagate/views/audittest"
)

// A caller of the API cannot give objects keys of the views' dg.
// namespace, whichever route they use: an object given dg.view and dg.dir
// left its views and showed as an empty directory. The CLI and the
// front-ends refuse them the same way.
func TestCallerCannotSetReservedMeta(t *testing.T) {
	h := newAPI(t, nil)
	recDG := `{"name":"g","size":3,"meta":{"k":"v","dg.dir":"x"},"location":{"provider":"disk","path":"g.bin"}}`
	for _, tc := range []struct {
		name, method, path, in string
		says                   string
		line                   int
	}{
		{"put", "PUT", "/api/v1/objects?name=p&meta=k=v&meta=dg.view=byk", "abc", "dg.view", 0},
		{"register", "POST", "/api/v1/objects", rec("ok", "v") + "\n" + recDG + "\n", "dg.dir", 2},
		{"crawl", "POST", "/api/v1/crawl", `{"provider":"disk","meta":{"dg.view":"byk"}}`, "dg.view", 0},
		{"patch", "PATCH", "/api/v1/objects/01KBN6B2J6YF0R2V1E4RMJ0M5Q", `{"set":{"dg.dir":"x"}}`, "dg.dir", 0},
		// "name" is the object's name to views, filters and searches.
		{"put name", "PUT", "/api/v1/objects?name=p&meta=name=q", "abc", `"name"`, 0},
		{"register name", "POST", "/api/v1/objects", `{"name":"g","size":3,"meta":{"name":"x"},"location":{"provider":"disk","path":"g.bin"}}` + "\n", `"name"`, 1},
		{"crawl name", "POST", "/api/v1/crawl", `{"provider":"disk","meta":{"name":"x"}}`, `"name"`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, b := h.call(t, asBoss(), tc.method, tc.path, body(tc.in), nil)
			var eb errorBody
			if code != http.StatusBadRequest || json.Unmarshal(b, &eb) != nil || eb.Kind != "invalid" ||
				!strings.Contains(eb.Error, tc.says) || !strings.Contains(eb.Error, "name") && !strings.Contains(eb.Error, "reserved") || eb.Line != tc.line {
				t.Fatalf("%d %s: want 400, kind invalid, naming %s as reserved, line %d", code, b, tc.says, tc.line)
			}
		})
	}
	var page Page
	h.call(t, asReader(), "GET", "/api/v1/objects", nil, &page)
	if len(page.Objects) != 0 {
		t.Errorf("objects after refused requests: %d (the register's batch holds its bad line)", len(page.Objects))
	}
}

// A registration that fails at a line says what the batches before it
// did and where its batch began, in the answer and through the client,
// as a local registration does.
func TestRegisterErrorCarriesCounts(t *testing.T) {
	h := newAPI(t, func(o *Options) { o.Auth = nil })
	in := rec("a", "v") + "\n" + rec("b", "v") + "\n" + rec("c", "v") + "\n" + `{"name": ` + "\n"

	code, b := h.call(t, anon(), "POST", "/api/v1/objects?batch=2", body(in), nil)
	var eb errorBody
	if code != http.StatusBadRequest || json.Unmarshal(b, &eb) != nil || eb.Line != 4 || eb.BatchFirst != 3 ||
		eb.Applied == nil || eb.Applied.Added != 2 || eb.Applied.Batches != 1 || !strings.Contains(eb.Reason, "malformed JSON") {
		t.Fatalf("%d %s: want 400, line 4, batch_first 3, applied 2 added in 1 batch, the line's reason", code, b)
	}

	// The same through the client, over a Unix socket as the CLI uses it.
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h.srv.Config.Handler}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	in = rec("d", "v") + "\n" + rec("a", "v") + "\n" + rec("e", "v") + "\n" + `{"name": ` + "\n"
	res, err := c.Register(ctx, strings.NewReader(in), 2)
	var le *ingest.LineError
	if !errors.As(err, &le) || le.Line != 4 || le.BatchFirst != 3 {
		t.Fatalf("client error %#v: want a LineError at line 4 of the batch from line 3", err)
	}
	if want := "line 4: malformed JSON"; !strings.HasPrefix(err.Error(), want) || strings.Count(err.Error(), "line 4") != 1 {
		t.Errorf("client error %q: want it to start %q and name the line once", err, want)
	}
	if res.Added != 1 || res.Unchanged != 1 || res.Batches != 1 || res.Lines != 4 {
		t.Errorf("client counts %+v: want 1 added, 1 unchanged in 1 batch, 4 lines", res)
	}
}

// A 201 says where its object is, and content comes with its name:
// curl -OJ saved every download as "content".
func TestPutLocationAndContentName(t *testing.T) {
	h := newAPI(t, nil)
	name := `50% "été" \ ok.txt`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "PUT", h.u("/api/v1/objects?name="+url.QueryEscape(name)+"&meta=k=v"), strings.NewReader("abc"))
	asBoss()(req)
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(loc, "/api/v1/objects/") {
		t.Fatalf("PUT: %s, Location %q: want 201 and the object's URL", resp.Status, loc)
	}
	var d Detail
	if code, b := h.call(t, asReader(), "GET", loc, nil, &d); code != 200 || d.Name != name {
		t.Fatalf("GET Location: %d %s", code, b)
	}
	req, _ = http.NewRequestWithContext(ctx, "GET", h.u(loc+"/content"), nil)
	asReader()(req)
	resp, err = h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cd := resp.Header.Get("Content-Disposition")
	_, params, err := mime.ParseMediaType(cd)
	if err != nil || params["filename"] != name {
		t.Errorf("Content-Disposition %q: %v %q: want the name %q", cd, err, params["filename"], name)
	}
	if !strings.Contains(cd, `filename="50% _été_ _ ok.txt"`) {
		t.Errorf("Content-Disposition %q: want the name in filename too, for curl -OJ", cd)
	}
}

// The refusals http.ServeContent writes itself came in plain text (416)
// or with no body (412), unlike every other error of the API.
func TestContentRefusalsAreJSON(t *testing.T) {
	h := newAPI(t, nil)
	var o Object
	if code, b := h.call(t, asBoss(), "PUT", "/api/v1/objects?name=c.txt&meta=k=v", body("hello world"), &o); code != 201 {
		t.Fatalf("PUT: %d %s", code, b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	get := func(hdr, val string) (*http.Response, []byte) {
		req, _ := http.NewRequestWithContext(ctx, "GET", h.u("/api/v1/objects/"+o.ID+"/content"), nil)
		asReader()(req)
		req.Header.Set(hdr, val)
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	for _, tc := range []struct {
		hdr, val string
		code     int
		says     string
	}{
		{"Range", "bytes=50-60", http.StatusRequestedRangeNotSatisfiable, "range"},
		{"If-Match", `"nope"`, http.StatusPreconditionFailed, "If-Match"},
	} {
		resp, b := get(tc.hdr, tc.val)
		var eb errorBody
		if resp.StatusCode != tc.code || resp.Header.Get("Content-Type") != "application/json" ||
			json.Unmarshal(b, &eb) != nil || eb.Kind == "" || !strings.Contains(eb.Error, tc.says) {
			t.Errorf("%s: %s: %s %q %s: want %d and a JSON error saying %q", tc.hdr, tc.val, resp.Status, resp.Header.Get("Content-Type"), b, tc.code, tc.says)
		}
	}
	// What ServeContent answers well is untouched.
	if resp, b := get("Range", "bytes=2-4"); resp.StatusCode != http.StatusPartialContent || string(b) != "llo" {
		t.Errorf("range 2-4: %s %q", resp.Status, b)
	}
	if resp, b := get("If-None-Match", `"`+o.ETag+`"`); resp.StatusCode != http.StatusNotModified || len(b) != 0 {
		t.Errorf("If-None-Match: %s %q", resp.Status, b)
	}
}

// q=name=N finds objects by name, as the views' filters read "name";
// it found nothing (name is no metadata key). Pages hold matches only.
func TestSearchByName(t *testing.T) {
	h := newAPI(t, nil)
	var lines []string
	for i := range 7 {
		lines = append(lines, rec(fmt.Sprintf("n%d", i), "v"), rec(fmt.Sprintf("twin-%d", i), "w"))
	}
	lines = append(lines, strings.Replace(rec("twin-0", "v"), `.bin"`, `-again.bin"`, 1))
	h.register(t, lines...)
	for _, tc := range []struct {
		q    string
		want int
	}{
		{"q=name=n3", 1},
		{"q=name=twin-0", 2},
		{"q=name=twin-0&q=k=w", 1},
		{"q=name=nope", 0},
		{"q=name=n3&q=k=w", 0},
	} {
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			var page Page
			if code, b := h.call(t, asReader(), "GET", "/api/v1/objects?limit=1&"+tc.q+after, nil, &page); code != 200 {
				t.Fatalf("%s: %d %s", tc.q, code, b)
			}
			for _, o := range page.Objects {
				got = append(got, o.Name)
			}
			if page.Next == "" || pages > 20 {
				break
			}
			after = "&after=" + page.Next
		}
		if len(got) != tc.want {
			t.Errorf("%s: %v: want %d objects", tc.q, got, tc.want)
		}
	}
}

// curl -d @records.ndjson sends a form, without the file's newlines: the
// answer said "more than one JSON value on the line" and no more.
func TestRegisterAsFormSaysWhy(t *testing.T) {
	h := newAPI(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", h.u("/api/v1/objects"), strings.NewReader(rec("a", "v")+rec("b", "v")))
	asBoss()(req)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded") // as curl -d sets it
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb errorBody
	if json.NewDecoder(resp.Body).Decode(&eb) != nil || resp.StatusCode != 400 || eb.Line != 1 || !strings.Contains(eb.Error, "--data-binary") {
		t.Errorf("%s %+v: want 400 at line 1 naming --data-binary", resp.Status, eb)
	}
}

// A PUT's Content-Type types the content unless content_type says
// otherwise; the types clients put on bodies of their own accord do not.
func TestPutContentTypeHeader(t *testing.T) {
	h := newAPI(t, nil)
	for i, tc := range []struct{ query, header, want string }{
		{"", "text/csv; charset=utf-8", "text/csv; charset=utf-8"},
		{"&content_type=text/plain", "text/csv", "text/plain"},
		{"", "application/x-www-form-urlencoded", ""},
		{"", "application/octet-stream", ""},
		{"", "", ""},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "PUT", h.u(fmt.Sprintf("/api/v1/objects?name=t%d&meta=k=v%s", i, tc.query)), strings.NewReader("a,b"))
		asBoss()(req)
		if tc.header != "" {
			req.Header.Set("Content-Type", tc.header)
		}
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var o Object
		err = json.NewDecoder(resp.Body).Decode(&o)
		resp.Body.Close()
		cancel()
		if err != nil || resp.StatusCode != 201 || o.ContentType != tc.want {
			t.Errorf("PUT%s with Content-Type %q: %s, type %q: want %q", tc.query, tc.header, resp.Status, o.ContentType, tc.want)
		}
	}
}

// Registered content (no ETag, no mtime) had no validator: no ETag and no
// Last-Modified, so a client could neither revalidate nor resume safely.
func TestRegisteredContentHasAnETag(t *testing.T) {
	h := newAPI(t, nil)
	h.register(t, rec("r", "v"))
	lp, _ := h.st.Provider("disk")
	if err := lp.(backends.Writer).Put(context.Background(), "r.bin", strings.NewReader("abc"), 3); err != nil {
		t.Fatal(err)
	}
	var page Page
	h.call(t, asReader(), "GET", "/api/v1/objects?q=k=v", nil, &page)
	if len(page.Objects) != 1 {
		t.Fatal(page)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	get := func(hdr map[string]string) (*http.Response, string) {
		req, _ := http.NewRequestWithContext(ctx, "GET", h.u("/api/v1/objects/"+page.Objects[0].ID+"/content"), nil)
		asReader()(req)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, b := get(nil)
	tag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || b != "abc" || tag == "" {
		t.Fatalf("GET: %s %q, ETag %q: want the content with an ETag", resp.Status, b, tag)
	}
	if resp, _ := get(map[string]string{"If-None-Match": tag}); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match its ETag: %s, want 304", resp.Status)
	}
	if resp, b := get(map[string]string{"Range": "bytes=1-", "If-Range": tag}); resp.StatusCode != http.StatusPartialContent || b != "bc" {
		t.Errorf("resume with If-Range: %s %q, want 206 \"bc\"", resp.Status, b)
	}
	if resp, b := get(map[string]string{"Range": "bytes=1-", "If-Range": `"other-1"`}); resp.StatusCode != 200 || b != "abc" {
		t.Errorf("resume with another If-Range: %s %q, want 200 and the whole content", resp.Status, b)
	}
}

// A key given twice in q or meta was taken with its last value alone:
// q=k=a&q=k=b (read as "either") searched k=b.
func TestKeyGivenTwice(t *testing.T) {
	h := newAPI(t, nil)
	h.register(t, rec("a", "a"), rec("b", "b"))
	for _, tc := range []struct{ method, path string }{
		{"GET", "/api/v1/objects?q=k=a&q=k=b"},
		{"PUT", "/api/v1/objects?name=p&meta=k=a&meta=k=b"},
	} {
		code, b := h.call(t, asBoss(), tc.method, tc.path, body("x"), nil)
		var eb errorBody
		if code != 400 || json.Unmarshal(b, &eb) != nil || !strings.Contains(eb.Error, "twice") {
			t.Errorf("%s %s: %d %s: want 400 saying the key is given twice", tc.method, tc.path, code, b)
		}
	}
	var page Page
	if code, b := h.call(t, asReader(), "GET", "/api/v1/objects?q=k=a&q=k=a", nil, &page); code != 200 || len(page.Objects) != 1 {
		t.Errorf("the same condition twice: %d %s", code, b)
	}
}

// Writes refused before their handler wrote an audit record (a role too
// weak, a malformed body, a reserved key, a bad id) left none, where the
// README promises "refused writes included"; records name the kind.
func TestRefusedWritesAudited(t *testing.T) {
	logs := &audittest.Log{}
	h := newAPI(t, func(o *Options) { o.Audit = logs.JSON() })
	for _, tc := range []struct {
		c                creds
		method, path, in string
		op, kind, user   string
	}{
		{asReader(), "DELETE", "/api/v1/objects/01KBN6B2J6YF0R2V1E4RMJ0M5Q", "", "delete", "permission denied", "reader"},
		{asBoss(), "PATCH", "/api/v1/objects/01KBN6B2J6YF0R2V1E4RMJ0M5Q", `{"set":`, "update", "invalid", "boss"},
		{asBoss(), "PUT", "/api/v1/objects?name=x&meta=dg.view=v", "abc", "put", "invalid", "boss"},
		{asBoss(), "DELETE", "/api/v1/objects/nope", "", "delete", "invalid", "boss"},
		{asBoss(), "POST", "/api/v1/objects?bacth=3", "", "register", "invalid", "boss"},
		{asBoss(), "POST", "/api/v1/objects?batch=abc", rec("b", "v"), "register", "invalid", "boss"}, // it was the default batch
		{asBoss(), "POST", "/api/v1/objects?batch=0", rec("b", "v"), "register", "invalid", "boss"},
	} {
		before := strings.Count(logs.String(), "\n")
		code, _ := h.call(t, tc.c, tc.method, tc.path, body(tc.in), nil)
		lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
		if code < 400 || len(lines) != before+1 {
			t.Errorf("%s %s: %d, %d new audit records: want a refusal and one record", tc.method, tc.path, code, len(lines)-before)
			continue
		}
		var rec map[string]any
		json.Unmarshal([]byte(lines[len(lines)-1]), &rec)
		if rec["msg"] != "audit" || rec["op"] != tc.op || rec["result"] != "error" || rec["kind"] != tc.kind || rec["user"] != tc.user || rec["error"] == "" {
			t.Errorf("%s %s: audit record %v: want op %q, result error, kind %q, user %q", tc.method, tc.path, rec, tc.op, tc.kind, tc.user)
		}
	}
	// Reads are not audited, refused or not.
	before := logs.String()
	h.call(t, asReader(), "GET", "/api/v1/objects/nope", nil, nil)
	if logs.String() != before {
		t.Errorf("a refused read was audited: %s", strings.TrimPrefix(logs.String(), before))
	}
}
