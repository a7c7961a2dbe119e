package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/views"
)

// withApp runs an operator command on views with the store: inside a
// running server when it executes the command for the CLI, else through
// the server's socket when one runs, else by opening the store.
func withApp(cmd *cobra.Command, g *globals, fn func(a *app) error) error {
	if g.served != nil {
		return fn(g.served)
	}
	cfg, log, err := g.load()
	if err != nil {
		return err
	}
	if done, err := runOnServer(cmd, cfg); done {
		return err
	}
	a, err := openApp(cmd.Context(), cfg, log)
	if err != nil {
		return err
	}
	err = fn(a)
	if cerr := a.Close(); err == nil {
		err = cerr
	}
	return err
}

func newLsCmd(g *globals) *cobra.Command {
	var user string
	var long bool
	cmd := &cobra.Command{
		Use:   "ls --user NAME [PATH]",
		Short: "List what a user sees at PATH of their virtual tree",
		Long: `List what a user sees: their views, laid out as every front-end shows
them (one view: its root; several: one directory per view). -l adds the
mode, size, modification time and object id.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if user == "" {
				return fs.E(fs.Invalid, "ls", "", errors.New("--user is required"))
			}
			p := "/"
			if len(args) == 1 {
				p = args[0]
			}
			return withApp(cmd, g, func(a *app) error {
				// The configuration of whoever holds the store (the
				// server, when one runs) says who the users are.
				cfg, _, err := g.load()
				if err != nil {
					return err
				}
				u, ok := cfg.Users[user]
				if !ok {
					return fs.E(fs.NotExist, "ls", user, errors.New("no such user in the configuration"))
				}
				tr := views.NewTree(views.TreeOptions{Set: a.views, Store: a.store, User: user, Profile: u.Profile(), StatfsDir: cfg.Data})
				return listTree(cmd, tr, p, long)
			})
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "the user whose tree to list")
	cmd.Flags().BoolVarP(&long, "long", "l", false, "long listing: mode, size, time, id")
	return cmd
}

func listTree(cmd *cobra.Command, tr *views.Tree, p string, long bool) error {
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	show := func(i *views.Info) {
		name := i.Name()
		if i.IsDir() {
			name += "/"
		}
		if !long {
			fmt.Fprintln(tw, name)
			return
		}
		size, id, mt := "-", "-", "-"
		if !i.IsDir() {
			size = fmt.Sprint(i.Size())
			id = i.ID().String()
		}
		if !i.ModTime().IsZero() {
			mt = i.ModTime().UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", i.Mode(), size, mt, id, name)
	}
	fi, err := tr.Stat(ctx, p)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		show(fi)
		return tw.Flush()
	}
	const page = 1000
	after := ""
	for {
		infos, err := tr.ReadDir(ctx, p, after, page)
		if err != nil {
			return err
		}
		for _, i := range infos {
			show(i)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if len(infos) < page {
			return nil
		}
		after = infos[len(infos)-1].Name()
	}
}

func newViewsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "views",
		Short: "List the views: templates, filters, fixed metadata and object counts",
		Long: `List the views of the configuration and those created at run time, with
their path templates, filters, set: metadata and object counts. Counting
walks each view's path entries (time grows with the catalogue): an
operator's command, not a request path.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd, g, func(a *app) error {
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "VIEW\tPATH\tFILTER\tSET\tORIGIN\tOBJECTS\tDIRS")
				for _, v := range a.views.Views() {
					n, m, err := a.views.Count(cmd.Context(), v.Name())
					if err != nil {
						return err
					}
					d := v.Def()
					origin := "config"
					if owner, ok := v.Runtime(); ok {
						origin = "runtime"
						if owner != "" {
							origin += " (" + owner + ")"
						}
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\n", v.Name(), d.Path, orDash(d.Filter), orDash(fmtSet(d.Set)), origin, n, m)
				}
				return tw.Flush()
			})
		},
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func fmtSet(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

func newPasswdCmd() *cobra.Command {
	var cost int
	cmd := &cobra.Command{
		Use:   "passwd",
		Short: "Read a password and print its bcrypt hash, for a password_hash (users: or admin.users:)",
		Long: `Read a password — from the terminal without echo (asked twice), or the
first line of stdin when it is not a terminal — and print its bcrypt hash
for the configuration's users.NAME.password_hash or admin.users.NAME.password_hash.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pw, err := readPassword(cmd.InOrStdin(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			h, err := bcrypt.GenerateFromPassword(pw, cost)
			if err != nil {
				return fs.E(fs.Invalid, "passwd", "", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(h))
			return nil
		},
	}
	cmd.Flags().IntVar(&cost, "cost", bcrypt.DefaultCost, "bcrypt cost (4-31)")
	return cmd
}

func readPassword(in io.Reader, prompt io.Writer) ([]byte, error) {
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(prompt, "Password: ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return nil, err
		}
		fmt.Fprint(prompt, "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return nil, err
		}
		if string(a) != string(b) {
			return nil, fs.E(fs.Invalid, "passwd", "", errors.New("the passwords differ"))
		}
		if len(a) == 0 {
			return nil, fs.E(fs.Invalid, "passwd", "", errors.New("empty password"))
		}
		return a, nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, fs.E(fs.Invalid, "passwd", "", errors.New("empty password on stdin"))
	}
	if len(line) > 72 {
		return nil, fs.E(fs.Invalid, "passwd", "", errors.New("password longer than bcrypt's 72 bytes"))
	}
	return []byte(line), nil
}
