package integration

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// curlAdmin runs curl against a running server's admin API with its token,
// in dir; it returns curl's stdout and exit status.
func curlAdmin(t *testing.T, s *server, dir string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "curl", append([]string{"-sS", "-H", "Authorization: Bearer " + s.token}, args...)...)
	cmd.Dir = dir
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if errb.Len() > 0 {
		t.Logf("curl %v: %s", args, errb.String())
	}
	return string(out), code
}

// What an operator scripting the admin API with curl met: curl -OJ saved
// every download as "content", a 201 had no Location, a refused range came
// as text, curl -d @records.ndjson (a form, newlines dropped) was answered
// "more than one JSON value" alone, and dg. keys were accepted.
func TestAdminWithCurl(t *testing.T) {
	needTool(t, "curl")
	dataDir, dl := t.TempDir(), t.TempDir()
	s := startServer(t, dataDir)
	name := "résumé 50% v2.txt"
	src := filepath.Join(dl, "src.txt")
	os.WriteFile(src, []byte("hello world"), 0o644)

	q := url.Values{"name": {name}, "meta": {"type=doc"}}
	out, code := curlAdmin(t, s, dl, "-D", "-", "-T", src, s.admin+"/api/v1/objects?"+q.Encode())
	var loc string
	for _, l := range strings.Split(out, "\r\n") {
		if v, ok := strings.CutPrefix(l, "Location: "); ok {
			loc = v
		}
	}
	if code != 0 || !strings.Contains(out, "HTTP/1.1 201 Created\r\n") || !strings.HasPrefix(loc, "/api/v1/objects/") {
		t.Fatalf("PUT: exit %d, Location %q, answer %q", code, loc, out)
	}
	if _, code := curlAdmin(t, s, dl, "-f", "-OJ", s.admin+loc+"/content"); code != 0 {
		t.Fatalf("curl -OJ: exit %d", code)
	}
	if b, err := os.ReadFile(filepath.Join(dl, name)); err != nil || string(b) != "hello world" {
		entries, _ := os.ReadDir(dl)
		t.Errorf("curl -OJ saved %v: want %q holding the content (%v)", entries, name, err)
	}

	out, _ = curlAdmin(t, s, dl, "-r", "100-200", s.admin+loc+"/content")
	var eb struct{ Error, Kind string }
	if json.Unmarshal([]byte(out), &eb) != nil || eb.Kind == "" {
		t.Errorf("range past the end: %q: want a JSON error", out)
	}

	recs := filepath.Join(dl, "records.ndjson")
	os.WriteFile(recs, []byte(`{"name":"a","size":1,"location":{"provider":"local","path":"a"}}`+"\n"+
		`{"name":"b","size":1,"location":{"provider":"local","path":"b"}}`+"\n"), 0o644)
	out, _ = curlAdmin(t, s, dl, "-d", "@"+recs, s.admin+"/api/v1/objects")
	if !strings.Contains(out, "--data-binary") {
		t.Errorf("curl -d @records.ndjson: %q: want the answer to name --data-binary", out)
	}

	out, _ = curlAdmin(t, s, dl, "-w", "%{http_code}", "-X", "PUT", "--data-binary", "x", s.admin+"/api/v1/objects?name=g&meta=dg.view=x")
	if !strings.HasSuffix(out, "400") || !strings.Contains(out, "dg.view") {
		t.Errorf("PUT with meta dg.view: %q: want 400 naming the key", out)
	}
}
