package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"
)

// progress shows how a long command (crawl, put, register, verify, fsck)
// advances, on stderr when stderr is a terminal. Elsewhere it shows
// nothing: the command's stdout carries only its result, for scripts. The
// methods of a nil *progress do nothing, so callers need no checks.
type progress struct {
	mu  sync.Mutex // the bar, and the lines printed while it shows
	bar *progressbar.ProgressBar
}

// newProgress starts a bar for what; total is the amount of work (-1
// when unknown: a spinner), counted in bytes when bytes is set.
func newProgress(what string, total int64, bytes bool) *progress {
	if !isTerminal(os.Stderr) {
		return nil
	}
	opts := []progressbar.Option{progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetDescription(what),
		progressbar.OptionThrottle(100 * time.Millisecond), progressbar.OptionShowCount()}
	if bytes {
		opts = append(opts, progressbar.OptionShowBytes(true), progressbar.OptionUseIECUnits(true))
	}
	return &progress{bar: progressbar.NewOptions64(total, opts...)}
}

// update sets the amount done and, when desc is not empty, the text.
func (p *progress) update(done int64, desc string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if desc != "" {
		p.bar.Describe(desc)
	}
	p.bar.Set64(done)
}

// println prints a line (a finding) above the bar.
func (p *progress) println(w io.Writer, a ...any) {
	if p == nil {
		fmt.Fprintln(w, a...)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bar.Clear()
	fmt.Fprintln(w, a...)
}

// finish leaves the bar in its final state on its own line.
func (p *progress) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bar.Finish()
	fmt.Fprintln(os.Stderr)
}

// countingReader counts the bytes read through it for a progress bar;
// the count is read from another goroutine.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// follow updates p from c every 100 ms until stop is called: the reader
// may be drained by another goroutine (the store's hashing pipeline, the
// admin client's request body), which should not pay for the bar.
func follow(p *progress, c *countingReader, desc func(n int64) string) (stop func()) {
	if p == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			n := c.n.Load()
			p.update(n, desc(n))
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		n := c.n.Load()
		p.update(n, desc(n))
	}
}

func ibytes(n int64) string { return humanize.IBytes(uint64(max(n, 0))) }
