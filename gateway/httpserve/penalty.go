package httpserve

import (
	"sync"
	"time"
)

// Penalty makes an address that failed to log in too often wait: the
// front-end answers it 429 without a bcrypt comparison, so failed guesses
// can neither burn the server's CPU nor guess fast. Failures count
// together while less than the wait apart. Memory is bounded: at most
// penaltyTracked addresses are remembered. Safe for concurrent use.
type Penalty struct {
	// immutable after NewPenalty
	max  int
	wait time.Duration

	mu sync.Mutex
	// guarded by mu
	m map[string]*strikes
}

type strikes struct {
	n     int
	last  time.Time
	until time.Time
}

const penaltyTracked = 10000

// NewPenalty returns a Penalty that makes an address wait for wait after
// max failures in a row.
func NewPenalty(max int, wait time.Duration) *Penalty {
	return &Penalty{max: max, wait: wait, m: map[string]*strikes{}}
}

// Blocked reports how long addr must still wait (0: it may log in).
func (p *Penalty) Blocked(addr string, now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.m[addr]; s != nil && now.Before(s.until) {
		return s.until.Sub(now)
	}
	return 0
}

// Fail counts a failed login; the max-th in a row starts the wait.
func (p *Penalty) Fail(addr string, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.m) >= penaltyTracked {
		for a, s := range p.m {
			if now.Sub(s.last) > p.wait && !now.Before(s.until) {
				delete(p.m, a)
			}
		}
		if len(p.m) >= penaltyTracked {
			clear(p.m) // bounded memory beats remembering a flood
		}
	}
	s := p.m[addr]
	if s == nil || now.Sub(s.last) > p.wait {
		s = &strikes{}
		p.m[addr] = s
	}
	s.n++
	s.last = now
	if s.n >= p.max {
		s.n, s.until = 0, now.Add(p.wait)
	}
}

// OK forgets addr's failures after a successful login.
func (p *Penalty) OK(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, addr)
}
