package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/datagate/datagate/fs"
)

// decodeBody decodes a JSON request body into v, strictly: one JSON value,
// no field v does not have, at most MaxBody bytes. On failure it writes
// the error (400 naming the problem, 413 for a body too large) and
// returns false.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, op string, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.opts.MaxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// Anything after the value is a client mistake worth naming.
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			err = errors.New("unexpected data after the JSON value")
			if terr != nil && isTooLarge(terr) {
				err = terr
			}
		}
	}
	if err == nil {
		return true
	}
	switch {
	case isTooLarge(err):
		writeError(w, err)
	case errors.Is(err, io.EOF):
		writeError(w, fs.E(fs.Invalid, op, "", errors.New("empty request body: want a JSON object")))
	default:
		writeError(w, fs.E(fs.Invalid, op, "", fmt.Errorf("malformed request: %s", jsonProblem(err))))
	}
	return false
}

// jsonProblem phrases encoding/json's errors for a user: the unknown
// field by name, the offset of a syntax error.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("%s (at byte %d)", se.Error(), se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q: want %s, not %s", te.Field, te.Type, te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return err.Error()
}

func isTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// onlyParams refuses query parameters the route does not know, so that a
// misspelt "limt=10" is an error rather than silently ignored.
func (s *Server) onlyParams(w http.ResponseWriter, r *http.Request, known ...string) bool {
	var bad []string
	for k := range r.URL.Query() {
		ok := false
		for _, n := range known {
			ok = ok || k == n
		}
		if !ok {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return true
	}
	sort.Strings(bad)
	want := "none"
	if len(known) > 0 {
		want = strings.Join(known, ", ")
	}
	writeError(w, fs.E(fs.Invalid, r.URL.Path, "", fmt.Errorf("unknown query parameter %s (known: %s)", strings.Join(bad, ", "), want)))
	return false
}
