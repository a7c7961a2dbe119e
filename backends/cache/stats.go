package cache

import "sync/atomic"

// Stats is a point-in-time summary of the cache, for the admin API and
// metrics. The counters count since New.
type Stats struct {
	Size    int64 // bytes of present chunks (Usage)
	MaxSize int64 // the cap; 0 = unlimited
	Entries int64 // entries known (those of a previous run once Loaded)
	// Hits are reads whose bytes were all present; Misses waited for at
	// least one fetch. A read is one ReadAt/Read/ReadFile call; content
	// handed out whole through File.DataFile (sendfile, passthrough) is
	// not counted.
	Hits, Misses uint64
	BytesServed  uint64 // bytes returned by reads (as counted for Hits)
	BytesFetched uint64 // bytes written into the cache by fetches
	Evictions    uint64 // entries dropped to stay under MaxSize
}

// counters are the cache's statistics counters: one atomic add per read.
type counters struct {
	hits, misses, served, fetched, evictions atomic.Uint64
}

// Stats returns the cache's statistics. It takes the cache's lock briefly.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	entries := len(c.entries)
	c.mu.Unlock()
	return Stats{
		Size:         c.usage.Load(),
		MaxSize:      c.opts.MaxSize,
		Entries:      int64(entries),
		Hits:         c.st.hits.Load(),
		Misses:       c.st.misses.Load(),
		BytesServed:  c.st.served.Load(),
		BytesFetched: c.st.fetched.Load(),
		Evictions:    c.st.evictions.Load(),
	}
}
