package admin

import (
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/gateway/metrics"
)

// jsonRefusals stands between http.ServeContent and the client: the
// refusals ServeContent writes itself (416 for a range past the end, 412
// for a failed If-Match or If-Unmodified-Since) come in plain text or
// with no body, where every other error of the API is the JSON error
// body. It holds such a refusal back and writes it as JSON in end.
type jsonRefusals struct {
	http.ResponseWriter
	code int             // the refusal held back; 0: none
	msg  strings.Builder // its text
}

func (j *jsonRefusals) WriteHeader(code int) {
	if code < 400 {
		j.ResponseWriter.WriteHeader(code)
		return
	}
	j.code = code
}

func (j *jsonRefusals) Write(p []byte) (int, error) {
	if j.code == 0 {
		return j.ResponseWriter.Write(p)
	}
	if j.msg.Len() < 1<<10 {
		j.msg.Write(p)
	}
	return len(p), nil
}

// ReadFrom keeps the response writer's own (sendfile from a stored file).
func (j *jsonRefusals) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := j.ResponseWriter.(io.ReaderFrom); ok && j.code == 0 {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{j}, r)
}

// Unwrap lets http.ResponseController reach the connection.
func (j *jsonRefusals) Unwrap() http.ResponseWriter { return j.ResponseWriter }

// end writes the refusal held back, if any.
func (j *jsonRefusals) end() {
	if j.code == 0 {
		return
	}
	msg := strings.TrimSpace(j.msg.String())
	if msg == "" {
		msg = strings.ToLower(http.StatusText(j.code))
		if j.code == http.StatusPreconditionFailed {
			msg += ": If-Match or If-Unmodified-Since does not hold"
		}
	}
	k, _ := metrics.KindOfStatus(j.code)
	h := j.Header()
	h.Del("Content-Disposition")
	h.Del("Content-Length")
	writeStatus(j.ResponseWriter, j.code, fs.E(k, "content", "", errors.New(msg)))
}
