package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkRecoverAfterKill1M: `datagate serve` (default configuration
// and views) registers 1,000,000 objects through its admin API (one
// NDJSON stream, batches of 1,000; fill-s, records/s) and is killed with
// SIGKILL as soon as it has acknowledged them, with its write-ahead log
// full; then, three times, it is restarted, answers, acknowledges one more
// registration and is killed again. Each restart is timed from its exec
// until the admin API answers a metadata query that finds the last
// acknowledged record: recover-after-fill-s for the first, recover-s the
// mean of the others. DG_BENCH_RECOVER_OBJECTS shrinks the catalogue.
//
//	go test ./integration -run '^$' -bench RecoverAfterKill1M -benchtime 1x -timeout 30m
func BenchmarkRecoverAfterKill1M(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("DG_BENCH_RECOVER_OBJECTS")); err == nil && v > 0 {
		n = v
	}
	dataDir := b.TempDir()
	port := freePort(b)
	cfg := filepath.Join(b.TempDir(), "serve.yaml")
	if err := os.WriteFile(cfg, []byte("data: "+dataDir+"\nlisten: {admin: '127.0.0.1:"+port+"'}\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	base := "http://127.0.0.1:" + port

	const rounds = 3
	var took []time.Duration
	var fillTook time.Duration
	for i := range rounds + 1 {
		srv, start := startRecoverServer(b, cfg)
		if i == 0 {
			waitFound(b, base, "", "", start)
		}
		tb, err := os.ReadFile(filepath.Join(dataDir, "admin.token"))
		if err != nil {
			b.Fatal(err)
		}
		token := strings.TrimSpace(string(tb))
		if i > 0 {
			// The previous round's last acknowledged record must be
			// found: the wait is for a real answer, not an open port.
			took = append(took, waitFound(b, base, token, "marker=run-"+strconv.Itoa(i-1), start))
		}
		if i == rounds {
			srv.Process.Signal(syscall.SIGTERM)
			srv.Wait()
			break
		}
		marker := "run-" + strconv.Itoa(i)
		body := io.Reader(strings.NewReader(markerRecord(marker)))
		if i == 0 {
			pr, pw := io.Pipe()
			go func() {
				w := bufio.NewWriterSize(pw, 1<<20)
				for i := range n {
					fmt.Fprintf(w, `{"name":"obj-%d.grib","meta":{"date":"2026-11-%02d","type":"%s","param":"%d","step":"%d"},`+
						`"location":{"provider":"local","path":"2026/11/file-%d.grib","offset":%d,"length":4096},"size":4096}`+"\n",
						i, 1+i%30, []string{"obs", "fc", "an", "cf"}[i%4], i%250, i%48, i/10, (i%10)*4096)
				}
				w.WriteString(markerRecord(marker))
				w.Flush()
				pw.Close()
			}()
			body = pr
		}
		t0 := time.Now()
		req, _ := http.NewRequest("POST", base+"/api/v1/objects?batch=1000", body)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("register: %s %s", resp.Status, out)
		}
		if i == 0 {
			fillTook = time.Since(t0)
		}
		if err := srv.Process.Kill(); err != nil {
			b.Fatal(err)
		}
		srv.Wait()
	}
	var sum time.Duration
	for _, d := range took[1:] {
		sum += d
	}
	b.ReportMetric(fillTook.Seconds(), "fill-s")
	b.ReportMetric(float64(n)/fillTook.Seconds(), "records/s")
	b.ReportMetric(took[0].Seconds(), "recover-after-fill-s")
	b.ReportMetric(sum.Seconds()/float64(len(took)-1), "recover-s")
}

func markerRecord(m string) string {
	return fmt.Sprintf(`{"name":"%s","meta":{"marker":"%s"},"location":{"provider":"local","path":"%s"},"size":1}`+"\n", m, m, m)
}

// startRecoverServer starts serve and returns it with its exec time; it
// does not wait for it to be ready.
func startRecoverServer(b *testing.B, cfg string) (*exec.Cmd, time.Time) {
	b.Helper()
	cmd := exec.Command(datagateBin, "--config", cfg, "--log-level", "warn", "serve")
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill() })
	return cmd, start
}

// waitFound polls the admin API's metadata search until it returns an
// object for q (q "": until /healthz answers), and returns the time since
// start.
func waitFound(b *testing.B, base, token, q string, start time.Time) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := &http.Client{Timeout: time.Minute}
	u := base + "/api/v1/objects?q=" + q
	if q == "" {
		u = base + "/healthz"
	}
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(token))
		resp, err := c.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && (q == "" || strings.Contains(string(body), `"id"`)) {
				return time.Since(start)
			}
			if resp.StatusCode == http.StatusOK {
				b.Fatalf("after restart, %s finds nothing: an acknowledged registration was lost", q)
			}
		}
		if ctx.Err() != nil {
			b.Fatalf("server not answering %s: %v", q, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
