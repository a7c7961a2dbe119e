// Package httpserve holds what the HTTP front-ends (admin, WebDAV) share
// when they serve content that may still have to be fetched.
package httpserve

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
)

// ReaderAtContext reads with a context (store.Reader has it).
type ReaderAtContext interface {
	ReadAtContext(ctx context.Context, p []byte, off int64) (int, error)
}

// Prime reads the first byte a GET of r will send, before any header is
// written. Content not yet cached is fetched on the way, so a provider
// that is down or failing becomes an error status (with its cause)
// instead of a 200 whose body is cut short with no reason given. HEAD,
// empty content and unsatisfiable ranges are left to http.ServeContent.
func Prime(ctx context.Context, c ReaderAtContext, r *http.Request, size int64) error {
	if r.Method == http.MethodHead || size <= 0 {
		return nil
	}
	off, ok := firstByte(r.Header.Get("Range"), size)
	if !ok {
		return nil
	}
	var b [1]byte
	_, err := c.ReadAtContext(ctx, b[:], off)
	if err == io.EOF {
		return nil
	}
	return err
}

// firstByte is the offset of the first byte a response to a Range header
// (or none) starts with; false when ServeContent will not send content.
func firstByte(h string, size int64) (int64, bool) {
	if h == "" {
		return 0, true
	}
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return 0, true // ignored by ServeContent: the whole content
	}
	first, _, _ := strings.Cut(spec, ",")
	start, end, ok := strings.Cut(strings.TrimSpace(first), "-")
	if !ok {
		return 0, false
	}
	if start == "" { // suffix: the last end bytes
		n, err := strconv.ParseInt(end, 10, 64)
		if err != nil || n <= 0 {
			return 0, false
		}
		return max(size-n, 0), true
	}
	n, err := strconv.ParseInt(start, 10, 64)
	if err != nil || n < 0 || n >= size {
		return 0, false
	}
	return n, true
}

// LogBreak wraps content served by http.ServeContent so that an error met
// after the status was sent (the body is then cut short) is logged with
// its cause instead of vanishing.
type LogBreak struct {
	io.ReadSeeker
	Log  *slog.Logger
	What string // e.g. the path or id
	err  error
}

func (l *LogBreak) Read(p []byte) (int, error) {
	n, err := l.ReadSeeker.Read(p)
	if err != nil && err != io.EOF && l.err == nil {
		l.err = err
		l.Log.Warn("content cut short", "object", l.What, "err", err)
	}
	return n, err
}
