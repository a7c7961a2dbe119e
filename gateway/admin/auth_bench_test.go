package admin

import (
	"net/http/httptest"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// BenchmarkAuthenticate compares a Basic login checked by bcrypt (the
// default cost, as "datagate passwd" makes) with the same login found in
// the cache of verified logins, and a bearer token.
func BenchmarkAuthenticate(b *testing.B) {
	h, _ := bcrypt.GenerateFromPassword([]byte("pw-0123456789"), bcrypt.DefaultCost)
	a := NewAuth([]Credential{{Name: "ops", Role: RoleFull, PasswordHash: string(h), TokenSHA256: tokenSum("tok-0123456789")}}, "")
	basicReq := httptest.NewRequest("GET", "/api/v1/whoami", nil)
	basicReq.SetBasicAuth("ops", "pw-0123456789")
	tokenReq := httptest.NewRequest("GET", "/api/v1/whoami", nil)
	tokenReq.Header.Set("Authorization", "Bearer tok-0123456789")
	b.Run("basic-bcrypt", func(b *testing.B) {
		for b.Loop() {
			a.mu.Lock()
			clear(a.cache)
			a.mu.Unlock()
			if _, _, err := a.Authenticate(basicReq); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("basic-cached", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := a.Authenticate(basicReq); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bearer", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := a.Authenticate(tokenReq); err != nil {
				b.Fatal(err)
			}
		}
	})
}
