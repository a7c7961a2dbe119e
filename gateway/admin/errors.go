package admin

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/ingest"
)

// status maps an error kind to its HTTP status. It is the one place the
// admin API does so.
func status(k fs.Kind) int {
	switch k {
	case fs.NotExist:
		return http.StatusNotFound
	case fs.Exist:
		return http.StatusConflict
	case fs.Permission:
		return http.StatusForbidden
	case fs.NotEmpty:
		return http.StatusConflict
	case fs.IsDir, fs.NotDir, fs.Invalid:
		return http.StatusBadRequest
	case fs.Unavailable:
		return http.StatusBadGateway
	case fs.NoSpace:
		return http.StatusInsufficientStorage
	case fs.Unsupported:
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

// kindOfStatus is the client's inverse of status, so CLI errors keep their
// kind across the socket.
func kindOfName(name string) fs.Kind {
	for _, k := range fs.AllKinds {
		if k.String() == name {
			return k
		}
	}
	return fs.Other
}

type errorBody struct {
	Error string `json:"error"`
	Kind  string `json:"kind"`
	// An NDJSON registration's error: the line at fault, the first line
	// of its batch (not applied), the line's problem alone, and what the
	// batches before it did (they stay applied).
	Line       int            `json:"line,omitempty"`
	BatchFirst int            `json:"batch_first,omitempty"`
	Reason     string         `json:"reason,omitempty"`
	Applied    *ingest.Result `json:"applied,omitempty"`
}

// writeError answers with err's status and the JSON error body. A body
// over its cap is 413 whatever wraps it; an NDJSON line error names the
// line.
func writeError(w http.ResponseWriter, err error) {
	writeStatus(w, errorStatus(err), err)
}

func errorStatus(err error) int {
	var le *ingest.LineError
	switch {
	case isTooLarge(err):
		return http.StatusRequestEntityTooLarge
	case errors.As(err, &le):
		return http.StatusBadRequest
	}
	return status(fs.KindOf(err))
}

// writeStatus answers with code and the JSON error body of err.
func writeStatus(w http.ResponseWriter, code int, err error) {
	writeBody(w, code, errorBodyOf(code, err))
}

func errorBodyOf(code int, err error) errorBody {
	k := fs.KindOf(err)
	body := errorBody{Error: err.Error(), Kind: k.String()}
	var le *ingest.LineError
	if errors.As(err, &le) {
		body.Line, body.BatchFirst = le.Line, le.BatchFirst
		body.Reason = le.Err.Error()
		body.Kind = fs.Invalid.String()
	}
	if code == http.StatusRequestEntityTooLarge {
		body.Kind = fs.Invalid.String()
	}
	return body
}

// writeRegisterError answers a registration that failed with err after
// applying res: the error body carries the counts, so that a client can
// say what stays registered.
func writeRegisterError(w http.ResponseWriter, err error, res ingest.Result) {
	code := errorStatus(err)
	body := errorBodyOf(code, err)
	body.Applied = &res
	writeBody(w, code, body)
}

func writeBody(w http.ResponseWriter, code int, body errorBody) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(body)
}
