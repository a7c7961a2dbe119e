package views

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/datagate/datagate/fs"
)

// Uploads to one path that all begin before any of them commits: each
// saw only the old object when it began, yet exactly one object stays at
// the path (the one begun last), in the catalogue as in every view.
func TestConcurrentCreatesLeaveOneObject(t *testing.T) {
	e := newEnv(t, twoViews)
	ctx := ctxT(t)
	tr := e.tree("alice", map[string]Rights{"by-date": All, "by-type": All})
	const p = "by-date/d1/obs/same.txt"
	if _, err := tr.Create(ctx, p, strings.NewReader("old"), CreateOptions{Size: -1}); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var started, done sync.WaitGroup
	pws := make([]*io.PipeWriter, n)
	errs := make([]error, n)
	for i := range n {
		pr, pw := io.Pipe()
		pws[i] = pw
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			_, errs[i] = tr.Create(ctx, p, &firstRead{r: pr, once: started.Done}, CreateOptions{Size: -1})
		}()
	}
	started.Wait() // every upload planned its replacement and reads its body
	for i, pw := range pws {
		fmt.Fprintf(pw, "version %d", i)
		pw.Close()
	}
	done.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("upload %d: %v", i, err)
		}
	}
	for _, vp := range []string{p, "by-type/obs/d1/same.txt"} {
		l, err := tr.resolve("test", vp)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := idsAt(ctx, e.st.Index(), l.view.name, l.vp)
		if err != nil || len(ids) != 1 {
			t.Fatalf("%s: objects %v, err %v; want exactly one", vp, ids, err)
		}
	}
	total := 0
	if err := e.st.Index().Walk(ctx, fs.ID{}, func(*fs.Object) error { total++; return nil }); err != nil {
		t.Fatal(err)
	}
	if total != 1 {
		t.Fatalf("catalogue holds %d objects, want 1", total)
	}
}

// firstRead calls once when the body is first read: the upload has passed
// its checks and planned what it replaces.
type firstRead struct {
	r    io.Reader
	once func()
	did  bool
}

func (f *firstRead) Read(p []byte) (int, error) {
	if !f.did {
		f.did = true
		f.once()
	}
	return f.r.Read(p)
}
