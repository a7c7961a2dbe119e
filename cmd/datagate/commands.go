package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
	"github.com/datagate/datagate/fs/ingest"
	"github.com/datagate/datagate/fs/store"
	"github.com/datagate/datagate/gateway/admin"
	"github.com/datagate/datagate/views"
)

// withCatalog runs fn with the catalog, closing it afterwards.
func withCatalog(cmd *cobra.Command, g *globals, fn func(c catalog) error) error {
	cfg, log, err := g.load()
	if err != nil {
		return err
	}
	c, err := openCatalog(cmd.Context(), cfg, log)
	if err != nil {
		return err
	}
	err = fn(c)
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	return err
}

// newJSONEncoder writes the commands' JSON output as a person reads it:
// "&", "<" and ">" in names and metadata stay themselves (encoding/json
// writes \u0026 and the like by default, for HTML pages).
func newJSONEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

func newRegisterCmd(g *globals) *cobra.Command {
	var batch int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "register [FILE]",
		Short: "Register objects from NDJSON records (a file, or stdin)",
		Long: `Register objects from NDJSON, one record a line:

  {"name":"synop.bufr","meta":{"date":"2026-11-22","type":"obs"},
   "location":{"provider":"local","path":"obs/synop.bufr","offset":0,"length":0},
   "size":1234,"mtime":"2026-11-22T06:00:00Z","md5":"…","sha256":"…","expires":"2026-12-22T00:00:00Z"}

Records are applied in atomic batches (--batch lines). A malformed line is
reported with its number; its batch is not applied, earlier batches stay
applied, and reading stops. Registering a location again is idempotent:
the same record leaves the object as it is (renamed by a user or not); a
record whose name, metadata, content type or expiry differ from the ones
registered last there moves the object (its fetched content stays); a
changed size, mtime, etag or checksum makes a new version.

On a terminal a progress bar on stderr follows the input (bytes read of a
file, with the records added so far).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if batch < 1 {
				return fs.E(fs.Invalid, "--batch", strconv.Itoa(batch), errors.New("want 1 or more records"))
			}
			in := io.Reader(cmd.InOrStdin())
			total := int64(-1)
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return inputError(err)
				}
				defer f.Close()
				if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
					total = st.Size()
				}
				in = f
			}
			return withCatalog(cmd, g, func(c catalog) error {
				// The bar follows the bytes read (a server reached through
				// its socket reports no counts until the end) and, when
				// the store is opened here, the records applied.
				bar := newProgress("register", total, true)
				cr := &countingReader{r: in}
				var last atomic.Pointer[ingest.Result]
				stop := follow(bar, cr, func(int64) string {
					if r := last.Load(); r != nil {
						return fmt.Sprintf("register: %d added, %d updated, %d unchanged", r.Added, r.Updated, r.Unchanged)
					}
					return ""
				})
				res, err := c.Register(cmd.Context(), cr, batch, func(r ingest.Result) { last.Store(&r) })
				stop()
				bar.finish()
				if asJSON {
					if jerr := newJSONEncoder(cmd.OutOrStdout()).Encode(res); jerr != nil && err == nil {
						err = jerr
					}
					return err
				}
				if err != nil && res == (ingest.Result{}) {
					if cmd.Context().Err() != nil {
						// Interrupted while a server registers: it has
						// applied the whole batches it received, and its
						// counts never come back.
						return fmt.Errorf("interrupted: the batches the server received before stay registered (registering the same records again finds them unchanged): %w", err)
					}
					// A server's error answer carries no counts: "0 added"
					// would deny the batches before the bad line, which the
					// error says were applied.
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%d added, %d updated, %d unchanged\n", res.Added, res.Updated, res.Unchanged)
				return err
			})
		},
	}
	cmd.Flags().IntVar(&batch, "batch", 1000, "records per atomic batch")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the counts as one JSON object")
	return cmd
}

func newPutCmd(g *globals) *cobra.Command {
	var meta []string
	var name, ctype string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "put FILE",
		Short: "Push a file into the store",
		Long: `Push a file into the store; print its id, name, size and SHA-256 (or its
record with --json). FILE "-" is standard input (give --name); a pipe or
standard input is stored as it comes, its size unknown until the end. On
a terminal a progress bar on stderr shows the bytes sent.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := parseSetMeta(meta)
			if err != nil {
				return err
			}
			in, size, mtime, err := openPutSource(cmd, args[0], name)
			if err != nil {
				return err
			}
			defer in.Close()
			if name == "" {
				name = filepath.Base(args[0])
			}
			if len(name) > views.MaxName {
				// Stored all the same (a view need not show names), but a
				// view whose template has {name} cannot: it would seem lost.
				fmt.Fprintf(cmd.ErrOrStderr(), "datagate: warning: the name is %d bytes: no view can show it as a path segment (at most %d)\n", len(name), views.MaxName)
			}
			if ctype == "" {
				ctype = mime.TypeByExtension(filepath.Ext(name))
			}
			req := store.PutRequest{Name: name, Meta: m, ContentType: ctype, ModTime: mtime, Size: size}
			return withCatalog(cmd, g, func(c catalog) error {
				bar := newProgress("put "+name, size, true)
				cr := &countingReader{r: in}
				stop := follow(bar, cr, func(n int64) string {
					if n == size {
						return "put " + name + ": storing" // hashes, fsync, index
					}
					return ""
				})
				o, err := c.Put(cmd.Context(), req, cr)
				stop()
				bar.finish()
				if err != nil {
					return err
				}
				if asJSON {
					return newJSONEncoder(cmd.OutOrStdout()).Encode(admin.ToJSON(o))
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s %d bytes sha256:%s\n", o.ID, o.Name, o.Size, o.SHA256Hex())
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the object's record as JSON")
	cmd.Flags().StringArrayVar(&meta, "meta", nil, "metadata key=value (repeatable)")
	cmd.Flags().StringVar(&name, "name", "", "object name (default: the file's base name)")
	cmd.Flags().StringVar(&ctype, "content-type", "", "content type (default: from the extension)")
	return cmd
}

func newGetCmd(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Write an object's content to stdout or a file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			return withCatalog(cmd, g, func(c catalog) error {
				if out == "" || out == "-" {
					_, err := c.Read(cmd.Context(), id, cmd.OutOrStdout())
					return err
				}
				if st, err := os.Stat(out); err == nil && st.IsDir() {
					return fs.E(fs.Invalid, "get -o", out, errors.New("is a directory: name the file to write"))
				}
				// Write beside the target and rename, so a failed get
				// never leaves a truncated file under the wanted name.
				tmp, err := createBeside(out)
				if err != nil {
					return err
				}
				defer os.Remove(tmp.Name())
				if _, err := c.Read(cmd.Context(), id, tmp); err != nil {
					tmp.Close()
					return err
				}
				if err := tmp.Close(); err != nil {
					return err
				}
				return os.Rename(tmp.Name(), out)
			})
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to FILE instead of stdout")
	return cmd
}

// parseSetMeta reads the --meta k=v that put and crawl give objects. The
// dg. namespace is the views' (views.MetaDirView marks a directory): an
// object given dg.view and dg.dir left its views and showed as an empty
// directory instead. The front-ends refuse such keys the same way.
func parseSetMeta(kv []string) (map[string]string, error) {
	m, err := admin.ParseMeta(kv)
	if err != nil {
		return nil, err
	}
	for k := range m {
		if strings.HasPrefix(k, "dg.") {
			return nil, fs.E(fs.Invalid, "--meta", k, errors.New("the dg. namespace is reserved for datagate's own keys"))
		}
	}
	return m, nil
}

// inputError is the error of an input file that cannot be opened: bad
// input (exit 2), not the missing object that exit 3 tells scripts of.
func inputError(err error) error { return &fs.Error{Kind: fs.Invalid, Err: err} }

// openPutSource opens what put stores: a regular file with its size and
// modification time, or standard input ("-") or a pipe, whose size is
// unknown (-1) and time now. A directory is bad input (the store said
// "invalid argument: read DIR: is a directory" after creating an upload).
func openPutSource(cmd *cobra.Command, path, name string) (io.ReadCloser, int64, time.Time, error) {
	if path == "-" {
		if name == "" {
			return nil, 0, time.Time{}, fs.E(fs.Invalid, "put", "-", errors.New("standard input has no name: give --name"))
		}
		return io.NopCloser(cmd.InOrStdin()), -1, time.Time{}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, time.Time{}, inputError(err)
	}
	st, err := f.Stat()
	switch {
	case err != nil:
		f.Close()
		return nil, 0, time.Time{}, err
	case st.IsDir():
		f.Close()
		return nil, 0, time.Time{}, fs.E(fs.Invalid, "put", path, errors.New("is a directory"))
	case !st.Mode().IsRegular():
		return f, -1, time.Time{}, nil // a pipe, /dev/stdin: its size says nothing
	}
	return f, st.Size(), st.ModTime(), nil
}

// createBeside creates the file that a get writes and then renames over
// out, in out's directory: with the mode of the file it replaces, else
// 0666 less the umask, as the shell's > or curl -o would give (a temporary
// file's 0600 made outputs unreadable to the other users).
func createBeside(out string) (*os.File, error) {
	for {
		name := filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+"."+strconv.FormatUint(rand.Uint64(), 36))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if st, err := os.Stat(out); err == nil && st.Mode().IsRegular() {
			if err := f.Chmod(st.Mode().Perm()); err != nil {
				f.Close()
				os.Remove(name)
				return nil, err
			}
		}
		return f, nil
	}
}

