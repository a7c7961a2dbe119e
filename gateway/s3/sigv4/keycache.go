package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"sync"
)

// keyCache holds derived signing keys: deriving one is four HMACs, more
// than the rest of a verification. Keyed by the secret itself so a rotated
// secret never meets a stale key.
type keyCache struct {
	mu sync.RWMutex
	m  map[keyCacheKey][]byte // guarded by mu
}

type keyCacheKey struct{ secret, date, region, service string }

const keyCacheMax = 4096

func (c *keyCache) get(secret, date, region, service string) []byte {
	k := keyCacheKey{secret, date, region, service}
	c.mu.RLock()
	key, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return key
	}
	key = signingKey(secret, date, region, service)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= keyCacheMax {
		// Dates roll over daily; dropping everything at the bound is
		// simpler than LRU and costs one derivation per active key.
		c.m = make(map[keyCacheKey][]byte)
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
