// Command datagate runs and operates a datagate object store: `serve`
// runs the server; the other commands reach a running server through its
// Unix socket, or open the data directory themselves when none runs.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/datagate/datagate/cmd/datagate/config"
	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/ingest"
	"github.com/datagate/datagate/views"
)

// version is set by the build (-ldflags "-X main.version=...").
var version = "dev"

// globals are the root flags every command shares.
type globals struct {
	configFile string
	data       string
	logLevel   string
	logFormat  string

	// Set when a running server executes an operator command for the
	// CLI (see serve_cli.go): its configuration and opened app.
	served    *app
	servedCfg *config.Config
	servedLog *slog.Logger

	// ran is set once the command line parsed and a command started:
	// errors before that are usage errors (exit 2).
	ran bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first SIGINT or SIGTERM cancels the command (serve shuts down
	// cleanly); a second one gets the default action and ends the process
	// at once, as an operator pressing Ctrl-C again expects.
	go func() { <-ctx.Done(); stop() }()
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the exit status, the
// error printed on stderr.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	g := &globals{}
	root := newRootFor(g)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "datagate:", err)
	if !g.ran {
		// Cobra refused the command line before running anything (an
		// unknown command or flag, missing arguments): bad input, as the
		// README promises, with a pointer to the command's help.
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return 2
	}
	return exitCode(err)
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
		// Runs after the flags and arguments were checked (no command
		// defines its own).
		PersistentPreRun: func(*cobra.Command, []string) { g.ran = true },
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.configFile, "config", os.Getenv("DATAGATE_CONFIG"), "YAML configuration file (default: $DATAGATE_CONFIG, else built-in defaults)")
	pf.StringVar(&g.data, "data", "", "data directory (default ./var, or the config's data:)")
	pf.StringVar(&g.logLevel, "log-level", "", "debug, info, warn or error")
	pf.StringVar(&g.logFormat, "log-format", os.Getenv("DATAGATE_LOG_FORMAT"), "text, json or auto: text on a terminal, JSON lines otherwise (default: the config's log.format, auto)")
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
		return nil, nil, &fs.Error{Kind: fs.Invalid, Err: err} // bad input: exit 2
	}
	if g.data != "" {
		cfg.SetData(g.data)
	}
	if g.logLevel != "" {
		switch g.logLevel {
		case "debug", "info", "warn", "error":
		default:
			return nil, nil, fs.E(fs.Invalid, "--log-level", g.logLevel, errors.New("want debug, info, warn or error"))
		}
		cfg.Log.Level = g.logLevel
	}
	if g.logFormat != "" {
		switch g.logFormat {
		case "text", "json", "auto":
		default:
			return nil, nil, fs.E(fs.Invalid, "--log-format", g.logFormat, errors.New("want text, json or auto"))
		}
		cfg.Log.Format = g.logFormat
	}
	return cfg, newLogger(cfg.Log, os.Stderr, term.IsTerminal(int(os.Stderr.Fd()))), nil
}

// newLogger logs to w: text for a person at a terminal, JSON lines for a
// log collector (format auto picks by terminal). Records logged with a
// request's context carry its request id (views.LogHandler).
func newLogger(c config.Log, w io.Writer, terminal bool) *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	json := c.Format == "json" || (c.Format != "text" && !terminal)
	if json {
		opts.ReplaceAttr = durationText
		return slog.New(views.LogHandler(slog.NewJSONHandler(w, opts)))
	}
	return slog.New(views.LogHandler(slog.NewTextHandler(w, opts)))
}

// durationText writes durations as the text handler and the config do
// ("1m0s"): JSON gives them as integer nanoseconds otherwise.
func durationText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
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
