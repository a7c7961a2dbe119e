package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	pkgsftp "github.com/pkg/sftp"
	gossh "golang.org/x/crypto/ssh"
)

// The soak's catalogue: every object's content is a byte range of a file
// of the local provider, and its name says which (kind-FILE-OFFSET-LENGTH),
// so any reader can check the bytes it got without a table of millions of
// checksums. A file's bytes are a function of its number and the position.

const soakFileSize = 64 << 10

var soakTypes = []string{"obs", "fc", "an", "cf"}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// soakBytes returns bytes [off, off+n) of provider file f.
func soakBytes(f, off, n int) []byte {
	b := make([]byte, n)
	for k := 0; k < n; {
		p := off + k
		w := splitmix(uint64(f)<<32 | uint64(p/8))
		for s := p % 8; s < 8 && k < n; s++ {
			b[k] = byte(w >> (8 * s))
			k++
		}
	}
	return b
}

func soakFilePath(f int) string { return fmt.Sprintf("soak/f-%d.bin", f) }

var soakNameRE = regexp.MustCompile(`^[a-z]+-(\d+)-(\d+)-(\d+)\.(?:grib|bin)$`)

// soakCheck tells whether b is the content the object named name must
// have.
func soakCheck(name string, b []byte) error {
	m := soakNameRE.FindStringSubmatch(name)
	if m == nil {
		return fmt.Errorf("%s: not a soak object's name", name)
	}
	f, _ := strconv.Atoi(m[1])
	off, _ := strconv.Atoi(m[2])
	n, _ := strconv.Atoi(m[3])
	if len(b) != n {
		return fmt.Errorf("%s: %d bytes, want %d", name, len(b), n)
	}
	if !bytes.Equal(b, soakBytes(f, off, n)) {
		return fmt.Errorf("%s: wrong bytes", name)
	}
	return nil
}

// soakMeta is the metadata drawn from h: date, type, step, param.
func soakMeta(h uint64) (date, typ, step, param string) {
	return fmt.Sprintf("2026-11-%02d", 1+h%30), soakTypes[(h>>8)%4],
		strconv.Itoa(int((h >> 16) % 24)), strconv.Itoa(int((h >> 24) % 100))
}

// soakObject is catalogue object i: its name and its key in the view
// bydate ({date}/{type}/{step}/{name}) and byparam ({param}/{date}/{name}).
type soakObject struct {
	name, bydate, byparam string
	file, off, n          int
	meta                  [4]string
}

func soakObj(i, files int, kind string, h uint64) soakObject {
	f := i % files
	off := (i / files) * 61
	n := 2048 + (i%5)*512
	o := soakObject{file: f, off: off, n: n}
	o.name = fmt.Sprintf("%s-%d-%d-%d.grib", kind, f, off, n)
	d, ty, st, pa := soakMeta(h)
	o.meta = [4]string{d, ty, st, pa}
	o.bydate = d + "/" + ty + "/" + st + "/" + o.name
	o.byparam = pa + "/" + d + "/" + o.name
	return o
}

// record is the object's NDJSON line; meta adds metadata (`,"k":"v"`),
// top fields beside it (`,"expires":"..."`).
func (o soakObject) record(meta, top string) string {
	return fmt.Sprintf(`{"name":%q,"meta":{"date":%q,"type":%q,"step":%q,"param":%q%s},"location":{"provider":"local","path":%q,"offset":%d,"length":%d},"size":%d%s}`,
		o.name, o.meta[0], o.meta[1], o.meta[2], o.meta[3], meta, soakFilePath(o.file), o.off, o.n, o.n, top)
}

// soakStats gathers what the load's clients saw: latencies per operation
// in the current window, errors per front-end, and objects gone because
// they expired (not an error: the collector is meant to remove them).
type soakStats struct {
	mu       sync.Mutex
	lat      map[string][]time.Duration
	ops      map[string]int
	errs     map[string]int
	first    []string
	expired  int
	ignoring atomic.Bool // after the kill, failures are expected
}

func newSoakStats() *soakStats {
	return &soakStats{lat: map[string][]time.Duration{}, ops: map[string]int{}, errs: map[string]int{}}
}

