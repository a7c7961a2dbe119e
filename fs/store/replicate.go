package store

import (
	"github.com/datagate/datagate/backends"
)

// Target is one store content is copied to.
type Target struct {
	Name string
	W    backends.Writer
	// Concurrency bounds the copies to this store in flight; default 2.
	Concurrency int
}

// Replication configures copies of content beyond the primary store.
type Replication struct {
	Stores []Target
	// Replicas is the number of verified copies wanted, the primary's
	// counting as one. 0 or 1: no replication.
	Replicas int
	// KeepFetched: content fetched from a provider, once whole and
	// verified, is copied too.
	KeepFetched bool
}

type target struct {
	name string
	w    backends.Writer
	sem  chan struct{}
}

type replicator struct {
	s       *Store
	opts    Replication
	targets map[string]*target
}

func newReplicator(s *Store, opts Replication) *replicator {
	r := &replicator{s: s, opts: opts, targets: map[string]*target{}}
	for _, t := range opts.Stores {
		c := t.Concurrency
		if c <= 0 {
			c = 2
		}
		r.targets[t.Name] = &target{name: t.Name, w: t.W, sem: make(chan struct{}, c)}
	}
	return r
}
