package httpserve

import (
	"fmt"
	"testing"
	"time"
)

func TestPenalty(t *testing.T) {
	p := NewPenalty(2, time.Minute)
	now := time.Unix(1e9, 0)
	p.Fail("a", now)
	if w := p.Blocked("a", now); w != 0 {
		t.Fatalf("one failure of two: blocked %v", w)
	}
	p.Fail("a", now.Add(time.Second))
	if w := p.Blocked("a", now.Add(2*time.Second)); w != 59*time.Second {
		t.Fatalf("two failures: blocked %v, want 59s", w)
	}
	if w := p.Blocked("b", now); w != 0 {
		t.Fatalf("another address: blocked %v", w)
	}
	if w := p.Blocked("a", now.Add(61*time.Second)); w != 0 {
		t.Fatalf("after the wait: blocked %v", w)
	}
	// Failures further apart than the wait do not add up; a success
	// forgets them.
	p.Fail("c", now)
	p.Fail("c", now.Add(2*time.Minute))
	p.Fail("d", now)
	p.OK("d")
	p.Fail("d", now)
	if p.Blocked("c", now.Add(2*time.Minute)) != 0 || p.Blocked("d", now) != 0 {
		t.Fatal("failures counted across a wait or a success")
	}
	// A flood of addresses does not grow memory without bound.
	for i := range 3 * penaltyTracked {
		p.Fail(fmt.Sprint("flood-", i), now)
	}
	if n := len(p.m); n > penaltyTracked {
		t.Fatalf("%d addresses remembered, at most %d", n, penaltyTracked)
	}
}
