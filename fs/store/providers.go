package store

import (
	"maps"
	"sync/atomic"

	"github.com/datagate/datagate/backends"
)

// providerSet is the set of providers, swapped whole on a configuration
// reload. Readers never block: they load the current map, which is never
// modified once stored.
type providerSet struct {
	cur atomic.Pointer[map[string]backends.Provider]
}

func (p *providerSet) set(m map[string]backends.Provider) {
	c := maps.Clone(m)
	if c == nil {
		c = map[string]backends.Provider{}
	}
	p.cur.Store(&c)
}

func (p *providerSet) get(name string) (backends.Provider, bool) {
	pr, ok := (*p.cur.Load())[name]
	return pr, ok
}

// SetProviders replaces the providers content is registered against (a
// configuration reload). Reads already fetching keep the provider they
// started with; from the call on, fetches, registrations and the
// collector use the new set. Objects registered against a provider the
// new set lacks stay in the catalogue, and reading their content fails
// with an Unavailable error naming the provider (content already cached
// or stored is still served). The caller closes providers it retires,
// once reads through them have had time to end.
func (s *Store) SetProviders(m map[string]backends.Provider) { s.providers.set(m) }

func (s *Store) hasProvider(name string) bool {
	_, ok := s.providers.get(name)
	return ok
}
