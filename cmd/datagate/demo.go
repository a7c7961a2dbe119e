package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/datagate/datagate/cmd/datagate/config"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
	"github.com/datagate/datagate/fs/store"
	"github.com/datagate/datagate/gateway/admin"
)

// newDemoCmd fills a data directory with a small catalogue: files written
// into the default local provider and crawled (registered, fetched lazily
// on first read), and a few objects pushed into the store.
func newDemoCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Create a small demo catalogue (idempotent)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := g.load()
			if err != nil {
				return err
			}
			lp := cfg.Providers[config.DefaultProvider]
			if lp.Local == nil {
				return fmt.Errorf("the demo needs provider %q to be a local directory", config.DefaultProvider)
			}
			root := lp.Local.Root
			if err := makeDataDir(cfg.Data); err != nil { // app.go
				return err
			}
			rng := rand.New(rand.NewPCG(1, 2))
			day := time.Now().UTC().Format("2006-01-02")
			for _, typ := range []string{"obs", "fc"} {
				for i := 0; i < 5; i++ {
					p := filepath.Join(root, day, typ, fmt.Sprintf("%s-%02d.bin", typ, i))
					if _, err := os.Stat(p); err == nil {
						continue
					}
					os.MkdirAll(filepath.Dir(p), 0o755)
					b := make([]byte, 64<<10+rng.IntN(1<<20))
					for j := range b {
						b[j] = byte(rng.Uint32())
					}
					if err := os.WriteFile(p, b, 0o644); err != nil {
						return err
					}
				}
			}
			return withCatalog(cmd, g, func(c catalog) error {
				out := cmd.OutOrStdout()
				st, err := c.Crawl(cmd.Context(), admin.CrawlRequest{Provider: config.DefaultProvider, PathTemplate: "{date}/{type}/{name}", Meta: map[string]string{"origin": "demo"}}, nil)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "registered %d objects from provider %q (%d already known): content is fetched on first read\n", st.Added+st.Updated, config.DefaultProvider, st.Unchanged)
				n := 0
				c.Find(cmd.Context(), []index.Cond{{Key: "origin", Value: "demo-push"}}, 1, func(*fs.Object) error { n++; return nil })
				if n > 0 {
					return nil
				}
				for i := 0; i < 3; i++ {
					body := bytes.Repeat([]byte(fmt.Sprintf("bulletin %d of %s\n", i, day)), 100)
					o, err := c.Put(cmd.Context(), store.PutRequest{
						Name: fmt.Sprintf("bulletin-%d.txt", i), ContentType: "text/plain", Size: int64(len(body)),
						Meta: map[string]string{"date": day, "type": "bulletin", "origin": "demo-push"},
					}, bytes.NewReader(body))
					if err != nil {
						return err
					}
					fmt.Fprintf(out, "pushed %s %s\n", o.ID, o.Name)
				}
				return nil
			})
		},
	}
}