// parseID reads an object id argument; ulid's own message ("bad data size
// when unmarshaling") does not say what an id looks like.
func parseID(s string) (fs.ID, error) {
	id, err := fs.ParseID(s)
	if err != nil {
		return id, fs.E(fs.Invalid, "object id", s, errors.New("want 26 letters and digits, as put and find print"))
	}
	return id, nil
}

func newStatCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "stat ID",
		Short: "Show an object's catalogue record as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			return withCatalog(cmd, g, func(c catalog) error {
				o, err := c.Get(cmd.Context(), id)
				if fs.KindOf(err) == fs.NotExist {
					// The catalogue's own op is "get": name the command run.
					return fs.E(fs.NotExist, "stat", id.String(), errors.New("no such object"))
				}
				if err != nil {
					return err
				}
				enc := newJSONEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(admin.ToJSON(o))
			})
		},
	}
}

func newFindCmd(g *globals) *cobra.Command {
	var asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "find KEY=VALUE...",
		Short: "List objects whose metadata has every KEY=VALUE",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return fs.E(fs.Invalid, "--limit", strconv.Itoa(limit), errors.New("want 0 (no limit) or more"))
			}
			m, err := admin.ParseMeta(args)
			if err != nil {
				return err
			}
			conds := make([]index.Cond, 0, len(m))
			for k, v := range m {
				conds = append(conds, index.Cond{Key: k, Value: v})
			}
			sort.Slice(conds, func(i, j int) bool { return conds[i].Key < conds[j].Key })
			return withCatalog(cmd, g, func(c catalog) error {
				w := cmd.OutOrStdout()
				enc := newJSONEncoder(w)
				return c.Find(cmd.Context(), conds, limit, func(o *fs.Object) error {
					if asJSON {
						return enc.Encode(admin.ToJSON(o))
					}
					_, err := fmt.Fprintf(w, "%s %s\n", o.ID, o.Name)
					return err
				})
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each object as a JSON line")
	cmd.Flags().IntVar(&limit, "limit", 0, "stop after N objects (0: all)")
	return cmd
}

func newRmCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rm ID...",
		Short: "Delete objects",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids := make([]fs.ID, len(args))
			for i, a := range args {
				id, err := parseID(a)
				if err != nil {
					return err
				}
				ids[i] = id
			}
			return withCatalog(cmd, g, func(c catalog) error {
				// As rm(1): an id that fails is reported and the others are
				// still removed (`rm $(find …)` stopped at the first object
				// the collector had removed meanwhile). The exit status is
				// the first failure's.
				var first error
				failed := 0
				for _, id := range ids {
					err := c.Delete(cmd.Context(), id)
					if err == nil {
						continue
					}
					if cmd.Context().Err() != nil {
						return err
					}
					if first == nil {
						first = err
					}
					failed++
					if fs.KindOf(err) == fs.NotExist {
						fmt.Fprintf(cmd.ErrOrStderr(), "datagate: rm %s: no such object\n", id)
					} else {
						fmt.Fprintf(cmd.ErrOrStderr(), "datagate: rm %s: %v\n", id, err)
					}
				}
				if first == nil {
					return nil
				}
				return &fs.Error{Kind: fs.KindOf(first), Op: "rm", Err: fmt.Errorf("%d of %d objects not removed", failed, len(ids))}
			})
		},
	}
}

