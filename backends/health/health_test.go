package health

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"sync"
	"testing"
	"time"

	"github.com/datagate/datagate/backends"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestBackoffAndProbe(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	tr := New(Options{Base: time.Second, Max: 8 * time.Second, Now: c.now})
	if !tr.Usable("a") || !tr.Healthy("a") {
		t.Fatal("a fresh location is not usable")
	}
	tr.Failure("a")
	if tr.Usable("a") || tr.Healthy("a") {
		t.Fatal("a failed location is usable at once")
	}
	c.add(1250 * time.Millisecond) // beyond 1s + 25 %
	if !tr.Usable("a") {
		t.Fatal("not usable after its back-off")
	}
	if tr.Usable("a") {
		t.Fatal("a second caller got the probe too")
	}
	tr.Release("a") // the prober gave up before asking: still due
	if !tr.Usable("a") {
		t.Fatal("a released probe is not offered again")
	}
	tr.Failure("a") // the probe failed: back-off doubles
	c.add(1250 * time.Millisecond)
	if tr.Usable("a") {
		t.Fatal("back-off did not grow after a failed probe")
	}
	c.add(2 * time.Second)
	if !tr.Usable("a") {
		t.Fatal("not usable after the doubled back-off")
	}
	tr.Success("a")
	if !tr.Healthy("a") || !tr.Usable("a") {
		t.Fatal("success did not restore health")
	}
	for range 20 {
		tr.Failure("b")
	}
	c.add(10 * time.Second) // Max 8s + 25 %
	if !tr.Usable("b") {
		t.Fatal("back-off exceeds Max")
	}
}

func TestOrder(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	tr := New(Options{Base: time.Second, Max: time.Minute, Now: c.now})
	tr.Failure("a")
	tr.Failure("b")
	tr.Failure("b")
	got := fmt.Sprint(tr.Order([]string{"b", "a", "c", "d"}))
	if got != "[c d a b]" {
		t.Fatalf("Order = %s, want [c d a b]", got)
	}
}

func TestReportAndFault(t *testing.T) {
	tr := New(Options{})
	if err := tr.Report("x", fmt.Errorf("open: %w", iofs.ErrNotExist)); err == nil || !tr.Healthy("x") {
		t.Fatal("a missing file marked the location down (or the error was lost)")
	}
	tr.Report("x", fmt.Errorf("get: %w", backends.ErrUnavailable))
	if tr.Healthy("x") {
		t.Fatal("an unavailable location stays healthy")
	}
	tr.Report("x", nil)
	if !tr.Healthy("x") {
		t.Fatal("success did not count")
	}
	for _, c := range []struct {
		err   error
		fault bool
	}{
		{nil, false},
		{iofs.ErrPermission, false},
		{iofs.ErrInvalid, false},
		{backends.ErrUnavailable, true},
		{backends.ErrNoSpace, true},
		{errors.New("connection reset"), true},
	} {
		if Fault(c.err) != c.fault {
			t.Errorf("Fault(%v) = %v", c.err, !c.fault)
		}
	}
}
