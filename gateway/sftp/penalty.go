package sftp

import (
	"sync"
	"time"
)

// penaltyBox counts failed logins per source address: after max failures
// less than d apart, the address is refused for d. A small defence
// against password guessing, like OpenSSH's PerSourcePenalties. Memory is
// bounded: at most maxTracked addresses are remembered.
type penaltyBox struct {
	// immutable after newPenaltyBox
	max int
	d   time.Duration

	mu sync.Mutex
	// guarded by mu
	addrs map[string]*penaltyRec
}

type penaltyRec struct {
	failures int
	last     time.Time // last failure
	until    time.Time // refused until then
	told     bool      // the log was told of this penalty's refusals
}

const maxTracked = 10000

func newPenaltyBox(max int, d time.Duration) *penaltyBox {
	return &penaltyBox{max: max, d: d, addrs: map[string]*penaltyRec{}}
}

// fail records a failed login from addr.
func (p *penaltyBox) fail(addr string) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.addrs[addr]
	if r == nil {
		if len(p.addrs) >= maxTracked {
			p.prune(now)
		}
		r = &penaltyRec{}
		p.addrs[addr] = r
	}
	if now.Sub(r.last) > p.d {
		r.failures = 0
	}
	r.failures++
	r.last = now
	if r.failures >= p.max {
		r.until = now.Add(p.d)
		r.failures = 0
		r.told = false
	}
}

// blocked reports whether addr is serving a penalty, and until when;
// first is true for the penalty's first refusal only, which the caller
// logs: a blocked client connecting in a loop wrote a warning per
// connection (1.5 MB of log a second).
func (p *penaltyBox) blocked(addr string) (until time.Time, ok, first bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.addrs[addr]
	if r == nil || !time.Now().Before(r.until) {
		return time.Time{}, false, false
	}
	first = !r.told
	r.told = true
	return r.until, true, first
}

// prune forgets stale addresses, or if none is stale, any half of them:
// a flood of addresses must not grow memory without bound.
func (p *penaltyBox) prune(now time.Time) {
	for a, r := range p.addrs {
		if now.Sub(r.last) > p.d && !now.Before(r.until) {
			delete(p.addrs, a)
		}
	}
	for a := range p.addrs {
		if len(p.addrs) < maxTracked/2 {
			break
		}
		delete(p.addrs, a)
	}
}
