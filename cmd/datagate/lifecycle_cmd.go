package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/datagate/datagate/cmd/datagate/config"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/store"
	"github.com/datagate/datagate/gateway/admin"
	"github.com/datagate/datagate/views"
)

// retentionFunc turns the retention section into the store's hook; nil
// when nothing is configured (keep for ever). Views with a retention are
// looked up in set (see config.Retention for the precedence).
func retentionFunc(cfg *config.Config, set *views.Set) func(o *fs.Object) time.Duration {
	r := cfg.Retention
	if r.Default == 0 && len(r.Providers) == 0 && len(r.Views) == 0 {
		return nil
	}
	type viewRetention struct {
		v *views.View
		d time.Duration
	}
	var vr []viewRetention
	for name, d := range r.Views {
		if v, ok := set.View(name); ok {
			vr = append(vr, viewRetention{v, time.Duration(d)})
		}
	}
	return func(o *fs.Object) time.Duration {
		in, longest := false, time.Duration(0)
		for _, x := range vr {
			if _, ok := x.v.PathOf(o); !ok {
				continue
			}
			if x.d == 0 {
				return 0 // a view keeps it for ever
			}
			in, longest = true, max(longest, x.d)
		}
		if in {
			return longest
		}
		return r.For(o.Source.Provider)
	}
}

// deleteAtSource lists the providers whose files the collector deletes.
func deleteAtSource(cfg *config.Config) map[string]bool {
	if len(cfg.GC.DeleteAtSource) == 0 {
		return nil
	}
	m := make(map[string]bool, len(cfg.GC.DeleteAtSource))
	for _, p := range cfg.GC.DeleteAtSource {
		m[p] = true
	}
	return m
}

// startCollector runs the garbage collector beside the server, as the
// job "gc" of the admin API (status, run now); the returned function
// stops it and waits for the round in progress.
func startCollector(ctx context.Context, st *store.Store, cfg *config.Config, log *slog.Logger, jobs *adminState) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	interval, batch := time.Duration(cfg.GC.Interval), cfg.GC.Batch
	j := newLoopJob("gc", fmt.Sprintf("removes expired objects, every %v", interval), interval,
		func(ctx context.Context) (int64, error) {
			cs, err := st.Collect(ctx, time.Now(), batch)
			if err != nil && ctx.Err() == nil {
				log.Error("gc: collect", "err", err)
			}
			return cs.Objects, err
		})
	jobs.addJob(j)
	go j.loop(ctx)
	log.Info("collector started", "interval", interval, "batch", batch)
	return func() { cancel(); <-j.done }
}

func newVerifyCmd(g *globals) *cobra.Command {
	var repair bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Re-hash cached and stored content against the recorded checksums",
		Long: `Re-hash every complete cache entry and every stored file against the
checksums recorded in the catalogue and report each mismatch. With --repair
a bad cache entry is dropped (the next read fetches it again); a bad primary
file is rewritten from a verified copy when another store (stores:) holds
one, and reported as not repaired otherwise.

verify opens the data directory itself: stop the server first. It exits
non-zero when damage remains.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCheck(cmd, g, "verify", repair, (*store.Store).Verify)
		},
	}
	cmd.Flags().BoolVar(&repair, "repair", false, "drop bad cache entries; rewrite bad primary files from other stores' copies")
	return cmd
}

func newFsckCmd(g *globals) *cobra.Command {
	var repair bool
	cmd := &cobra.Command{
		Use:   "fsck",
		Short: "Check that the catalogue, its indexes, the cache and the store agree",
		Long: `Check that every catalogue record decodes, that every metadata posting,
source, expiry and view-path key belongs to an object with that value (and
every object has its keys), that every stored object has its file with the
recorded size, that every copy recorded in another store (stores:) exists
with the right size, that no file in objects/ is unreferenced, and that
every cache entry belongs to a current object. With --repair, dangling keys
are deleted, missing keys rewritten, a lost or truncated primary file is
copied back from another store's verified copy, a bad copy elsewhere is
forgotten (the object is queued to be copied again), unreferenced files and
stray cache entries are removed; undecodable records, and primary files no
other store holds, are reported only.

fsck opens the data directory itself: stop the server first. It exits
non-zero when damage remains.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCheck(cmd, g, "fsck", repair, (*store.Store).Fsck)
		},
	}
	cmd.Flags().BoolVar(&repair, "repair", false, "fix what can be fixed")
	return cmd
}

type checkFunc func(s *store.Store, ctx context.Context, opts store.CheckOptions, report func(store.Damage)) (store.CheckReport, error)

// runCheck opens the store (refusing when a server owns it), runs check
// with a progress bar on a terminal, prints each finding and a summary, and
// fails when damage remains.
func runCheck(cmd *cobra.Command, g *globals, what string, repair bool, check checkFunc) error {
	ctx := cmd.Context()
	cfg, log, err := g.load()
	if err != nil {
		return err
	}
	// These commands scan and repair the data directory as a whole; doing
	// that beside a running server would race with its writers.
	if c, err := admin.Dial(ctx, socketPath(cfg)); err == nil {
		c.Close()
		return fmt.Errorf("a server is running on %s: stop it first; %s opens the data directory itself", socketPath(cfg), what)
	}
	a, err := openApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()

	bar := newProgress(what, -1, false)
	var mu sync.Mutex // findings reach stdout one at a time
	out := cmd.OutOrStdout()
	opts := store.CheckOptions{Repair: repair, Progress: func(objects, bytes int64) {
		desc := fmt.Sprintf("%s: %d objects", what, objects)
		if bytes > 0 {
			desc += ", " + ibytes(bytes)
		}
		bar.update(objects, desc)
	}}
	rep, err := check(a.store, ctx, opts, func(d store.Damage) {
		mu.Lock()
		defer mu.Unlock()
		bar.println(out, d)
	})
	bar.finish()
	summary := fmt.Sprintf("%s: %d objects", what, rep.Objects)
	if rep.Bytes > 0 {
		summary += ", " + humanize.IBytes(uint64(rep.Bytes)) + " hashed"
	}
	summary += fmt.Sprintf(", %d problems, %d repaired, %d not repaired", rep.Damaged, rep.Damaged-rep.Unrepaired, rep.Unrepaired)
	fmt.Fprintln(out, summary)
	if err != nil {
		return err
	}
	if rep.Unrepaired > 0 {
		hint := ""
		if !repair {
			hint = " (try --repair)"
		}
		return fmt.Errorf("%s: %d problems not repaired%s", what, rep.Unrepaired, hint)
	}
	return nil
}