func (s *soakStats) ok(op string, t0 time.Time) {
	d := time.Since(t0)
	s.mu.Lock()
	s.lat[op] = append(s.lat[op], d)
	s.ops[op]++
	s.mu.Unlock()
}

func (s *soakStats) fail(op, format string, args ...any) {
	if s.ignoring.Load() {
		return
	}
	fe, _, _ := strings.Cut(op, ".")
	s.mu.Lock()
	s.errs[fe]++
	if len(s.first) < 30 {
		s.first = append(s.first, time.Now().Format("15:04:05 ")+op+": "+fmt.Sprintf(format, args...))
	}
	s.mu.Unlock()
}

func (s *soakStats) gone() {
	s.mu.Lock()
	s.expired++
	s.mu.Unlock()
}

// window returns p50/p99 per operation since the last call, and starts a
// new window.
func (s *soakStats) window() map[string][3]time.Duration {
	s.mu.Lock()
	lat := s.lat
	s.lat = map[string][]time.Duration{}
	s.mu.Unlock()
	out := map[string][3]time.Duration{}
	for op, l := range lat {
		slices.Sort(l)
		out[op] = [3]time.Duration{time.Duration(len(l)), l[len(l)/2], l[len(l)*99/100]}
	}
	return out
}

// expiring tells whether an object's name is one of those registered
// with a short expiry time: a not-exist for it is the collector's work.
func expiring(name string) bool { return strings.HasPrefix(path.Base(name), "x-") }

// soakLoad is the mixed load against one server.
type soakLoad struct {
	p                   soakPlan
	st                  *soakStats
	hostKey             gossh.PublicKey
	sftpAddr, s3, dav   string
	admin, token        string
	password            string
	dataDir             string
	s3c                 []*minio.Client
	s3tr                *http.Transport
	davc                *http.Client
	puts                *soakPuts
	regSeq, putSeq      atomic.Int64
	regMu               sync.Mutex
	durable             []soakObject // acknowledged registrations without expiry
	bigNames            []string
	bigSums             map[string][32]byte
	sftpDone, sftpStart atomic.Int64
}

// soakPuts tracks S3 uploads to the inbox: acknowledged ones must be read
// back whole after a crash, those in flight may be there whole or not at
// all, acknowledged deletes must be gone.
type soakPuts struct {
	mu                     sync.Mutex
	acked, pending, delete map[string][32]byte
	deleted                map[string]bool
}

func newSoakPuts() *soakPuts {
	return &soakPuts{acked: map[string][32]byte{}, pending: map[string][32]byte{}, delete: map[string][32]byte{}, deleted: map[string]bool{}}
}

// pick returns object i's view entry at random among the catalogue.
func (l *soakLoad) pick(r *rand.Rand) soakObject {
	i := r.IntN(l.p.objects)
	return soakObj(i, l.p.files, "o", splitmix(uint64(i)))
}

// guard closes c if the operation it guards does not end within the
// plan's operation timeout, so that a hung request fails instead of
// hanging the soak; stop reports whether it fired.
func guard(d time.Duration, c io.Closer) (stop func() bool) {
	var fired atomic.Bool
	tm := time.AfterFunc(d, func() { fired.Store(true); c.Close() })
	return func() bool { tm.Stop(); return fired.Load() }
}

