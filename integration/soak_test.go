package integration

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"golang.org/x/crypto/bcrypt"
	gossh "golang.org/x/crypto/ssh"

	"github.com/datagate/datagate/views/audittest"
)

// soakPlan sizes a soak run.
type soakPlan struct {
	objects, files      int // catalogue: objects registered over provider files
	large, largeSize    int // large whole-file objects
	load, killAfter     time.Duration
	sftp, s3, dav       int // SFTP sessions (one SSH connection each), S3 and WebDAV connections
	users               int
	sample, window      time.Duration // resource samples; latency windows
	reloadEvery         time.Duration
	cacheMax            string
	verify              int // catalogue objects read back after the crash; 0 = all
	opTimeout           time.Duration
	goroutineSlack, fds int // allowed above the baseline once the load has ended
}

// soakPlanFor is the bounded plan `make test` runs, or with DATAGATE_SOAK
// set (a duration: 30m), the long one `make soak` runs: 1,000,000 objects
// (DATAGATE_SOAK_OBJECTS), 120 SFTP sessions, 32 S3 and 16 WebDAV
// connections.
func soakPlanFor(t *testing.T) soakPlan {
	p := soakPlan{
		objects: 10_000, files: 200, large: 3, largeSize: 12 << 20,
		load: 40 * time.Second, killAfter: 6 * time.Second,
		sftp: 24, s3: 8, dav: 4, users: 4,
		sample: 4 * time.Second, window: 10 * time.Second, reloadEvery: 10 * time.Second,
		cacheMax: "24MiB", opTimeout: time.Minute, goroutineSlack: 30, fds: 10,
	}
	if v := os.Getenv("DATAGATE_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("DATAGATE_SOAK=%q: %v", v, err)
		}
		p = soakPlan{
			objects: 1_000_000, files: 3000, large: 4, largeSize: 48 << 20,
			load: d, killAfter: 20 * time.Second,
			sftp: 120, s3: 32, dav: 16, users: 8,
			sample: 10 * time.Second, window: time.Minute, reloadEvery: time.Minute,
			cacheMax: "96MiB", verify: 30_000, opTimeout: 2 * time.Minute, goroutineSlack: 40, fds: 10,
		}
	}
	if n, err := strconv.Atoi(os.Getenv("DATAGATE_SOAK_OBJECTS")); err == nil && n > 0 {
		p.objects = n
	}
	if p.objects/p.files*61+4096 > soakFileSize {
		p.files = p.objects/((soakFileSize-4096)/61) + 1
	}
	return p
}

type soakPorts struct{ webdav, s3, sftp string }

// soakConfig is the server's configuration; the reload n toggles a user
// and a view, so that every reload changes something.
func soakConfig(p soakPlan, dataDir string, ports soakPorts, hash string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `data: %s
listen: {admin: '127.0.0.1:0', webdav: '%s', s3: '%s', sftp: '%s'}
cache: {max_size: %s}
gc: {interval: 2s}
s3: {region: us-east-1}
views:
  bydate:  {path: "{date}/{type}/{step}/{name}"}
  byparam: {path: "{param}/{date}/{name}"}
  big:     {path: "{name}", filter: "type = big"}
  inbox:   {path: "{path...}", filter: "bucket = inbox", set: {bucket: inbox}}
`, dataDir, ports.webdav, ports.s3, ports.sftp, p.cacheMax)
	if n%2 == 1 {
		b.WriteString("  recent:  {path: \"{name}\", filter: \"origin = admin\"}\n")
	}
	b.WriteString("users:\n")
	for u := range p.users {
		fmt.Fprintf(&b, "  site%d:\n    password_hash: '%s'\n    s3_keys: [{id: AKIASOAK%d, secret: soak-secret-%d}]\n    views: {bydate: r, byparam: r, big: r, inbox: rwd}\n", u, hash, u, u)
	}
	if n%2 == 1 {
		fmt.Fprintf(&b, "  visitor%d: {password_hash: '%s', views: {bydate: r}}\n", n, hash)
	}
	return b.String()
}

type soakServer struct {
	cmd          *exec.Cmd
	log          *audittest.Log
	done         chan error
	admin, token string
	started      time.Duration
}

