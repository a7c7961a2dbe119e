package webdav

import (
	"crypto/sha256"
	"net/http"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// authCache remembers successful password checks for a short while, so a
// client that sends Basic credentials with every request pays bcrypt once
// per TTL, not per request. Keys are SHA-256 of user, stored hash and
// password: the password itself is never kept, and a changed hash in the
// configuration misses the cache.
type authCache struct {
	ttl time.Duration
	max int

	mu sync.Mutex
	// guarded by mu
	ok map[[32]byte]time.Time // key -> expiry
}

func newAuthCache(ttl time.Duration, max int) *authCache {
	return &authCache{ttl: ttl, max: max, ok: map[[32]byte]time.Time{}}
}

func authKey(user string, hash []byte, password string) [32]byte {
	h := sha256.New()
	h.Write([]byte(user))
	h.Write([]byte{0})
	h.Write(hash)
	h.Write([]byte{0})
	h.Write([]byte(password))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func (c *authCache) hit(k [32]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.ok[k]
	if ok && now.Before(exp) {
		return true
	}
	if ok {
		delete(c.ok, k)
	}
	return false
}

func (c *authCache) add(k [32]byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ok) >= c.max {
		for key, exp := range c.ok {
			if !now.Before(exp) {
				delete(c.ok, key)
			}
		}
		if len(c.ok) >= c.max {
			clear(c.ok) // bounded memory beats a warm cache
		}
	}
	c.ok[k] = now.Add(c.ttl)
}

// authenticate checks the request's Basic credentials. An unknown user
// costs a bcrypt comparison too, so timing does not tell users apart.
func (s *Server) authenticate(r *http.Request) (string, bool) {
	user, pass, ok := r.BasicAuth()
	if !ok || user == "" {
		return "", false
	}
	hash, known := s.opts.PasswordHash(user)
	if !known || len(hash) == 0 {
		bcrypt.CompareHashAndPassword(s.dummyHash, []byte(pass))
		return "", false
	}
	k := authKey(user, hash, pass)
	now := time.Now()
	if s.auth.hit(k, now) {
		return user, true
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil {
		return "", false
	}
	s.auth.add(k, now)
	return user, true
}

// penaltyBox makes an address that failed to log in too often wait,
// answered 429 without a bcrypt comparison: failed guesses cannot be
// used to burn the server's CPU or to guess fast.
type penaltyBox struct {
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

func newPenaltyBox(max int, wait time.Duration) *penaltyBox {
	return &penaltyBox{max: max, wait: wait, m: map[string]*strikes{}}
}

// blocked reports how long addr must still wait.
func (p *penaltyBox) blocked(addr string, now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.m[addr]; s != nil && now.Before(s.until) {
		return s.until.Sub(now)
	}
	return 0
}

// fail counts a failed login; the max-th in a row starts the wait.
func (p *penaltyBox) fail(addr string, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.m) >= 10000 {
		for a, s := range p.m {
			if now.Sub(s.last) > p.wait {
				delete(p.m, a)
			}
		}
		if len(p.m) >= 10000 {
			clear(p.m)
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

// ok forgets addr's failures after a successful login.
func (p *penaltyBox) ok(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, addr)
}