func (l *soakLoad) sftpSession(ctx context.Context, w int, r *rand.Rand) {
	user := fmt.Sprintf("site%d", w%l.p.users)
	t0 := time.Now()
	sc, err := gossh.Dial("tcp", l.sftpAddr, &gossh.ClientConfig{
		User: user, Auth: []gossh.AuthMethod{gossh.Password(l.password)},
		HostKeyCallback: gossh.FixedHostKey(l.hostKey), Timeout: 30 * time.Second,
		HostKeyAlgorithms: []string{gossh.KeyAlgoED25519},
	})
	if err != nil {
		l.st.fail("sftp.login", "%s: %v", user, err)
		sleepCtx(ctx, time.Second)
		return
	}
	defer sc.Close()
	stop := guard(l.p.opTimeout, sc)
	cl, err := pkgsftp.NewClient(sc)
	if stop() || err != nil {
		l.st.fail("sftp.login", "%s: subsystem: %v", user, err)
		return
	}
	l.st.ok("sftp.login", t0)
	l.sftpStart.Add(1)
	defer func() { cl.Close(); l.sftpDone.Add(1) }()
	// A site reconnects now and then: sessions start and end all along.
	for n := 40 + r.IntN(40); n > 0 && ctx.Err() == nil; n-- {
		o := l.pick(r)
		dir := "/bydate/" + path.Dir(o.bydate)
		t0 := time.Now()
		stop := guard(l.p.opTimeout, sc)
		ents, err := cl.ReadDir(dir)
		if stop() {
			l.st.fail("sftp.readdir", "%s: no answer in %v", dir, l.p.opTimeout)
			return
		}
		if err != nil {
			l.st.fail("sftp.readdir", "%s: %v", dir, err)
			continue
		}
		l.st.ok("sftp.readdir", t0)
		if !slices.ContainsFunc(ents, func(e os.FileInfo) bool { return e.Name() == o.name }) {
			l.st.fail("sftp.readdir", "%s: %s not listed (%d entries)", dir, o.name, len(ents))
		}
		for k := 0; k < 2 && len(ents) > 0; k++ {
			name := ents[r.IntN(len(ents))].Name()
			if k == 0 {
				name = o.name
			}
			p := dir + "/" + name
			t0 := time.Now()
			stop := guard(l.p.opTimeout, sc)
			b, err := sftpGet(cl, p)
			if stop() {
				l.st.fail("sftp.read", "%s: no answer in %v", p, l.p.opTimeout)
				return
			}
			switch {
			case err != nil && expiring(name) && errors.Is(err, os.ErrNotExist):
				l.st.gone()
			case err != nil:
				l.st.fail("sftp.read", "%s: %v", p, err)
			default:
				if err := soakCheck(name, b); err != nil {
					l.st.fail("sftp.read", "%s: %v", p, err)
				} else {
					l.st.ok("sftp.read", t0)
				}
			}
		}
	}
}

