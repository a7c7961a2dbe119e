// Command datagate runs and operates a datagate object store: `serve`
// runs the server; the other commands reach a running server through its
// Unix socket, or open the data directory themselves when none runs.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/datagate/datagate/cmd/datagate/config"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/ingest"
)

// version is set by the build (-ldflags "-X main.version=...").
var version = "dev"

// globals are the root flags every command shares.
type globals struct {
	configFile string
	data       string
	logLevel   string

	// Set when a running server executes an operator command for the
	// CLI (see serve_cli.go): its configuration and opened app.
	served    *app
	servedCfg *config.Config
	servedLog *slog.Logger
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "datagate:", err)
		os.Exit(exitCode(err))
	}
}

// exitCode: 2 for bad input, 3 for not found, 1 otherwise.
func exitCode(err error) int {
	var le *ingest.LineError
	switch {
	case errors.As(err, &le), fs.KindOf(err) == fs.Invalid:
		return 2
	case fs.KindOf(err) == fs.NotExist:
		return 3
	}
	return 1
}

func newRoot() *cobra.Command { return newRootFor(&globals{}) }

func newRootFor(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "datagate",
		Short:         "A metadata-driven object store served as per-user virtual trees",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.configFile, "config", os.Getenv("DATAGATE_CONFIG"), "YAML configuration file (default: built-in defaults)")
	pf.StringVar(&g.data, "data", "", "data directory (default ./var, or the config's data:)")
	pf.StringVar(&g.logLevel, "log-level", "", "debug, info, warn or error")
	root.AddCommand(
		newServeCmd(g), newRegisterCmd(g), newPutCmd(g), newGetCmd(g), newStatCmd(g),
		newFindCmd(g), newRmCmd(g), newCrawlCmd(g), newDemoCmd(g), newVersionCmd(),
		newLsCmd(g), newViewsCmd(g), newPasswdCmd(),
	)
	root.AddCommand(newVerifyCmd(g), newFsckCmd(g))
	root.AddCommand(newMountCmd(g))
	return root
}

// load reads the configuration and applies the root flags to it.
func (g *globals) load() (*config.Config, *slog.Logger, error) {
	if g.servedCfg != nil {
		return g.servedCfg, g.servedLog, nil
	}
	cfg, err := config.Load(g.configFile)
	if err != nil {
		return nil, nil, err
	}
	if g.data != "" {
		if cfg.Providers[config.DefaultProvider].Local != nil && g.configFile == "" {
			// The default provider lives under the data directory.
			cfg.Providers[config.DefaultProvider].Local.Root = g.data + "/import"
		}
		cfg.Data = g.data
	}
	if g.logLevel != "" {
		cfg.Log.Level = g.logLevel
	}
	return cfg, newLogger(cfg.Log), nil
}

func newLogger(c config.Log) *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "datagate", version)
			return nil
		},
	}
}
