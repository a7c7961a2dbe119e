package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/local"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
	"github.com/datagate/datagate/fs/ingest"
	"github.com/datagate/datagate/fs/pathtmpl"
	"github.com/datagate/datagate/fs/store"
)

func newStore(t *testing.T) (*store.Store, *local.Provider) {
	t.Helper()
	src, err := local.New("disk", local.Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	primary, _ := local.New(store.PrimaryName, local.Config{Root: filepath.Join(dir, "objects")})
	st, err := store.Open(context.Background(), store.Options{Dir: dir, Primary: primary,
		Providers: map[string]backends.Provider{"disk": src}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, src
}

func count(t *testing.T, st *store.Store, k, v string) int {
	n := 0
	st.Find(context.Background(), []index.Cond{{Key: k, Value: v}}, index.FindOptions{}, func(*fs.Object) error { n++; return nil })
	return n
}

func rec(i int) string {
	return fmt.Sprintf(`{"name":"o%d","meta":{"set":"s"},"location":{"provider":"disk","path":"f%d"},"size":10}`, i, i)
}

func TestRegisterBatches(t *testing.T) {
	st, _ := newStore(t)
	ctx := context.Background()
	var lines []string
	for i := 0; i < 7; i++ {
		lines = append(lines, rec(i))
	}
	lines = append(lines, "", rec(7))
	res, err := ingest.Register(ctx, st, strings.NewReader(strings.Join(lines, "\n")), 3, nil)
	if err != nil || res.Added != 8 || res.Batches != 3 {
		t.Fatalf("register: %+v %v", res, err)
	}
	// Idempotent.
	res, err = ingest.Register(ctx, st, strings.NewReader(strings.Join(lines, "\n")), 3, nil)
	if err != nil || res.Unchanged != 8 || res.Added != 0 {
		t.Fatalf("again: %+v %v", res, err)
	}
}

func TestRegisterMalformedLine(t *testing.T) {
	for name, bad := range map[string]string{
		"bad json":         `{"name":`,
		"unknown field":    `{"nmae":"x","location":{"provider":"disk","path":"p"}}`,
		"no location":      `{"name":"x"}`,
		"unknown provider": `{"location":{"provider":"nope","path":"p"}}`,
		"bad md5":          `{"location":{"provider":"disk","path":"p"},"md5":"xyz"}`,
		"two values":       `{"location":{"provider":"disk","path":"p"}} {}`,
	} {
		t.Run(name, func(t *testing.T) {
			st, _ := newStore(t)
			// Batches of 2: lines 1-2 apply, line 3 is good but shares a
			// batch with bad line 4, line 5 is never read.
			in := strings.Join([]string{rec(1), rec(2), rec(3), bad, rec(5)}, "\n")
			res, err := ingest.Register(context.Background(), st, strings.NewReader(in), 2, nil)
			var le *ingest.LineError
			if !errors.As(err, &le) || le.Line != 4 || le.BatchFirst != 3 {
				t.Fatalf("err = %v, want a LineError at line 4 for the batch from line 3", err)
			}
			if !strings.Contains(err.Error(), "line 4") {
				t.Errorf("message does not name the line: %v", err)
			}
			if res.Added != 2 || count(t, st, "set", "s") != 2 {
				t.Fatalf("applied %d (catalogue %d), want exactly the first batch of 2", res.Added, count(t, st, "set", "s"))
			}
		})
	}
}

// An input cut inside a line (a client gone mid-upload) was reported as
// that line's malformed JSON, "invalid" in the audit log: it is the read
// error, with the batches applied before it.
func TestRegisterCutInput(t *testing.T) {
	st, _ := newStore(t)
	in := io.MultiReader(strings.NewReader(rec(1)+"\n"+rec(2)+"\n"+rec(3)[:20]), iotest.ErrReader(io.ErrUnexpectedEOF))
	res, err := ingest.Register(context.Background(), st, in, 2, nil)
	var le *ingest.LineError
	if err == nil || errors.As(err, &le) || !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("cut input: %v, want the read error naming line 3, not a line error", err)
	}
	if res.Added != 2 {
		t.Fatalf("cut input: %+v, want the first batch applied", res)
	}
}

func TestRegisterHugeLine(t *testing.T) {
	st, _ := newStore(t)
	in := rec(1) + "\n" + `{"name":"` + strings.Repeat("x", ingest.MaxLine+10) + `"}`
	_, err := ingest.Register(context.Background(), st, strings.NewReader(in), 10, nil)
	var le *ingest.LineError
	if !errors.As(err, &le) || le.Line != 2 {
		t.Fatalf("huge line: %v", err)
	}
	if count(t, st, "set", "s") != 0 {
		t.Fatal("the batch with the huge line was applied")
	}
}

func TestCrawlIdempotentAndPicksUpChanges(t *testing.T) {
	st, src := newStore(t)
	ctx := context.Background()
	write := func(p, content string) {
		full := filepath.Join(src.Root(), p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("obs/2026-11-22/synop.bufr", "synop")
	write("obs/2026-11-22/temp.bufr", "temp")
	write("fc/2026-11-22/t2m.grib", "t2m")
	write("fc/2026-11-22/readme.txt", "skip me")
	write("odd.bufr", "does not fit the template")
	opts := ingest.CrawlOptions{Match: "*.b*", Template: pathtmpl.MustParse("{type}/{date}/{name}"), Meta: map[string]string{"origin": "crawl"}}
	stats, err := ingest.Crawl(ctx, st, src, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Listed != 5 || stats.Added != 2 || stats.Skipped != 3 {
		t.Fatalf("first crawl: %+v", stats)
	}
	var o *fs.Object
	st.Find(ctx, []index.Cond{{Key: "type", Value: "obs"}, {Key: "date", Value: "2026-11-22"}}, index.FindOptions{}, func(x *fs.Object) error {
		if x.Name == "synop.bufr" {
			o = x
		}
		return nil
	})
	if o == nil || o.Meta["origin"] != "crawl" || o.Size != 5 || o.Meta["name"] != "" {
		t.Fatalf("crawled object: %+v", o)
	}
	stats, _ = ingest.Crawl(ctx, st, src, opts, nil)
	if stats.Added != 0 || stats.Unchanged != 2 {
		t.Fatalf("second crawl: %+v", stats)
	}
	time.Sleep(10 * time.Millisecond)
	write("obs/2026-11-22/synop.bufr", "synop, corrected")
	stats, _ = ingest.Crawl(ctx, st, src, opts, nil)
	if stats.Updated != 1 || stats.Unchanged != 1 {
		t.Fatalf("crawl after a change: %+v", stats)
	}
	n, _ := st.Get(ctx, o.ID)
	if n.Size != int64(len("synop, corrected")) || n.Version != 1 {
		t.Fatalf("changed object: size %d version %d", n.Size, n.Version)
	}
	if _, err := ingest.Crawl(ctx, st, src, ingest.CrawlOptions{Match: "[", Template: opts.Template}, nil); fs.KindOf(err) != fs.Invalid {
		t.Fatalf("bad glob: %v", err)
	}
}

func TestCrawlRules(t *testing.T) {
	st, src := newStore(t)
	ctx := context.Background()
	now := time.Now()
	for name, size := range map[string]int{"a/old.grib": 10, "a/new.grib": 10, "a/empty.grib": 0, "a/big.grib": 1000, "b/x.txt": 10} {
		p := filepath.Join(src.Root(), name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, make([]byte, size), 0o644)
		mt := now.Add(-time.Hour)
		if name == "a/new.grib" {
			mt = now
		}
		os.Chtimes(p, mt, mt)
	}
	opts := ingest.CrawlOptions{Regexp: regexp.MustCompile(`^a/.*\.grib$`), MinAge: time.Minute, MinSize: 1, MaxSize: 100}
	stats, err := ingest.Crawl(ctx, st, src, opts, nil)
	if err != nil || stats.Added != 1 || stats.Skipped != 4 {
		t.Fatalf("crawl with rules: %+v %v", stats, err)
	}
	if _, err := st.Index().BySource(ctx, fs.Location{Provider: "disk", Path: "a/old.grib"}); err != nil {
		t.Fatalf("a/old.grib not registered: %v", err)
	}
}
