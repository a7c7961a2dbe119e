package index

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/datagate/datagate/fs"
)

// A write that derived its keys under the old rules and would commit
// after a fence is sent back and derives again: no key of the old rules
// is written after the fence, whatever the timing.
func TestFenceDerivations(t *testing.T) {
	var rules atomic.Value
	rules.Store("old")
	var calls atomic.Int32
	hold := make(chan struct{}) // closed: derivations no longer held
	derived := make(chan struct{})
	derive := func(o *fs.Object) []Derived {
		r := rules.Load()
		if o.Meta["k"] == "2" && calls.Add(1) == 1 {
			// The update's new version, derived under the old rules;
			// the rules change and are fenced before it commits.
			close(derived)
			<-hold
		}
		return []Derived{{Key: fmt.Appendf(nil, "%s/%s", r, o.Name)}}
	}
	ix := openTest(t, t.TempDir(), derive)
	defer ix.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o := newObj("a", map[string]string{"k": "1"})
	if err := ix.Insert(ctx, o); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := ix.Update(ctx, o.ID, func(n *fs.Object) error { n.Meta["k"] = "2"; return nil })
		done <- err
	}()
	<-derived
	rules.Store("new")
	if err := ix.FenceDerivations(); err != nil {
		t.Fatal(err)
	}
	close(hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := ix.Derived(ctx, DerivedOptions{}, func(k, _ []byte) error {
		keys = append(keys, string(k))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The update was redone under the new rules; the insert's key, from
	// before the fence, is left for the rules' owner to sweep.
	if fmt.Sprint(keys) != "[new/a old/a]" || calls.Load() < 2 {
		t.Fatalf("derived keys %v after %d derivations of the update", keys, calls.Load())
	}
}
