package httpserve

import "sync"

// Logins bounds the password checks (bcrypt, tens of milliseconds of
// CPU each) that one address has in flight. The Penalty counts a failure
// once its check is over, so requests sent at once all passed its test:
// 300 concurrent wrong passwords from one address were 300 bcrypt
// comparisons (18 s of CPU) and 300 guesses where the penalty allows 10.
// Checks of the same login (a client starting 32 transfers with one
// password, before the first is remembered) share one comparison and do
// not count against the bound. Safe for concurrent use.
type Logins struct {
	max int // immutable after NewLogins

	mu sync.Mutex
	// guarded by mu
	calls   map[[32]byte]*loginCall // by login digest
	perAddr map[string]int          // checks in flight
}

type loginCall struct {
	done chan struct{}
	ok   bool // set before done is closed
}

// NewLogins returns Logins that let an address have n checks of
// different logins in flight (at least 1).
func NewLogins(n int) *Logins {
	return &Logins{max: max(n, 1), calls: map[[32]byte]*loginCall{}, perAddr: map[string]int{}}
}

// Check runs check for the login whose digest is key, sent from addr,
// and returns its result. When addr already has max checks of other
// logins in flight, check is not run and admitted is false: the caller
// answers "too many logins at once" (429), not "wrong password". A check
// of the same key in flight is waited for and its result shared.
func (l *Logins) Check(addr string, key [32]byte, check func() bool) (ok, admitted bool) {
	l.mu.Lock()
	if c := l.calls[key]; c != nil {
		l.mu.Unlock()
		<-c.done
		return c.ok, true
	}
	if l.perAddr[addr] >= l.max {
		l.mu.Unlock()
		return false, false
	}
	c := &loginCall{done: make(chan struct{})}
	l.calls[key] = c
	l.perAddr[addr]++
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.calls, key)
		if l.perAddr[addr]--; l.perAddr[addr] <= 0 {
			delete(l.perAddr, addr)
		}
		l.mu.Unlock()
		close(c.done)
	}()
	c.ok = check()
	return c.ok, true
}