func sftpGet(cl *pkgsftp.Client, p string) ([]byte, error) {
	f, err := cl.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func s3NotFound(err error) bool {
	r := minio.ToErrorResponse(err)
	return r.StatusCode == http.StatusNotFound || r.Code == "NoSuchKey"
}

func (l *soakLoad) s3Worker(ctx context.Context, w int) {
	r := rand.New(rand.NewPCG(uint64(w), 3))
	c := l.s3c[w%len(l.s3c)]
	put := 0
	var mine []string
	for ctx.Err() == nil {
		octx, cancel := context.WithTimeout(ctx, l.p.opTimeout)
		l.s3Op(octx, c, w, r, &put, &mine)
		cancel()
	}
}

func (l *soakLoad) s3Op(ctx context.Context, c *minio.Client, w int, r *rand.Rand, put *int, mine *[]string) {
	o := l.pick(r)
	t0 := time.Now()
	switch x := r.IntN(100); {
	case x < 40: // GET
		b, err := s3Get(ctx, c, "bydate", o.bydate, minio.GetObjectOptions{})
		if err == nil {
			err = soakCheck(o.name, b)
		}
		l.s3Done("s3.get", t0, ctx, err, o.bydate)
	case x < 55: // HEAD
		info, err := c.StatObject(ctx, "byparam", o.byparam, minio.StatObjectOptions{})
		if err == nil && info.Size != int64(o.n) {
			err = fmt.Errorf("size %d, want %d", info.Size, o.n)
		}
		l.s3Done("s3.head", t0, ctx, err, o.byparam)
	case x < 70: // LIST, then a GET of an entry (an expiring one too)
		prefix := path.Dir(o.bydate) + "/"
		var keys []string
		var err error
		for oi := range c.ListObjects(ctx, "bydate", minio.ListObjectsOptions{Prefix: prefix}) {
			if oi.Err != nil {
				err = oi.Err
				break
			}
			keys = append(keys, oi.Key)
		}
		if err == nil && !slices.Contains(keys, o.bydate) {
			err = fmt.Errorf("%s not listed (%d keys)", o.bydate, len(keys))
		}
		l.s3Done("s3.list", t0, ctx, err, prefix)
		if err == nil {
			k := keys[r.IntN(len(keys))]
			t0 := time.Now()
			b, err := s3Get(ctx, c, "bydate", k, minio.GetObjectOptions{})
			if err == nil {
				err = soakCheck(path.Base(k), b)
			}
			l.s3Done("s3.get", t0, ctx, err, k)
		}
	case x < 85: // PUT to the inbox
		*put++
		key := fmt.Sprintf("w%d/p%d.bin", w, l.putSeq.Add(1))
		body := make([]byte, 1+r.IntN(192<<10))
		for i := range body {
			body[i] = byte(r.Uint32())
		}
		sum := sha256.Sum256(body)
		l.puts.mu.Lock()
		l.puts.pending[key] = sum
		l.puts.mu.Unlock()
		_, err := c.PutObject(ctx, "inbox", key, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{})
		if err == nil {
			l.puts.mu.Lock()
			delete(l.puts.pending, key)
			l.puts.acked[key] = sum
			l.puts.mu.Unlock()
			*mine = append(*mine, key)
		}
		l.s3Done("s3.put", t0, ctx, err, key)
	case x < 95: // DELETE one of this worker's uploads, after a GET of it
		if len(*mine) == 0 {
			return
		}
		key := (*mine)[0]
		*mine = (*mine)[1:]
		l.puts.mu.Lock()
		sum := l.puts.acked[key]
		l.puts.delete[key] = sum
		delete(l.puts.acked, key)
		l.puts.mu.Unlock()
		b, err := s3Get(ctx, c, "inbox", key, minio.GetObjectOptions{})
		if err == nil && sha256.Sum256(b) != sum {
			err = fmt.Errorf("wrong bytes (%d)", len(b))
		}
		l.s3Done("s3.get", t0, ctx, err, key)
		t0 = time.Now()
		err = c.RemoveObject(ctx, "inbox", key, minio.RemoveObjectOptions{})
		if err == nil {
			l.puts.mu.Lock()
			delete(l.puts.delete, key)
			l.puts.deleted[key] = true
			l.puts.mu.Unlock()
		}
		l.s3Done("s3.delete", t0, ctx, err, key)
	default: // a large object, whole or a range
		name := l.bigNames[r.IntN(len(l.bigNames))]
		m := soakNameRE.FindStringSubmatch(name)
		size, _ := strconv.Atoi(m[3])
		f, _ := strconv.Atoi(m[1])
		if r.IntN(2) == 0 {
			b, err := s3Get(ctx, c, "big", name, minio.GetObjectOptions{})
			if err == nil && sha256.Sum256(b) != l.bigSums[name] {
				err = fmt.Errorf("wrong bytes (%d)", len(b))
			}
			l.s3Done("s3.getbig", t0, ctx, err, name)
			return
		}
		off := r.IntN(size - 1<<20)
		var opts minio.GetObjectOptions
		opts.SetRange(int64(off), int64(off+1<<20-1))
		b, err := s3Get(ctx, c, "big", name, opts)
		if err == nil && !bytes.Equal(b, soakBytes(f, off, 1<<20)) {
			err = fmt.Errorf("range %d: wrong bytes (%d)", off, len(b))
		}
		l.s3Done("s3.range", t0, ctx, err, name)
	}
}

func (l *soakLoad) s3Done(op string, t0 time.Time, ctx context.Context, err error, key string) {
	switch {
	case err == nil:
		l.st.ok(op, t0)
	case expiring(key) && s3NotFound(err):
		l.st.gone()
	case ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded):
		// the load ended mid-request
	default:
		l.st.fail(op, "%s: %v", key, err)
	}
}

func s3Get(ctx context.Context, c *minio.Client, bucket, key string, opts minio.GetObjectOptions) ([]byte, error) {
	o, err := c.GetObject(ctx, bucket, key, opts)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return io.ReadAll(o)
}

