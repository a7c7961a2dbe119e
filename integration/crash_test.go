package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// dav is a minimal WebDAV client for alice (see davConfig): the fault
// tests need status codes and bodies from many goroutines, which curl
// processes would make slow.
type dav struct {
	base   string
	client *http.Client
}

func newDAV(base string, timeout time.Duration) *dav {
	return &dav{base: base, client: &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
}

// do sends one request and returns the status and the whole body; a
// transport error is status 0.
func (d *dav) do(ctx context.Context, method, path string, body io.Reader, hdr ...string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, body)
	if err != nil {
		return 0, nil, err
	}
	req.SetBasicAuth("alice", davPassword)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// must sends one request and fails the test unless it gets status want.
func (d *dav) must(t *testing.T, ctx context.Context, want int, method, path string, body []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	if code, b, err := d.do(ctx, method, path, r); code != want {
		t.Fatalf("%s %s: %d %v, want %d\n%s", method, path, code, err, want, b)
	}
}

var orphanRE = regexp.MustCompile(`^objects: \S+: file \((\d+) bytes\) no object references`)

var hrefRE = regexp.MustCompile(`<(?:D:)?href>([^<]*)</(?:D:)?href>`)

// list returns the names PROPFIND shows in a collection (Depth 1).
func (d *dav) list(t *testing.T, ctx context.Context, dir string) []string {
	t.Helper()
	code, body, err := d.do(ctx, "PROPFIND", dir, nil, "Depth", "1")
	if err != nil || code != http.StatusMultiStatus {
		t.Fatalf("PROPFIND %s: %d %v\n%s", dir, code, err, body)
	}
	var names []string
	for _, m := range hrefRE.FindAllStringSubmatch(string(body), -1) {
		if name := strings.TrimPrefix(m[1], dir); name != "" && name != m[1] {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// pacedReader yields data in pieces with a pause before each, so that an
// upload is still streaming when the server is killed; sent is set when
// the last byte has been handed over.
type pacedReader struct {
	data  []byte
	piece int
	pause time.Duration
	sent  *atomic.Bool
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if len(p.data) == 0 {
		p.sent.Store(true)
		return 0, io.EOF
	}
	time.Sleep(p.pause)
	n := copy(b[:min(len(b), p.piece)], p.data)
	p.data = p.data[n:]
	return n, nil
}

// TestKillDuringUploads SIGKILLs `datagate serve` while 200 WebDAV PUTs
// are in flight, restarts it on the same data directory and checks that
// every acknowledged upload is there with its SHA-256, that no other
// upload is visible unless whole and correct (its answer may have been
// lost in the kill), and that fsck and verify find nothing wrong.
func TestKillDuringUploads(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dataDir := t.TempDir()
	port := davFreePort(t)
	cfg := davConfig(t, dataDir, port)
	s := startDAV(t, cfg, port)
	d := newDAV(s.url, time.Minute)
	d.must(t, ctx, http.StatusCreated, "MKCOL", "/files/crash", nil)

	const n = 200
	rng := rand.New(rand.NewPCG(8, 200))
	payloads := make([][]byte, n)
	for i := range payloads {
		b := make([]byte, 1+rng.IntN(600<<10))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		payloads[i] = b
	}
	name := func(i int) string { return fmt.Sprintf("u%03d.bin", i) }

	var (
		acked    [n]atomic.Bool
		sent     [n]atomic.Bool  // the whole body went out
		answered [n]atomic.Int32 // the status, when one came
		nAcked   atomic.Int32
		wg       sync.WaitGroup
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A third of the uploads go as fast as they can, a third
			// stream over about a second, a third over several: the
			// kill finds uploads at every stage (body, fsync, index
			// commit, answer).
			pause := [3]time.Duration{0, 10 * time.Millisecond, 100 * time.Millisecond}[i%3]
			body := &pacedReader{data: payloads[i], piece: 32 << 10, pause: pause + time.Duration(i%7)*time.Millisecond, sent: &sent[i]}
			code, _, err := d.do(ctx, http.MethodPut, "/files/crash/"+name(i), body)
			if err == nil {
				answered[i].Store(int32(code))
			}
			if err == nil && (code == http.StatusCreated || code == http.StatusNoContent) {
				acked[i].Store(true)
				nAcked.Add(1)
			}
		}()
	}
	// Kill once a quarter are acknowledged: many others are in flight.
	for nAcked.Load() < n/4 {
		if ctx.Err() != nil {
			t.Fatalf("only %d uploads acknowledged\n%s", nAcked.Load(), s.log)
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s.done
	wg.Wait()
	var ackedCount, sentCount int
	for i := range n {
		if sent[i].Load() {
			sentCount++
		}
		if acked[i].Load() {
			ackedCount++
		} else if c := answered[i].Load(); c != 0 {
			t.Errorf("upload %d answered %d before the kill", i, c)
		}
	}
	t.Logf("at the SIGKILL: %d of %d uploads acknowledged, %d more fully sent, %d mid-body", ackedCount, n, sentCount-ackedCount, n-sentCount)
	if ackedCount == n || sentCount == n {
		t.Fatal("every upload was sent before the kill: the test proves nothing")
	}

	s = startDAV(t, cfg, port)
	visible := map[string]bool{}
	for _, nm := range d.list(t, ctx, "/files/crash/") {
		visible[nm] = true
	}
	var present int
	isPresent := make([]bool, n)
	for i := range n {
		code, got, err := d.do(ctx, http.MethodGet, "/files/crash/"+name(i), nil)
		if err != nil {
			t.Fatalf("GET %s: %v", name(i), err)
		}
		want := sha256.Sum256(payloads[i])
		switch {
		case code == http.StatusOK && sha256.Sum256(got) == want:
			present++
			isPresent[i] = true
			if !visible[name(i)] {
				t.Errorf("%s readable but not listed", name(i))
			}
			delete(visible, name(i))
		case code == http.StatusOK:
			t.Errorf("%s: %d bytes with the wrong SHA-256 (sent %d, acknowledged %v)", name(i), len(got), len(payloads[i]), acked[i].Load())
		case acked[i].Load():
			t.Errorf("acknowledged upload %s lost: GET %d", name(i), code)
		case code != http.StatusNotFound:
			t.Errorf("unacknowledged %s: GET %d, want 404 or the whole content", name(i), code)
		}
	}
	if len(visible) > 0 {
		t.Errorf("listed but not readable as uploaded: %v", visible)
	}
	t.Logf("%d present after restart (%d acknowledged)", present, ackedCount)
	s.stop(t)
	sweptLog := s.log.String()
	for _, l := range strings.Split(sweptLog, "\n") {
		if strings.Contains(l, "sweep") || strings.Contains(l, "swept") || strings.Contains(l, "temporary files") {
			t.Log(l)
		}
	}

	// A kill between an upload's rename into objects/ and its index
	// commit leaves a file no object references: content of an upload
	// never acknowledged nor visible. fsck must report exactly those
	// (each the size of an upload that is not there) and nothing else,
	// and --repair must leave it clean.
	missing := map[int64]int{}
	for i := range n {
		if !isPresent[i] {
			missing[int64(len(payloads[i]))]++
		}
	}
	c := cli{t, []string{"--config", cfg}}
	out, errs, code := c.run("", "fsck")
	orphans := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(line, "fsck: ") {
			continue
		}
		m := orphanRE.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("fsck after the crash: %s", line)
			continue
		}
		var size int64
		fmt.Sscan(m[1], &size)
		if missing[size] == 0 {
			t.Errorf("fsck: unreferenced file of %d bytes matches no lost upload: %s", size, line)
		}
		missing[size]--
		orphans++
	}
	if code != 0 && orphans == 0 {
		t.Errorf("fsck: exit %d\n%s%s", code, out, errs)
	}
	t.Logf("fsck found %d unreferenced files of unacknowledged uploads", orphans)
	// The restarted server sweeps them in the background after the
	// unclean shutdown; a clean stop after a finished sweep leaves the
	// CLEAN marker; a sweep that removed files says so in the log, and
	// then none may be left.
	if orphans > 0 && strings.Contains(sweptLog, "swept unindexed stored files") {
		t.Errorf("the restarted server swept, yet fsck found %d unreferenced files", orphans)
	}
	if orphans > 0 {
		c.ok("", "fsck", "--repair")
	}
	for _, cmd := range []string{"fsck", "verify"} {
		if out, errs, code := c.run("", cmd); code != 0 {
			t.Errorf("%s after the crash (and fsck --repair): exit %d\n%s%s", cmd, code, out, errs)
		}
	}
	// Temporary files of the killed uploads are not content: they must
	// not be left to fill the disk (the store's Open removes them).
	if left, _ := filepath.Glob(filepath.Join(dataDir, "objects", ".tmp", "*")); len(left) > 0 {
		t.Errorf("%d temporary files of killed uploads left in objects/.tmp: %v", len(left), left)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "objects")); err != nil {
		t.Fatal(err)
	}
}
