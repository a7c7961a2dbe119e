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
	Line  int    `json:"line,omitempty"`
}

// writeError answers with err's status and the JSON error body. A body
// over its cap is 413 whatever wraps it; an NDJSON line error names the
// line.
func writeError(w http.ResponseWriter, err error) {
	code := status(fs.KindOf(err))
	var le *ingest.LineError
	switch {
	case isTooLarge(err):
		code = http.StatusRequestEntityTooLarge
	case errors.As(err, &le):
		code = http.StatusBadRequest
	}
	writeStatus(w, code, err)
}

// writeStatus answers with code and the JSON error body of err.
func writeStatus(w http.ResponseWriter, code int, err error) {
	k := fs.KindOf(err)
	body := errorBody{Error: err.Error(), Kind: k.String()}
	var le *ingest.LineError
	if errors.As(err, &le) {
		body.Line = le.Line
		body.Kind = fs.Invalid.String()
	}
	if code == http.StatusRequestEntityTooLarge {
		body.Kind = fs.Invalid.String()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(body)
}
