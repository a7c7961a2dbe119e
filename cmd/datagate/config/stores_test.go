package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStores(t *testing.T) {
	dir := t.TempDir()
	base := "data: " + dir + "\nviews: {v: {path: \"{name}\"}}\n"
	for extra, want := range map[string]string{
		"stores: [{name: b, type: local, root: /b}, {name: c, type: s3, bucket: x, endpoint: h, concurrency: 5}]\nreplicas: 3\nkeep_fetched: true": "",
		"prefetch: [{provider: local, priority: high}, {view: v}]":                                                                                 "",
		"stores: [{name: primary, type: local, root: /b}]":                                                                                         `"primary" is the primary`,
		"stores: [{name: b, type: local, root: /b}, {name: b, type: local, root: /c}]":                                                             "is taken",
		"stores: [{name: b, type: http, url: 'http://x/'}]":                                                                                        "cannot hold copies",
		"stores: [{name: b, type: local, root: /b, bogus: 1}]":                                                                                     "bogus",
		"stores: [{name: 'a b', type: local, root: /b}]":                                                                                           "store name",
		"stores: [{name: b, type: local, root: /b, concurrency: -1}]":                                                                              "concurrency",
		"replicas: 2":                                     "only 1 stores",
		"replicas: -1":                                    "negative",
		"prefetch: [{provider: nowhere}]":                 `unknown provider "nowhere"`,
		"prefetch: [{view: nowhere}]":                     `unknown view "nowhere"`,
		"prefetch: [{provider: local, view: v}]":          "either provider or view",
		"prefetch: [{provider: local, priority: urgent}]": "want high, normal or low",
	} {
		p := filepath.Join(dir, "c.yaml")
		os.WriteFile(p, []byte(base+extra+"\n"), 0o644)
		cfg, err := Load(p)
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", extra, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: error %v, want one containing %q", extra, err, want)
		case want == "" && strings.HasPrefix(extra, "stores"):
			if len(cfg.Stores) != 2 || cfg.Stores[0].Concurrency != 2 || cfg.Stores[1].Concurrency != 5 || cfg.Stores[1].S3 == nil || cfg.Stores[1].S3.Bucket != "x" || cfg.Replicas != 3 || !cfg.KeepFetched {
				t.Errorf("%s: parsed as %+v", extra, cfg.Stores)
			}
		}
	}
}
