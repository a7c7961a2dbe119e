package retry

import "github.com/datagate/datagate/backends"

// Unwrap returns the provider p decorates, so that its owner can reach
// what the driver offers beyond backends.Provider (the store's upkeep:
// backends/s3's AbortUploads).
func (p *Provider) Unwrap() backends.Provider { return p.Provider }
