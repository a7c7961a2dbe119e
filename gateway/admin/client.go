package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
	"github.com/datagate/datagate/fs/ingest"
	"github.com/datagate/datagate/fs/store"
)

// Client talks to a running server over its Unix socket.
type Client struct {
	hc   *http.Client
	base string
}

// Dial connects to the server listening on the Unix socket at path. It
// fails fast when nothing listens there.
func Dial(ctx context.Context, path string) (*Client, error) {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	c.Close()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
		DisableCompression: true,
	}
	return &Client{hc: &http.Client{Transport: tr}, base: "http://datagate"}, nil
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body io.Reader, size int64) (*http.Response, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if size >= 0 && body != nil {
		req.ContentLength = size
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fs.E(fs.Unavailable, "server", "", err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		var eb errorBody
		if json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&eb) != nil || eb.Error == "" {
			return nil, fmt.Errorf("server: %s", resp.Status)
		}
		return nil, remoteError(eb)
	}
	return resp, nil
}

// remoteError rebuilds the server's error. A registration's line error
// becomes the LineError the server had (the line, its batch, the line's
// problem alone), so it reads as a local registration's does; a server
// that does not send the problem alone keeps its whole message.
func remoteError(eb errorBody) error {
	var err error = &fs.Error{Kind: kindOfName(eb.Kind), Err: errors.New(eb.Error)}
	if eb.Line > 0 {
		le := &ingest.LineError{Line: eb.Line, Err: err}
		if eb.Reason != "" {
			le.BatchFirst = eb.BatchFirst
			le.Err = &fs.Error{Kind: kindOfName(eb.Kind), Err: errors.New(eb.Reason)}
		}
		err = le
	}
	if eb.Applied != nil {
		err = &appliedError{err: err, applied: *eb.Applied}
	}
	return err
}

// appliedError is a registration's error with what was applied before it.
type appliedError struct {
	err     error
	applied ingest.Result
}

func (e *appliedError) Error() string { return e.err.Error() }
func (e *appliedError) Unwrap() error { return e.err }

func decodeObject(r io.Reader) (*fs.Object, error) {
	var j Object
	if err := json.NewDecoder(r).Decode(&j); err != nil {
		return nil, fmt.Errorf("server answer: %w", err)
	}
	return FromJSON(&j)
}

// Register sends NDJSON records. On an error the result counts what the
// batches before it did, which stay applied.
func (c *Client) Register(ctx context.Context, r io.Reader, batch int) (ingest.Result, error) {
	var res ingest.Result
	q := url.Values{}
	if batch > 0 {
		q.Set("batch", strconv.Itoa(batch))
	}
	resp, err := c.do(ctx, "POST", "/api/v1/objects", q, r, -1)
	if err != nil {
		var ae *appliedError
		if errors.As(err, &ae) {
			res = ae.applied
		}
		return res, err
	}
	defer resp.Body.Close()
	return res, json.NewDecoder(resp.Body).Decode(&res)
}

// Put pushes content.
func (c *Client) Put(ctx context.Context, req store.PutRequest, r io.Reader) (*fs.Object, error) {
	q := url.Values{"name": {req.Name}}
	for k, v := range req.Meta {
		q.Add("meta", k+"="+v)
	}
	if req.ContentType != "" {
		q.Set("content_type", req.ContentType)
	}
	if !req.ModTime.IsZero() {
		q.Set("mtime", req.ModTime.Format(time.RFC3339Nano))
	}
	resp, err := c.do(ctx, "PUT", "/api/v1/objects", q, r, req.Size)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return decodeObject(resp.Body)
}

// Get returns an object's record.
func (c *Client) Get(ctx context.Context, id fs.ID) (*fs.Object, error) {
	resp, err := c.do(ctx, "GET", "/api/v1/objects/"+id.String(), nil, nil, -1)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return decodeObject(resp.Body)
}

// Read copies an object's content to w.
func (c *Client) Read(ctx context.Context, id fs.ID, w io.Writer) (int64, error) {
	resp, err := c.do(ctx, "GET", "/api/v1/objects/"+id.String()+"/content", nil, nil, -1)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Find calls fn for the objects matching conds (at most limit; 0 = all),
// fetching them page by page.
func (c *Client) Find(ctx context.Context, conds []index.Cond, limit int, fn func(*fs.Object) error) error {
	q := url.Values{}
	for _, cd := range conds {
		q.Add("q", cd.Key+"="+cd.Value)
	}
	seen := 0
	for {
		n := MaxPageSize
		if limit > 0 {
			n = min(n, limit-seen)
		}
		q.Set("limit", strconv.Itoa(n))
		resp, err := c.do(ctx, "GET", "/api/v1/objects", q, nil, -1)
		if err != nil {
			return err
		}
		var page Page
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("server answer: %w", err)
		}
		for _, j := range page.Objects {
			o, err := FromJSON(j)
			if err != nil {
				return err
			}
			if err := fn(o); err != nil {
				return err
			}
			seen++
		}
		if page.Next == "" || (limit > 0 && seen >= limit) {
			return nil
		}
		q.Set("after", page.Next)
	}
}

// Delete removes an object.
func (c *Client) Delete(ctx context.Context, id fs.ID) error {
	resp, err := c.do(ctx, "DELETE", "/api/v1/objects/"+id.String(), nil, nil, -1)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Crawl runs a crawl on the server, reporting progress as it goes.
func (c *Client) Crawl(ctx context.Context, req CrawlRequest, progress func(ingest.CrawlStats)) (ingest.CrawlStats, error) {
	var stats ingest.CrawlStats
	b, _ := json.Marshal(req)
	resp, err := c.do(ctx, "POST", "/api/v1/crawl", nil, bytesReader(b), int64(len(b)))
	if err != nil {
		return stats, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var line crawlLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return stats, fmt.Errorf("server answer: %w", err)
		}
		if line.Stats != nil {
			stats = *line.Stats
			if progress != nil {
				progress(stats)
			}
		}
		if line.Done {
			if line.Error != nil {
				return stats, remoteError(*line.Error)
			}
			return stats, nil
		}
	}
	if err := sc.Err(); err != nil {
		return stats, err
	}
	return stats, errors.New("server ended the crawl without a result")
}