// startSoakServer runs serve and waits until it says it is serving.
func startSoakServer(t *testing.T, cfg, dataDir string) *soakServer {
	t.Helper()
	s := &soakServer{log: &audittest.Log{}, done: make(chan error, 1)}
	s.cmd = exec.Command(datagateBin, "--config", cfg, "serve")
	pr, pw := io.Pipe()
	s.cmd.Stderr = pw
	t0 := time.Now()
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	admin, serving := make(chan string, 1), make(chan struct{}, 1)
	go func() {
		re := regexp.MustCompile(`admin API.*addr=(http://\S+)`)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.log.WriteString(line + "\n")
			if m := re.FindStringSubmatch(line); m != nil {
				admin <- m[1]
			}
			if strings.Contains(line, "datagate serving") {
				serving <- struct{}{}
			}
		}
		io.Copy(io.Discard, pr)
	}()
	go func() { s.done <- s.cmd.Wait(); pw.Close() }()
	t.Cleanup(func() { s.cmd.Process.Kill() })
	for admin != nil || serving != nil {
		select {
		case s.admin = <-admin:
			admin = nil
		case <-serving:
			serving = nil
		case err := <-s.done:
			t.Fatalf("serve exited: %v\n%s", err, s.log)
		case <-time.After(3 * time.Minute):
			t.Fatalf("serve did not start\n%s", s.log)
		}
	}
	s.started = time.Since(t0)
	tok, _ := os.ReadFile(filepath.Join(dataDir, "admin.token"))
	s.token = strings.TrimSpace(string(tok))
	return s
}

// soakSample is one look at the server from outside.
type soakSample struct {
	at                   time.Duration
	rssMiB               float64
	fds, goroutines      int
	heapMiB              float64
	cacheMiB, evictions  float64
	objects, gcRemoved   float64
	errs                 map[string]float64 // server-side request errors per front-end
	sftpActive, inFlight float64
}

func (s *soakServer) sample(t *testing.T, since time.Time) soakSample {
	t.Helper()
	pid := s.cmd.Process.Pid
	x := soakSample{at: time.Since(since).Round(time.Second), errs: map[string]float64{}}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				x.rssMiB = kb / 1024
			}
		}
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		x.fds = len(ents)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("scrape: %v", err)
		return x
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := parseScrape(t, string(body))
	v := func(name string, l ...string) float64 { f, _ := m.sum(name, l...); return f }
	x.goroutines = int(v("go_goroutines"))
	x.heapMiB = v("go_memstats_heap_inuse_bytes") / (1 << 20)
	x.cacheMiB = v("datagate_cache_size_bytes") / (1 << 20)
	x.evictions = v("datagate_cache_evictions_total")
	x.objects = v("datagate_catalogue_objects")
	x.gcRemoved = v("datagate_gc_removed_total")
	x.sftpActive = v("datagate_sftp_sessions_active")
	x.inFlight = v("datagate_http_requests_in_flight")
	for k, val := range m {
		if strings.HasPrefix(k, "datagate_request_errors_total{") {
			x.errs[k[len("datagate_request_errors_total"):]] = val
		}
	}
	return x
}

func (x soakSample) String() string {
	return fmt.Sprintf("t=%-6v rss=%6.1fMiB heap=%6.1fMiB goroutines=%5d fds=%4d sftp-sessions=%3.0f http-in-flight=%3.0f cache=%5.1fMiB evictions=%6.0f objects=%8.0f gc-removed=%6.0f",
		x.at, x.rssMiB, x.heapMiB, x.goroutines, x.fds, x.sftpActive, x.inFlight, x.cacheMiB, x.evictions, x.objects, x.gcRemoved)
}

