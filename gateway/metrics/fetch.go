package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/datagate/datagate/fs"
)

// fetchSeries is one provider's fetch histogram, resolved once.
type fetchSeries struct {
	latency prometheus.Observer
}

// ObserveFetch records one fetch from a provider: it has the shape of the
// store's fetch observer (store.Options.OnFetch). provider is a
// configured provider's name. Safe for concurrent use.
func (m *Metrics) ObserveFetch(provider string, d time.Duration, bytes int64, err error) {
	m.mu.Lock()
	s, ok := m.fetchs[provider]
	if !ok {
		s = &fetchSeries{latency: m.fetch.WithLabelValues(provider)}
		m.fetchs[provider] = s
	}
	m.mu.Unlock()
	s.latency.Observe(d.Seconds())
	if err != nil {
		m.fetchErr.WithLabelValues(provider, KindLabel(fs.KindOf(err))).Inc()
	}
}