func (l *soakLoad) davWorker(ctx context.Context, w int) {
	r := rand.New(rand.NewPCG(uint64(w), 5))
	user := fmt.Sprintf("site%d", w%l.p.users)
	do := func(method, p string, hdr ...string) (int, []byte, error) {
		octx, cancel := context.WithTimeout(ctx, l.p.opTimeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(octx, method, "http://"+l.dav+p, nil)
		req.SetBasicAuth(user, l.password)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := l.davc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	for ctx.Err() == nil {
		o := l.pick(r)
		dir := "/byparam/" + path.Dir(o.byparam) + "/"
		t0 := time.Now()
		code, body, err := do("PROPFIND", dir, "Depth", "1")
		if ctx.Err() != nil {
			return
		}
		if err != nil || code != http.StatusMultiStatus {
			l.st.fail("dav.propfind", "%s: %d %v", dir, code, err)
			continue
		}
		l.st.ok("dav.propfind", t0)
		var names []string
		for _, m := range hrefRE.FindAllStringSubmatch(string(body), -1) {
			if n := path.Base(m[1]); strings.HasSuffix(m[1], ".grib") {
				names = append(names, n)
			}
		}
		if !slices.Contains(names, o.name) {
			l.st.fail("dav.propfind", "%s: %s not listed (%d entries)", dir, o.name, len(names))
			continue
		}
		for k := range 2 {
			name := o.name
			if k == 1 {
				name = names[r.IntN(len(names))]
			}
			t0 := time.Now()
			code, b, err := do("GET", dir+name)
			switch {
			case ctx.Err() != nil:
				return
			case code == http.StatusNotFound && expiring(name):
				l.st.gone()
			case err != nil || code != http.StatusOK:
				l.st.fail("dav.get", "%s: %d %v", dir+name, code, err)
			default:
				if err := soakCheck(name, b); err != nil {
					l.st.fail("dav.get", "%v", err)
				} else {
					l.st.ok("dav.get", t0)
				}
			}
		}
	}
}

// register runs once a second: a new provider file and objects over it
// registered through the admin API, most expiring within seconds (for the
// collector), two kept (checked after the crash).
func (l *soakLoad) register(ctx context.Context) {
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		seq := int(l.regSeq.Add(1))
		f := 1_000_000 + seq
		p := l.dataDir + "/import/" + soakFilePath(f)
		if err := os.WriteFile(p, soakBytes(f, 0, soakFileSize), 0o644); err != nil {
			l.st.fail("admin.register", "%v", err)
			continue
		}
		var body strings.Builder
		var keep []soakObject
		for j := range 14 {
			kind, top := "x", fmt.Sprintf(`,"expires":%q`, time.Now().Add(time.Duration(2+j%6)*time.Second).UTC().Format(time.RFC3339Nano))
			if j >= 12 {
				kind, top = "n", ""
			}
			o := soakObject{file: f, off: j * 4096, n: 4096}
			o.name = fmt.Sprintf("%s-%d-%d-%d.grib", kind, f, o.off, o.n)
			d, ty, st, pa := soakMeta(splitmix(uint64(f)<<8 | uint64(j)))
			o.meta = [4]string{d, ty, st, pa}
			o.bydate = d + "/" + ty + "/" + st + "/" + o.name
			o.byparam = pa + "/" + d + "/" + o.name
			if kind == "n" {
				keep = append(keep, o)
			}
			body.WriteString(o.record(`,"origin":"admin"`, top) + "\n")
		}
		t0 := time.Now()
		octx, cancel := context.WithTimeout(ctx, l.p.opTimeout)
		req, _ := http.NewRequestWithContext(octx, "POST", l.admin+"/api/v1/objects", strings.NewReader(body.String()))
		req.Header.Set("Authorization", "Bearer "+l.token)
		resp, err := http.DefaultClient.Do(req)
		var out []byte
		if err == nil {
			out, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil || resp.StatusCode != http.StatusOK:
			l.st.fail("admin.register", "%v %s", err, out)
		default:
			l.st.ok("admin.register", t0)
			l.regMu.Lock()
			l.durable = append(l.durable, keep...)
			l.regMu.Unlock()
		}
	}
}