// TestSoak runs `datagate serve` over a catalogue of many registered
// objects under a mixed, concurrent load of every network front-end
// (SFTP sessions listing and reading, S3 GET/HEAD/LIST/PUT/DELETE, WebDAV
// PROPFIND and GET), registrations through the admin API every second,
// objects expiring under the collector, configuration reloads and a cache
// smaller than what is read. It samples the process (RSS, fds,
// goroutines, /metrics) and the clients' latencies, and asserts: no
// client error and every byte right; once the load ends and the clients
// have gone, goroutines and fds back to what they were before it. Then it
// kills the server with SIGKILL under load, restarts it and checks that
// every object reads back with its content, every acknowledged upload
// whole, nothing half-written visible, and fsck clean.
//
// Bounded (about 2 minutes) in `make test`; DATAGATE_SOAK=30m (`make
// soak`) runs the long one with 1,000,000 objects.
func TestSoak(t *testing.T) {
	p := soakPlanFor(t)
	dataDir := t.TempDir()
	if d := os.Getenv("DATAGATE_SOAK_DIR"); d != "" {
		dataDir = d // kept, for a look afterwards
	}
	imp := filepath.Join(dataDir, "import", "soak")
	if err := os.MkdirAll(imp, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("plan: %d objects over %d files, %d large of %d MiB, load %v, %d SFTP sessions, %d S3 and %d WebDAV connections, cache %s",
		p.objects, p.files, p.large, p.largeSize>>20, p.load, p.sftp, p.s3, p.dav, p.cacheMax)
	for f := range p.files {
		if err := os.WriteFile(filepath.Join(dataDir, "import", soakFilePath(f)), soakBytes(f, 0, soakFileSize), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l := &soakLoad{p: p, st: newSoakStats(), dataDir: dataDir, password: "soak-pw", puts: newSoakPuts(), bigSums: map[string][32]byte{}}
	var bigRecs strings.Builder
	for k := range p.large {
		f := 2_000_000 + k
		b := soakBytes(f, 0, p.largeSize)
		if err := os.WriteFile(filepath.Join(dataDir, "import", soakFilePath(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("big-%d-0-%d.bin", f, p.largeSize)
		l.bigNames = append(l.bigNames, name)
		l.bigSums[name] = sha256.Sum256(b)
		fmt.Fprintf(&bigRecs, `{"name":%q,"meta":{"type":"big"},"location":{"provider":"local","path":%q},"size":%d}`+"\n", name, soakFilePath(f), p.largeSize)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(l.password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	ports := soakPorts{webdav: "127.0.0.1:" + freePort(t), s3: "127.0.0.1:" + freePort(t), sftp: "127.0.0.1:" + freePort(t)}
	l.sftpAddr, l.s3, l.dav = ports.sftp, ports.s3, ports.webdav
	cfg := filepath.Join(t.TempDir(), "soak.yaml")
	reloads := 0
	writeCfg := func() {
		if err := os.WriteFile(cfg, []byte(soakConfig(p, dataDir, ports, string(hash), reloads)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg()

	srv := startSoakServer(t, cfg, dataDir)
	l.admin, l.token = srv.admin, srv.token
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log (last 200 lines):\n%s", lastLines(srv.log.String(), 200))
		}
	})

	// The catalogue, through the admin API as one NDJSON stream.
	t0 := time.Now()
	pr, pw := io.Pipe()
	go func() {
		w := bufio.NewWriterSize(pw, 1<<20)
		w.WriteString(bigRecs.String())
		for i := range p.objects {
			w.WriteString(soakObj(i, p.files, "o", splitmix(uint64(i))).record("", "") + "\n")
		}
		w.Flush()
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", srv.admin+"/api/v1/objects?batch=1000", pr)
	req.Header.Set("Authorization", "Bearer "+srv.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("register: %s %s", resp.Status, out)
	}
	t.Logf("registered %d objects in %v (%.0f/s): %s", p.objects+p.large, time.Since(t0).Round(time.Millisecond),
		float64(p.objects)/time.Since(t0).Seconds(), strings.TrimSpace(string(out)))

	hk, err := os.ReadFile(filepath.Join(dataDir, "ssh_host_ed25519_key"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.ParsePrivateKey(hk)
	if err != nil {
		t.Fatal(err)
	}
	l.hostKey = signer.PublicKey()
	newClients := func() {
		l.s3tr = &http.Transport{MaxIdleConnsPerHost: 2 * p.s3, MaxConnsPerHost: 2 * p.s3, IdleConnTimeout: time.Minute}
		l.s3c = nil
		for u := range p.users {
			c, err := minio.New(l.s3, &minio.Options{Creds: credentials.NewStaticV4(fmt.Sprintf("AKIASOAK%d", u), fmt.Sprintf("soak-secret-%d", u), ""),
				Region: "us-east-1", BucketLookup: minio.BucketLookupPath, Transport: l.s3tr})
			if err != nil {
				t.Fatal(err)
			}
			l.s3c = append(l.s3c, c)
		}
		l.davc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * p.dav}}
	}
	closeClients := func() {
		l.s3tr.CloseIdleConnections()
		l.davc.CloseIdleConnections()
		http.DefaultClient.CloseIdleConnections()
	}

	// Warm-up: every kind of request once, then the clients go; what the
	// server holds then is the baseline the end of the load is held to.
	newClients()
	{
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		wr := rand.New(rand.NewPCG(1, 1))
		var put int
		var mine []string
		for range 3 {
			l.s3Op(ctx, l.s3c[0], 0, wr, &put, &mine)
		}
		l.sftpSession(ctx, 0, wr)
		dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
		l.davWorker(dctx, 0)
		dcancel()
		cancel()
		closeClients()
	}
	// The reads of the warm-up queued checksum jobs (run one at a time
	// at the lowest priority): the baseline is taken once they are done.
	since := time.Now()
	var base soakSample
	for settle := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		x := srv.sample(t, since)
		if (base.goroutines > 0 && x.goroutines >= base.goroutines) || time.Now().After(settle) {
			base = x
			break
		}
		base = x
	}
	t.Logf("baseline: %v", base)

	samples := []soakSample{base}
	var windows []map[string][3]time.Duration
	l.st.window()
	run := func(ctx context.Context) *sync.WaitGroup {
		var wg sync.WaitGroup
		for w := range p.sftp {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(w), 7))
				for ctx.Err() == nil {
					l.sftpSession(ctx, w, r)
				}
			}()
		}
		for w := range p.s3 {
			wg.Add(1)
			go func() { defer wg.Done(); l.s3Worker(ctx, w) }()
		}
		for w := range p.dav {
			wg.Add(1)
			go func() { defer wg.Done(); l.davWorker(ctx, w) }()
		}
		wg.Add(1)
		go func() { defer wg.Done(); l.register(ctx) }()
		return &wg
	}
	waitLoad := func(wg *sync.WaitGroup, what string) {
		ch := make(chan struct{})
		go func() { wg.Wait(); close(ch) }()
		select {
		case <-ch:
		case <-time.After(p.opTimeout + 30*time.Second):
			// A request that hangs past its own timeout: the server's
			// goroutines say where.
			srv.cmd.Process.Signal(syscall.SIGQUIT)
			time.Sleep(2 * time.Second)
			t.Fatalf("%s: clients still busy %v after the load ended\n%s", what, p.opTimeout+30*time.Second, lastLines(srv.log.String(), 3000))
		}
	}

	// The load, sampled; a reload now and then.
	ctx, cancel := context.WithCancel(context.Background())
	wg := run(ctx)
	end := time.Now().Add(p.load)
	nextSample, nextWindow, nextReload := time.Now().Add(p.sample), time.Now().Add(p.window), time.Now().Add(p.reloadEvery)
	for time.Now().Before(end) {
		time.Sleep(200 * time.Millisecond)
		if time.Now().After(nextReload) {
			reloads++
			writeCfg()
			srv.cmd.Process.Signal(syscall.SIGHUP)
			nextReload = nextReload.Add(p.reloadEvery)
		}
		if time.Now().After(nextSample) {
			x := srv.sample(t, since)
			samples = append(samples, x)
			t.Logf("%v sftp-sessions-done=%d", x, l.sftpDone.Load())
			nextSample = nextSample.Add(p.sample)
		}
		if time.Now().After(nextWindow) {
			w := l.st.window()
			windows = append(windows, w)
			t.Logf("latency window %d: %s", len(windows), fmtWindow(w))
			nextWindow = nextWindow.Add(p.window)
		}
	}
	cancel()
	waitLoad(wg, "load")
	closeClients()
	windows = append(windows, l.st.window())

	// The clients have gone: the server must let go of what they held.
	var after soakSample
	settle := time.Now().Add(2 * time.Minute) // background checksum jobs drain at the lowest priority
	for {
		after = srv.sample(t, since)
		if (after.goroutines <= base.goroutines+p.goroutineSlack && after.fds <= base.fds+p.fds) || time.Now().After(settle) {
			break
		}
		time.Sleep(time.Second)
	}
	samples = append(samples, after)
	t.Logf("after the load: %v", after)
	if after.goroutines > base.goroutines+p.goroutineSlack {
		srv.cmd.Process.Signal(syscall.SIGQUIT)
		time.Sleep(2 * time.Second)
		t.Errorf("goroutine leak: %d after the load, %d before", after.goroutines, base.goroutines)
	}
	if after.fds > base.fds+p.fds {
		t.Errorf("fd leak: %d after the load, %d before", after.fds, base.fds)
		if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", srv.cmd.Process.Pid)); err == nil {
			var targets []string
			for _, e := range ents {
				l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", srv.cmd.Process.Pid, e.Name()))
				targets = append(targets, l)
			}
			t.Logf("open fds: %v", targets)
		}
	}
	reportSoak(t, l, samples, windows, srv.log.String(), reloads)
	if t.Failed() {
		return
	}

	// kill -9 under load, restart, read everything back.
	ctx, cancel = context.WithCancel(context.Background())
	newClients()
	wg = run(ctx)
	time.Sleep(p.killAfter)
	l.st.ignoring.Store(true)
	srv.cmd.Process.Kill()
	<-srv.done
	cancel()
	waitLoad(wg, "load at the kill")
	closeClients()
	firstLog := srv.log.String()
	srv = startSoakServer(t, cfg, dataDir)
	t.Logf("restart after kill -9: serving in %v", srv.started.Round(time.Millisecond))
	newClients()
	soakVerify(t, l, srv)
	closeClients()
	restartLog := srv.log.String()
	terminate(t, "serve", srv.cmd, srv.done, srv.log)
	soakFsck(t, cfg, l)
	// A request its client gave up on is logged as an error by the S3
	// front-end (err="…context canceled"): the load's end does that.
	for _, lg := range []string{firstLog, restartLog} {
		for _, line := range strings.Split(lg, "\n") {
			if strings.Contains(line, "level=ERROR") && !strings.Contains(line, `context canceled"`) {
				t.Errorf("server log: %s", line)
			}
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func fmtWindow(w map[string][3]time.Duration) string {
	ops := make([]string, 0, len(w))
	for op := range w {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	var b strings.Builder
	for _, op := range ops {
		v := w[op]
		fmt.Fprintf(&b, "%s n=%d p50=%v p99=%v; ", op, int(v[0]), v[1].Round(10*time.Microsecond), v[2].Round(10*time.Microsecond))
	}
	return b.String()
}

// reportSoak logs the run's figures and fails on client errors, refused
// reloads and a collector that did nothing.
func reportSoak(t *testing.T, l *soakLoad, samples []soakSample, windows []map[string][3]time.Duration, log string, reloads int) {
	t.Helper()
	l.st.mu.Lock()
	defer l.st.mu.Unlock()
	ops := 0
	for _, n := range l.st.ops {
		ops += n
	}
	t.Logf("client operations: %d %v; expired objects met: %d; SFTP sessions: %d", ops, l.st.ops, l.st.expired, l.sftpDone.Load())
	last := samples[len(samples)-1]
	t.Logf("server-side request errors: %v", last.errs)
	warns, example := map[string]int{}, map[string]string{}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			msg := line
			if i := strings.Index(line, "msg="); i >= 0 {
				msg = line[i:]
				if j := strings.Index(msg, "\" "); j > 0 {
					msg = msg[:j+1]
				}
			}
			if warns[msg]++; warns[msg] == 1 {
				example[msg] = line
			}
		}
	}
	t.Logf("server warnings and errors: %v", warns)
	for _, line := range example {
		t.Logf("for example: %s", line)
	}
	applied := strings.Count(log, "configuration reloaded")
	if n := strings.Count(log, "configuration reload refused"); n > 0 {
		t.Errorf("%d of %d reloads refused", n, reloads)
	}
	t.Logf("reloads: %d sent, %d logged as applied", reloads, applied)
	if len(l.st.errs) > 0 {
		t.Errorf("client errors per front-end: %v\nfirst ones:\n%s", l.st.errs, strings.Join(l.st.first, "\n"))
	}
	if last.gcRemoved == 0 {
		t.Errorf("the collector removed nothing (%d registrations)", l.regSeq.Load())
	}
	if last.evictions == 0 {
		t.Errorf("no cache eviction: the cache is bigger than what was read")
	}
	var rows []string
	for i, w := range windows {
		rows = append(rows, fmt.Sprintf("window %d: %s", i+1, fmtWindow(w)))
	}
	t.Logf("latency per window:\n%s", strings.Join(rows, "\n"))
}

// soakVerify reads back, from the restarted server, the catalogue (all or
// a sample), the large objects, the acknowledged registrations and the
// S3 uploads.
func soakVerify(t *testing.T, l *soakLoad, srv *soakServer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	type job struct {
		bucket, key string
		check       func([]byte) error
		absentOK    bool // an upload in flight at the kill
		mustAbsent  bool // an acknowledged delete
	}
	jobs := make(chan job, 256)
	var mu sync.Mutex
	var bad []string
	var checked, absent int
	var wg sync.WaitGroup
	for w := range 2 * l.p.s3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := l.s3c[w%len(l.s3c)]
			for j := range jobs {
				b, err := s3Get(ctx, c, j.bucket, j.key, minio.GetObjectOptions{})
				var msg string
				switch {
				case j.mustAbsent && err == nil:
					msg = "deleted (acknowledged) yet readable"
				case j.mustAbsent && s3NotFound(err), j.absentOK && s3NotFound(err):
					mu.Lock()
					absent++
					mu.Unlock()
					continue
				case err != nil:
					msg = err.Error()
				default:
					if err := j.check(b); err != nil {
						msg = err.Error()
					}
				}
				mu.Lock()
				checked++
				if msg != "" && len(bad) < 50 {
					bad = append(bad, j.bucket+"/"+j.key+": "+msg)
				}
				mu.Unlock()
			}
		}()
	}
	byName := func(name string) func([]byte) error { return func(b []byte) error { return soakCheck(name, b) } }
	bySum := func(sum [32]byte) func([]byte) error {
		return func(b []byte) error {
			if sha256.Sum256(b) != sum {
				return fmt.Errorf("wrong bytes (%d)", len(b))
			}
			return nil
		}
	}
	n := l.p.objects
	r := rand.New(rand.NewPCG(9, 9))
	if l.p.verify > 0 && l.p.verify < n {
		n = l.p.verify
	}
	for k := range n {
		i := k
		if n < l.p.objects {
			i = r.IntN(l.p.objects)
		}
		o := soakObj(i, l.p.files, "o", splitmix(uint64(i)))
		jobs <- job{bucket: "bydate", key: o.bydate, check: byName(o.name)}
	}
	for _, name := range l.bigNames {
		jobs <- job{bucket: "big", key: name, check: bySum(l.bigSums[name])}
	}
	for _, o := range l.durable {
		jobs <- job{bucket: "byparam", key: o.byparam, check: byName(o.name)}
	}
	l.puts.mu.Lock()
	for k, sum := range l.puts.acked {
		jobs <- job{bucket: "inbox", key: k, check: bySum(sum)}
	}
	for k, sum := range l.puts.pending {
		jobs <- job{bucket: "inbox", key: k, check: bySum(sum), absentOK: true}
	}
	for k, sum := range l.puts.delete {
		jobs <- job{bucket: "inbox", key: k, check: bySum(sum), absentOK: true}
	}
	for k := range l.puts.deleted {
		jobs <- job{bucket: "inbox", key: k, mustAbsent: true}
	}
	nPuts := len(l.puts.acked)
	l.puts.mu.Unlock()
	close(jobs)
	wg.Wait()
	t.Logf("after the restart: %d objects read back (%d catalogue, %d large, %d registered under load, %d uploads), %d absent as allowed",
		checked, n, len(l.bigNames), len(l.durable), nPuts, absent)
	if len(bad) > 0 {
		t.Errorf("after kill -9 and restart, %d objects wrong:\n%s", len(bad), strings.Join(bad, "\n"))
	}
}

// soakFsck runs fsck on the stopped server's data directory: it may find
// the files of uploads in flight at the kill (never acknowledged) and
// nothing else.
func soakFsck(t *testing.T, cfg string, l *soakLoad) {
	t.Helper()
	// fsck of 1,000,000 objects takes minutes: more than cli.run allows.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, datagateBin, "--config", cfg, "fsck")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t0 := time.Now()
	err := cmd.Run()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() < 0 {
		t.Fatalf("fsck: %v\n%s", err, stderr.String())
	}
	out, errs, code := stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
	orphans := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" || strings.HasPrefix(line, "fsck: ") {
			continue
		}
		if orphanRE.MatchString(line) {
			orphans++
			continue
		}
		t.Errorf("fsck after the crash: %s", line)
	}
	if orphans > len(l.puts.pending) {
		t.Errorf("fsck: %d unreferenced files, but only %d uploads were in flight at the kill", orphans, len(l.puts.pending))
	}
	if code != 0 && orphans == 0 {
		t.Errorf("fsck: exit %d\n%s%s", code, out, errs)
	}
	t.Logf("fsck: exit %d in %v, %d unreferenced files of uploads in flight at the kill; %s", code, time.Since(t0).Round(time.Second), orphans, strings.TrimSpace(out))
}
