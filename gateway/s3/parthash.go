package s3

import (
	"crypto/md5"
	"hash"
	"sync"

	md5simd "github.com/minio/md5-simd"
)

// simdMinParts is how many part uploads must be in flight (this one
// included) for a part to be hashed on the SIMD lanes. md5-simd copies
// every block to its server goroutine and hashes fewer than three
// streams one by one, so for one or two parts it costs more CPU than
// crypto/md5; an AVX-512 pass costs the same for 3 streams as for 16
// (BenchmarkPartMD5, CPU against crypto/md5's: 1 stream 1.17×, 2 1.3×,
// 3 1.0×, 4 0.83×, 8 0.48×).
const simdMinParts = 3

// partHashes hands out the MD5s of part uploads: crypto/md5 for a lone
// part, a stream of the shared md5-simd server when parts arrive in
// parallel (clients upload 4-16 at once), so one AVX-512/AVX2 pass hashes
// a block of each. A single PUT's MD5 is the store's (crypto/md5): it is
// one stream.
type partHashes struct {
	mu     sync.Mutex
	srv    md5simd.Server // nil once closed
	parts  int            // part uploads in flight
	lanes  int            // of which hashed by srv
	closed bool
}

func newPartHashes() *partHashes { return &partHashes{srv: md5simd.NewServer()} }

// get returns the hash for a part and the function that releases it
// (after Sum).
func (p *partHashes) get() (hash.Hash, func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.parts++
	if p.closed || p.parts < simdMinParts {
		return md5.New(), p.release
	}
	p.lanes++
	h := p.srv.NewHash()
	return h, func() {
		h.Close()
		p.mu.Lock()
		p.lanes--
		p.releaseLocked()
		p.mu.Unlock()
	}
}

func (p *partHashes) release() {
	p.mu.Lock()
	p.releaseLocked()
	p.mu.Unlock()
}

func (p *partHashes) releaseLocked() {
	p.parts--
	if p.closed && p.lanes == 0 && p.srv != nil {
		p.srv.Close()
		p.srv = nil
	}
}

// close stops the md5-simd server once no part uses it: closing it
// under a stream still writing would block that stream forever.
func (p *partHashes) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.lanes == 0 && p.srv != nil {
		p.srv.Close()
		p.srv = nil
	}
}
