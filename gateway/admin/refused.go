package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/datagate/datagate/fs"
)

// writeOps names the admin API's writes in the audit log, by route.
var writeOps = map[string]string{
	"POST /api/v1/objects":         "register",
	"PUT /api/v1/objects":          "put",
	"PATCH /api/v1/objects/{id}":   "update",
	"DELETE /api/v1/objects/{id}":  "delete",
	"POST /api/v1/crawl":           "crawl",
	"POST /api/v1/jobs/{name}/run": "job run",
	"POST /api/v1/reload":          "reload",
}

// auditedKey marks, on a write's context, whether its handler wrote
// its audit record.
type auditedKey struct{}

// refusals records what a write's handler answered, so that a write
// refused before its handler audited it (a role too weak, a malformed
// body, an unknown parameter, a bad id, a reserved key) still has its
// record, as the README promises ("refused writes included").
type refusals struct {
	http.ResponseWriter
	code int
	body strings.Builder // the start of an error answer
}

func (f *refusals) WriteHeader(code int) {
	if f.code == 0 {
		f.code = code
	}
	f.ResponseWriter.WriteHeader(code)
}

func (f *refusals) Write(p []byte) (int, error) {
	if f.code == 0 {
		f.code = http.StatusOK
	}
	if f.code >= 400 && f.body.Len() < 4<<10 {
		f.body.Write(p)
	}
	return f.ResponseWriter.Write(p)
}

// Flush keeps a crawl's progress lines flowing.
func (f *refusals) Flush() {
	if fl, ok := f.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
}

func (f *refusals) Unwrap() http.ResponseWriter { return f.ResponseWriter }

// err is the error the answer carried, with its kind.
func (f *refusals) err() error {
	var eb errorBody
	if json.Unmarshal([]byte(f.body.String()), &eb) != nil || eb.Error == "" {
		eb.Error = strings.ToLower(http.StatusText(f.code))
	}
	return &fs.Error{Kind: kindOfName(eb.Kind), Err: errors.New(eb.Error)}
}
