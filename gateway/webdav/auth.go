package webdav

import (
	"crypto/sha256"
	"net/http"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/datagate/datagate/gateway/httpserve"
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

// authenticate checks the request's Basic credentials, sent from addr.
// An unknown user costs a bcrypt comparison too, so timing does not tell
// users apart. busy: addr has too many checks in flight (s.logins), this
// one was not made.
func (s *Server) authenticate(r *http.Request, addr string) (user string, ok, busy bool) {
	user, pass, ok := r.BasicAuth()
	if !ok || user == "" {
		return "", false, false
	}
	hash, known := s.opts.PasswordHash(user)
	if !known || len(hash) == 0 {
		ok, admitted := s.logins.Check(addr, authKey(user, s.dummyHash, pass), func() bool {
			bcrypt.CompareHashAndPassword(s.dummyHash, []byte(pass))
			return false
		})
		return "", ok, !admitted
	}
	k := authKey(user, hash, pass)
	now := time.Now()
	if s.auth.hit(k, now) {
		return user, true, false
	}
	ok, admitted := s.logins.Check(addr, k, func() bool {
		return bcrypt.CompareHashAndPassword(hash, []byte(pass)) == nil
	})
	if !admitted {
		return "", false, true
	}
	if !ok {
		return "", false, false
	}
	s.auth.add(k, now)
	return user, true, false
}

// penaltyBox is the penalty the HTTP front-ends share (httpserve.Penalty),
// under the names the server already uses.
type penaltyBox struct{ p *httpserve.Penalty }

func newPenaltyBox(max int, wait time.Duration) *penaltyBox {
	return &penaltyBox{httpserve.NewPenalty(max, wait)}
}

func (b *penaltyBox) blocked(addr string, now time.Time) time.Duration {
	return b.p.Blocked(addr, now)
}
func (b *penaltyBox) fail(addr string, now time.Time) { b.p.Fail(addr, now) }
func (b *penaltyBox) ok(addr string)                  { b.p.OK(addr) }
