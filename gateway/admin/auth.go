package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/datagate/datagate/gateway/httpserve"
)

// Role is what an admin user may do.
type Role uint8

const (
	// RoleNone may do nothing; it is the zero Role so that a forgotten
	// role grants nothing.
	RoleNone Role = iota
	// RoleRead may use every GET route.
	RoleRead
	// RoleFull may use every route.
	RoleFull
)

// ParseRole parses "read" or "full".
func ParseRole(s string) (Role, error) {
	switch s {
	case "read":
		return RoleRead, nil
	case "full":
		return RoleFull, nil
	}
	return RoleNone, fmt.Errorf("role %q: want read or full", s)
}

func (r Role) String() string {
	switch r {
	case RoleRead:
		return "read"
	case RoleFull:
		return "full"
	}
	return "none"
}

// Credential is one admin user as the configuration gives it. Either
// kind of secret may be absent; a user with neither cannot log in.
type Credential struct {
	Name         string
	Role         Role
	PasswordHash string // bcrypt, for HTTP Basic; "" = none
	TokenSHA256  []byte // SHA-256 of the bearer token; nil = none
}

// Principal is an authenticated caller.
type Principal struct {
	Name string `json:"name"`
	Role Role   `json:"-"`
	Via  string `json:"via"` // "basic", "token" or "socket"
}

// Auth checks the credentials of admin API requests. Safe for concurrent
// use; SetUsers replaces the users atomically (config reload), and
// requests in flight finish with the set they started with.
//
// Secrets are compared in constant time: a bearer token's SHA-256 against
// every configured digest (no early exit), a Basic password with bcrypt,
// run against a fixed dummy hash for unknown user names so that the
// answer time does not tell which names exist. bcrypt costs tens of
// milliseconds by design, which would dominate an API used by scripts:
// a successful Basic login is remembered for cacheTTL, keyed by a digest
// of name, password and the configured hash (a changed hash misses).
//
// An address that sent wrong credentials MaxAuthFailures times in a row is
// refused (429) for AuthPenalty, without a bcrypt, as the WebDAV
// front-end does (httpserve.Penalty): guesses can neither come fast nor
// burn the server's CPU. A request without credentials is no failure.
type Auth struct {
	users   atomic.Pointer[credSet]
	penalty *httpserve.Penalty
	logins  *httpserve.Logins // bcrypt checks in flight per address

	mu sync.Mutex
	// guarded by mu
	cache map[[sha256.Size]byte]time.Time // verified Basic logins → expiry
}

type credSet struct {
	byName map[string]*Credential
	tokens []*Credential // those with a token digest
}

// cacheTTL bounds how long a verified Basic login skips bcrypt; cacheMax
// bounds the cache's memory (it is emptied when full).
const (
	cacheTTL = time.Minute
	cacheMax = 4096
)

// MaxAuthFailures and AuthPenalty are the penalty's defaults (WebDAV's).
const (
	MaxAuthFailures = 10
	AuthPenalty     = 30 * time.Second
)

// dummyHash is compared against when a Basic user name is unknown. It is
// made on first use: every CLI command links this package.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("datagate: no such user"), bcrypt.DefaultCost)
	return h
})

// NewAuth returns an Auth for users. A non-empty token (the data
// directory's admin.token) is accepted as a bearer token with the full
// role, under the name "admin.token".
func NewAuth(users []Credential, token string) *Auth {
	a := &Auth{cache: map[[sha256.Size]byte]time.Time{}, penalty: httpserve.NewPenalty(MaxAuthFailures, AuthPenalty), logins: httpserve.NewLogins(MaxAuthFailures)}
	a.SetUsers(users, token)
	return a
}

// SetPenalty changes the penalty of failed logins (before serving):
// after max failures in a row from an address, it waits for wait.
func (a *Auth) SetPenalty(max int, wait time.Duration) {
	a.penalty = httpserve.NewPenalty(max, wait)
	a.logins = httpserve.NewLogins(max)
}

