package httpserve

import (
	"sync"
	"testing"
)

// An address has at most n checks of different logins in flight; other
// addresses are not held back. (Checks of one login sharing one check:
// webdav's TestConcurrentLoginsAreBounded.)
func TestLoginsBoundChecksInFlight(t *testing.T) {
	l := NewLogins(2)
	release := make(chan struct{})
	var ran sync.WaitGroup
	var wg sync.WaitGroup
	results := make([]bool, 4)
	for i, k := range []byte{1, 2, 1, 1} {
		if k == 1 && i > 0 {
			continue // started below, once key 1's check runs
		}
		ran.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, admitted := l.Check("a", [32]byte{k}, func() bool { ran.Done(); <-release; return k == 1 })
			results[i] = ok && admitted
		}()
	}
	ran.Wait() // keys 1 and 2 are being checked for "a"
	if _, admitted := l.Check("a", [32]byte{3}, func() bool { t.Error("a third login was checked"); return true }); admitted {
		t.Error("a third login from the same address was admitted")
	}
	if ok, admitted := l.Check("b", [32]byte{4}, func() bool { return true }); !ok || !admitted {
		t.Error("another address was held back")
	}
	for _, i := range []int{2, 3} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Shares the check in flight, or runs its own if that one
			// is over: either way the answer of key 1.
			ok, admitted := l.Check("a", [32]byte{1}, func() bool { return true })
			results[i] = ok && admitted
		}()
	}
	close(release)
	wg.Wait()
	if !results[0] || results[1] || !results[2] || !results[3] {
		t.Errorf("results %v", results)
	}
	if len(l.calls) != 0 || len(l.perAddr) != 0 {
		t.Errorf("left behind: %v, %v", l.calls, l.perAddr)
	}
}
