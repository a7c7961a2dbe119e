package views

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
)

// Two uploads to one path that both begin before either commits: the
// second to commit finds the first's object beside its own, one
// collision. A plain overwrite is none: it replaces in its transaction.
func TestCollisionsCounted(t *testing.T) {
	e := newEnv(t, twoViews)
	ctx := ctxT(t)
	tr := e.tree("alice", map[string]Rights{"by-date": All, "by-type": All})
	const p = "by-date/d1/obs/same.txt"
	for i := range 2 {
		if _, err := tr.Create(ctx, p, strings.NewReader(fmt.Sprint("v", i)), CreateOptions{Size: -1}); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.set.Collisions(); n != 0 {
		t.Fatalf("after overwrites: %d collisions, want 0", n)
	}
	var started sync.WaitGroup
	pws := make([]*io.PipeWriter, 2)
	dones := make([]chan struct{}, 2)
	for i := range pws {
		pr, pw := io.Pipe()
		pws[i], dones[i] = pw, make(chan struct{})
		started.Add(1)
		go func() {
			defer close(dones[i])
			if _, err := tr.Create(ctx, p, &firstRead{r: pr, once: started.Done}, CreateOptions{Size: -1}); err != nil {
				t.Error(err)
			}
		}()
	}
	started.Wait() // both planned what they replace: the old object only
	// One after the other, so the second finds the first committed.
	for i, pw := range pws {
		fmt.Fprint(pw, "concurrent")
		pw.Close()
		<-dones[i]
	}
	if n := e.set.Collisions(); n != 1 {
		t.Fatalf("after two concurrent uploads: %d collisions, want 1", n)
	}
}