// SetUsers replaces the users and the data-directory token.
func (a *Auth) SetUsers(users []Credential, token string) {
	cs := &credSet{byName: make(map[string]*Credential, len(users))}
	for i := range users {
		c := users[i]
		cs.byName[c.Name] = &c
		if len(c.TokenSHA256) == sha256.Size {
			cs.tokens = append(cs.tokens, &c)
		}
	}
	if token != "" {
		sum := sha256.Sum256([]byte(token))
		cs.tokens = append(cs.tokens, &Credential{Name: "admin.token", Role: RoleFull, TokenSHA256: sum[:]})
	}
	a.users.Store(cs)
}

// errNoCredentials and errBadCredentials are 401s; they never say which
// part of a login was wrong.
var (
	errNoCredentials  = errors.New("authentication required: HTTP Basic (admin user) or a bearer token")
	errBadCredentials = errors.New("wrong user name, password or token")
)

// PenaltyError is a 429: the caller's address is serving a penalty for
// failed logins, for Wait more, or (Busy) has too many password checks
// in flight (httpserve.Logins).
type PenaltyError struct {
	Wait time.Duration
	Busy bool
}

func (e *PenaltyError) Error() string {
	if e.Busy {
		return fmt.Sprintf("too many logins at once from this address: retry in %s", e.Wait.Round(time.Second))
	}
	return fmt.Sprintf("too many failed logins from this address: retry in %s", e.Wait.Round(time.Second))
}

// Authenticate returns the caller of r, or errNoCredentials,
// errBadCredentials or a *PenaltyError. The second result is the user
// name claimed, for the log of a failure ("" for tokens).
func (a *Auth) Authenticate(r *http.Request) (Principal, string, error) {
	addr := r.RemoteAddr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		addr = h
	}
	if wait := a.penalty.Blocked(addr, time.Now()); wait > 0 {
		return Principal{}, "", &PenaltyError{Wait: wait} // even the right secret waits
	}
	p, claimed, err := a.check(r, addr)
	switch {
	case err == nil:
		a.penalty.OK(addr)
	case errors.Is(err, errBadCredentials):
		a.penalty.Fail(addr, time.Now())
	}
	return p, claimed, err
}

// check authenticates r, sent from addr (see Authenticate).
func (a *Auth) check(r *http.Request, addr string) (Principal, string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return Principal{}, "", errNoCredentials
	}
	cs := a.users.Load()
	if tok, ok := cutPrefixFold(h, "Bearer "); ok {
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		var found *Credential
		for _, c := range cs.tokens {
			if subtle.ConstantTimeCompare(sum[:], c.TokenSHA256) == 1 {
				found = c
			}
		}
		if found == nil {
			return Principal{}, "", errBadCredentials
		}
		return Principal{Name: found.Name, Role: found.Role, Via: "token"}, "", nil
	}
	name, pass, ok := r.BasicAuth()
	if !ok {
		return Principal{}, "", errNoCredentials
	}
	c := cs.byName[name]
	if c == nil || c.PasswordHash == "" {
		_, admitted := a.logins.Check(addr, cacheKey(name, pass, ""), func() bool {
			bcrypt.CompareHashAndPassword(dummyHash(), []byte(pass))
			return false
		})
		if !admitted {
			return Principal{}, name, &PenaltyError{Wait: time.Second, Busy: true}
		}
		return Principal{}, name, errBadCredentials
	}
	key := cacheKey(name, pass, c.PasswordHash)
	if !a.cached(key) {
		ok, admitted := a.logins.Check(addr, key, func() bool {
			return bcrypt.CompareHashAndPassword([]byte(c.PasswordHash), []byte(pass)) == nil
		})
		if !admitted {
			return Principal{}, name, &PenaltyError{Wait: time.Second, Busy: true}
		}
		if !ok {
			return Principal{}, name, errBadCredentials
		}
		a.remember(key)
	}
	return Principal{Name: c.Name, Role: c.Role, Via: "basic"}, name, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return "", false
}

// cacheKey digests a login: the password never sits in memory longer
// than the request, only this digest does.
func cacheKey(name, pass, hash string) [sha256.Size]byte {
	h := sha256.New()
	for _, s := range []string{name, pass, hash} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

func (a *Auth) cached(k [sha256.Size]byte) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	exp, ok := a.cache[k]
	if ok && time.Now().After(exp) {
		delete(a.cache, k)
		return false
	}
	return ok
}

func (a *Auth) remember(k [sha256.Size]byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) >= cacheMax {
		clear(a.cache)
	}
	a.cache[k] = time.Now().Add(cacheTTL)
}
