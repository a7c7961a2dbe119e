package store

import (
	"crypto/sha256"
	"io"
	"strings"
	"testing"

	"github.com/datagate/datagate/fs"
)

// Content that fails its registered checksum is never handed out whole:
// the read that reaches its end returns the error without its bytes, so
// a front-end copying it to a client (io.Copy into an HTTP answer with a
// Content-Length) never completes the answer. It used to return the last
// bytes with the error, and io.Copy sent them before seeing the error.
func TestWrongContentNeverWhole(t *testing.T) {
	e := newEnv(t)
	data := pattern(300<<10 + 17)
	e.write(t, "x.bin", data)
	bad := sha256.Sum256([]byte("other"))
	for _, step := range []int{4 << 10, 32 << 10, 1 << 20} {
		wrong := &fs.Object{Size: int64(len(data)), SHA256: bad[:], Source: fs.Location{Provider: "disk", Path: "x.bin", Length: int64(len(data))}}
		register(t, e.st, wrong)
		r, err := e.st.Open(ctxT(t), wrong.ID)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, make([]byte, step))
		r.Close()
		if err == nil || !strings.Contains(err.Error(), "checksum") {
			t.Fatalf("step %d: read to the end: %v", step, err)
		}
		if n >= int64(len(data)) {
			t.Fatalf("step %d: %d bytes of %d handed out with the error", step, n, len(data))
		}
	}
}
