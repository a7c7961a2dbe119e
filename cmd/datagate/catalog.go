package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/datagate/datagate/cmd/datagate/config"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
	"github.com/datagate/datagate/fs/ingest"
	"github.com/datagate/datagate/fs/store"
	"github.com/datagate/datagate/gateway/admin"
)

// catalog is what the CLI commands need; it is a running server reached
// through its socket (remote) or the store opened in-process (local), so a
// command behaves the same either way.
type catalog interface {
	Register(ctx context.Context, r io.Reader, batch int, progress func(ingest.Result)) (ingest.Result, error)
	Put(ctx context.Context, req store.PutRequest, r io.Reader) (*fs.Object, error)
	Get(ctx context.Context, id fs.ID) (*fs.Object, error)
	Read(ctx context.Context, id fs.ID, w io.Writer) (int64, error)
	Find(ctx context.Context, conds []index.Cond, limit int, fn func(*fs.Object) error) error
	Delete(ctx context.Context, id fs.ID) error
	Crawl(ctx context.Context, req admin.CrawlRequest, progress func(ingest.CrawlStats)) (ingest.CrawlStats, error)
	Close() error
}

func socketPath(cfg *config.Config) string { return filepath.Join(cfg.Data, "datagate.sock") }

// openCatalog reaches the server owning the data directory, or opens the
// store itself when no server runs.
func openCatalog(ctx context.Context, cfg *config.Config, log *slog.Logger) (catalog, error) {
	if c, err := admin.Dial(ctx, socketPath(cfg)); err == nil {
		log.Debug("using the running server", "socket", socketPath(cfg))
		return remote{c}, nil
	}
	a, err := openApp(ctx, cfg, log)
	if errors.Is(err, store.ErrLocked) {
		// Named by its command line: a server starting, or another
		// command (a long put) that holds the store until it ends.
		return nil, fmt.Errorf("%w: %s (pid %s), and no server answers on its socket %s: wait for that command to end, or for that server to start", store.ErrLocked, cfg.Data, lockOwner(cfg.Data), socketPath(cfg))
	}
	if err != nil {
		return nil, err
	}
	return &localCatalog{a: a, log: log}, nil
}

type remote struct{ *admin.Client }

func (r remote) Register(ctx context.Context, rd io.Reader, batch int, _ func(ingest.Result)) (ingest.Result, error) {
	res, err := r.Client.Register(ctx, rd, batch)
	// The server's message already names the line and the batch not
	// applied; the client's LineError around it would say both again
	// ("line 2: line 2: … (batch from line 1 not applied) (batch from line
	// 0 not applied)"). Its cause is the message alone, of kind invalid
	// (exit 2).
	var le *ingest.LineError
	if errors.As(err, &le) && le.BatchFirst == 0 {
		err = le.Err
	}
	return res, err
}

// Read names what a cut answer means: the server sent its status before
// the content failed (a provider error after the first chunk, a checksum
// found wrong at the end), so the cause is in its log, and the CLI had
// only "unexpected EOF". Content not yet whole on the server is also
// checked here against its registered SHA-256: the server may have sent
// the last bytes before it found them wrong, and the answer then looked
// complete (get exited 0 with content the catalogue says is wrong).
func (r remote) Read(ctx context.Context, id fs.ID, w io.Writer) (int64, error) {
	var h hash.Hash
	var want []byte
	if o, err := r.Client.Get(ctx, id); err == nil && o.State < fs.StateCached && len(o.SHA256) == sha256.Size {
		h, want = sha256.New(), o.SHA256
		w = io.MultiWriter(w, h)
	}
	n, err := r.Client.Read(ctx, id, w)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) && ctx.Err() == nil:
		err = fs.E(fs.Unavailable, "get", id.String(), fmt.Errorf("the server's answer ended after %d bytes, before the content's end: the cause is in the server's log (a provider failing, or content not matching its registered checksum): %w", n, err))
	case err == nil && h != nil && !bytes.Equal(h.Sum(nil), want):
		err = fs.E(fs.Other, "get", id.String(), errors.New("the content received does not match its registered SHA-256 (the server's log says more)"))
	}
	return n, err
}

type localCatalog struct {
	a   *app
	log *slog.Logger
	// read are the objects Read delivered whole, and the context of the
	// command: Close waits for their checksums (checksums.go).
	read []fs.ID
	ctx  context.Context
}

func (l *localCatalog) Close() error {
	l.awaitChecksums()
	return l.a.Close()
}

func (l *localCatalog) Register(ctx context.Context, r io.Reader, batch int, progress func(ingest.Result)) (ingest.Result, error) {
	return ingest.Register(ctx, l.a.store, r, batch, progress)
}

func (l *localCatalog) Put(ctx context.Context, req store.PutRequest, r io.Reader) (*fs.Object, error) {
	return l.a.store.Put(ctx, req, r)
}

func (l *localCatalog) Get(ctx context.Context, id fs.ID) (*fs.Object, error) {
	return l.a.store.Get(ctx, id)
}

func (l *localCatalog) Read(ctx context.Context, id fs.ID, w io.Writer) (int64, error) {
	rd, err := l.a.store.Open(ctx, id)
	if err != nil {
		return 0, err
	}
	defer rd.Close()
	// In pieces, so that Ctrl-C (ctx) ends a long copy between two: a
	// stored file's reader does not watch the context, and a get of 1 GB
	// interrupted at once went on to the end and put its output in place.
	// Each piece still goes through the kernel's copy between files.
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("interrupted after %d bytes: %w", n, err)
		}
		m, err := io.CopyN(w, rd, 64<<20)
		n += m
		if err == io.EOF {
			l.read, l.ctx = append(l.read, id), ctx
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func (l *localCatalog) Find(ctx context.Context, conds []index.Cond, limit int, fn func(*fs.Object) error) error {
	return l.a.store.Find(ctx, conds, index.FindOptions{Limit: limit}, fn)
}

func (l *localCatalog) Delete(ctx context.Context, id fs.ID) error {
	return l.a.store.Delete(ctx, id)
}

func (l *localCatalog) Crawl(ctx context.Context, req admin.CrawlRequest, progress func(ingest.CrawlStats)) (ingest.CrawlStats, error) {
	opts, p, err := admin.CrawlSetup(l.a.store, req)
	if err != nil {
		return ingest.CrawlStats{}, err
	}
	return ingest.Crawl(ctx, l.a.store, p, opts, progress)
}
