package ingest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
)

// Record is one NDJSON registration line.
type Record struct {
	Name        string            `json:"name,omitempty"`
	Meta        map[string]string `json:"meta,omitempty"`
	Location    fs.Location       `json:"location"`
	Size        *int64            `json:"size,omitempty"`
	ModTime     *time.Time        `json:"mtime,omitempty"`
	ContentType string            `json:"content_type,omitempty"`
	MD5         string            `json:"md5,omitempty"`
	SHA256      string            `json:"sha256,omitempty"`
	ETag        string            `json:"etag,omitempty"`
	Expires     *time.Time        `json:"expires,omitempty"`
}

// Object converts the record to a catalogue object (without id).
func (r *Record) Object() (*fs.Object, error) {
	if r.Location.Provider == "" || r.Location.Path == "" {
		return nil, errors.New(`"location" needs "provider" and "path"`)
	}
	o := &fs.Object{Name: r.Name, Meta: r.Meta, Source: r.Location, Size: -1, ContentType: r.ContentType, ETag: r.ETag}
	if r.Size != nil {
		if *r.Size < 0 {
			return nil, errors.New(`"size" is negative`)
		}
		o.Size = *r.Size
	}
	if r.ModTime != nil {
		o.ModTime = r.ModTime.UTC()
	}
	if r.Expires != nil {
		o.Expires = r.Expires.UTC()
	}
	var err error
	if o.MD5, err = decodeSum("md5", r.MD5, 16); err != nil {
		return nil, err
	}
	if o.SHA256, err = decodeSum("sha256", r.SHA256, 32); err != nil {
		return nil, err
	}
	return o, nil
}

func decodeSum(name, s string, n int) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != n {
		return nil, fmt.Errorf("%q must be %d hex digits", name, 2*n)
	}
	return b, nil
}

// Registrar is the part of the store Register needs.
type Registrar interface {
	// Check reports whether a record could be registered (known provider,
	// sane range, valid metadata) without writing anything.
	Check(o *fs.Object) error
	Register(ctx context.Context, objs []*fs.Object) ([]index.Outcome, error)
}

// Result counts what a registration did.
type Result struct {
	Lines     int `json:"lines"` // lines read, blank ones included
	Added     int `json:"added"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	Batches   int `json:"batches"` // batches applied
}

// LineError reports a malformed line; its batch was not applied.
type LineError struct {
	Line       int // 1-based
	BatchFirst int // first line of the batch that was not applied
	Err        error
}

func (e *LineError) Error() string {
	return fmt.Sprintf("line %d: %v (batch from line %d not applied)", e.Line, e.Err, e.BatchFirst)
}

func (e *LineError) Unwrap() error { return e.Err }

// MaxLine caps one NDJSON line, so a runaway input cannot exhaust memory.
const MaxLine = 1 << 20

// Register reads NDJSON records from r and registers them in batches of
// batchSize (≤ 0: 1000), with the semantics in the package doc.
func Register(ctx context.Context, st Registrar, r io.Reader, batchSize int, progress func(Result)) (Result, error) {
	if batchSize <= 0 {
		batchSize = 1000
	}
	var res Result
	in := &readErr{r: r}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), MaxLine)
	batch := make([]*fs.Object, 0, batchSize)
	first := 1
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		out, err := register(ctx, st, batch)
		if err != nil {
			return fmt.Errorf("batch from line %d not applied: %w", first, err)
		}
		for _, o := range out {
			switch o {
			case index.Added:
				res.Added++
			case index.Updated:
				res.Updated++
			case index.Unchanged:
				res.Unchanged++
			}
		}
		res.Batches++
		batch = batch[:0]
		first = res.Lines + 1
		if progress != nil {
			progress(res)
		}
		return nil
	}
	for sc.Scan() {
		res.Lines++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			if len(batch) == 0 {
				first = res.Lines + 1
			}
			continue
		}
		var rec Record
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			if in.err != nil {
				// The scanner hands a line cut by a failed read over
				// as the last one: the input was cut, not malformed.
				return res, fmt.Errorf("read records: %w (the input ends inside line %d; batch from line %d not applied)", in.err, res.Lines, first)
			}
			return res, &LineError{Line: res.Lines, BatchFirst: first, Err: fmt.Errorf("malformed JSON: %w", err)}
		}
		if dec.More() {
			return res, &LineError{Line: res.Lines, BatchFirst: first, Err: errors.New("more than one JSON value on the line")}
		}
		o, err := rec.Object()
		if err == nil {
			err = st.Check(o)
		}
		if err != nil {
			return res, &LineError{Line: res.Lines, BatchFirst: first, Err: err}
		}
		batch = append(batch, o)
		if len(batch) == batchSize {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return res, &LineError{Line: res.Lines + 1, BatchFirst: first, Err: fmt.Errorf("line longer than %d bytes", MaxLine)}
		}
		return res, fmt.Errorf("read records: %w", err)
	}
	return res, flush()
}

// register registers a batch after fingerprinting each record as given,
// before the store fills in defaults (an expiry from retention changes
// with the time of registration): a re-registration of the same record
// is then recognised as such (index.Fingerprint).
func register(ctx context.Context, st Registrar, batch []*fs.Object) ([]index.Outcome, error) {
	for _, o := range batch {
		o.Fingerprint = index.Fingerprint(o)
	}
	return st.Register(ctx, batch)
}

// readErr remembers its reader's first error other than EOF (a client
// gone mid-upload, a failed disk read).
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}
