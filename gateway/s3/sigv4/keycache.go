package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"strings"
	"sync"
)

// keyCache holds derived signing keys: deriving one is four HMACs, more
// than the rest of a verification. Keyed by the secret itself so a rotated
// secret never meets a stale key.
type keyCache struct {
	mu sync.RWMutex
	m  map[keyCacheKey]*derivedKey // guarded by mu
}

// derivedKey is a signing key and HMACs keyed with it, ready for reuse:
// making one allocates and hashes the key pads, on every request
// otherwise.
type derivedKey struct {
	key  []byte
	macs sync.Pool // of hash.Hash
}

// mac returns a reset HMAC-SHA256 keyed with the key; give it back with
// done.
func (d *derivedKey) mac() hash.Hash {
	if m, ok := d.macs.Get().(hash.Hash); ok {
		m.Reset()
		return m
	}
	return hmac.New(sha256.New, d.key)
}

func (d *derivedKey) done(m hash.Hash) { d.macs.Put(m) }

type keyCacheKey struct{ secret, date, region, service string }

const keyCacheMax = 4096

func (c *keyCache) get(secret, date, region, service string) *derivedKey {
	k := keyCacheKey{secret, date, region, service}
	c.mu.RLock()
	key, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return key
	}
	key = &derivedKey{key: signingKey(secret, date, region, service)}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= keyCacheMax {
		// Dates roll over daily; dropping everything at the bound is
		// simpler than LRU and costs one derivation per active key.
		c.m = make(map[keyCacheKey]*derivedKey)
	}
	c.m[keyCacheKey{strings.Clone(secret), strings.Clone(date), strings.Clone(region), strings.Clone(service)}] = key
	c.mu.Unlock()
	return key
}

// signingKey derives HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request").
func signingKey(secret, date, region, service string) []byte {
	k := hmacSum([]byte("AWS4"+secret), date)
	k = hmacSum(k, region)
	k = hmacSum(k, service)
	return hmacSum(k, terminator)
}

func hmacSum(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