func newCrawlCmd(g *globals) *cobra.Command {
	var req admin.CrawlRequest
	var meta []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "crawl PROVIDER",
		Short: "List a provider and register what it holds (idempotent)",
		Long: `List a provider and register every file found, taking metadata from the
path with --path-template (e.g. '{date}/{type}/{name}': a {name} placeholder
names the object). Files that do not fit the template or --match are
skipped. Crawling again registers nothing twice and picks up changed files
(by size, mtime and etag); files it names or describes otherwise than the
last crawl did (a corrected --path-template or --meta) move, objects a user
renamed since stay where they are.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := parseSetMeta(meta)
			if err != nil {
				return err
			}
			req.Provider, req.Meta = args[0], m
			return withCatalog(cmd, g, func(c catalog) error {
				bar := newProgress("crawling "+req.Provider, -1, false)
				stats, err := c.Crawl(cmd.Context(), req, func(s ingest.CrawlStats) {
					bar.update(int64(s.Listed), fmt.Sprintf("crawling %s: %d listed, %d added, %d updated", req.Provider, s.Listed, s.Added, s.Updated))
				})
				bar.finish()
				if asJSON {
					if jerr := newJSONEncoder(cmd.OutOrStdout()).Encode(stats); jerr != nil && err == nil {
						err = jerr
					}
					return err
				}
				if err != nil && stats.Listed == 0 {
					return err // an unknown provider, a bad glob: no table of zeros
				}
				if err == nil && stats.Listed == 0 {
					// A mistyped --prefix lists nothing, which is no error
					// for an object store's provider: say so beside the zeros.
					fmt.Fprintf(cmd.ErrOrStderr(), "datagate: crawl: provider %q lists no file under %q\n", req.Provider, req.Prefix)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 1, ' ', 0)
				fmt.Fprintf(tw, "listed\t%d\nskipped\t%d\nadded\t%d\nupdated\t%d\nunchanged\t%d\n", stats.Listed, stats.Skipped, stats.Added, stats.Updated, stats.Unchanged)
				tw.Flush()
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Prefix, "prefix", "", "directory of the provider to crawl")
	f.StringVar(&req.Match, "match", "", "glob on the base name (or the relative path if it has a '/')")
	f.StringArrayVar(&meta, "meta", nil, "metadata key=value added to every object (repeatable)")
	f.StringVar(&req.PathTemplate, "path-template", "", "template turning the relative path into metadata")
	f.BoolVar(&asJSON, "json", false, "print the counts as one JSON object")
	return cmd
}
