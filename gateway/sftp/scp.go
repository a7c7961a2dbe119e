package sftp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/gliderlabs/ssh"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/views"
)

// The legacy SCP protocol (scp -O, and old clients): the client runs
// "scp -t TARGET" to send files here (we are the sink) or "scp -f PATH..."
// to fetch them (we are the source). Each side answers a line with one
// byte: 0 OK, 1 warning + message line, 2 fatal + message line.
//
//	T<mtime> 0 <atime> 0   times of the next file or directory (-p)
//	C<mode> <size> <name>  a file: size bytes follow, then a 0 byte
//	D<mode> 0 <name>       enter a directory
//	E                      leave it
//
// A name is one path segment: empty, ".", "..", a "/" or a control
// character is refused, as is a size the data does not match. A file
// becomes visible only when all its bytes and the closing 0 arrived.

const (
	scpMaxLine = 64 << 10
	scpMaxSize = 1 << 50 // a size beyond any file: refused rather than trusted
)

// scpOpts are the flags scp passes to its remote half.
type scpOpts struct {
	sink, source, recursive, preserve, targetDir bool
	paths                                        []string
}

func parseSCPArgs(args []string) (scpOpts, error) {
	var o scpOpts
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			break
		}
		for _, c := range a[1:] {
			switch c {
			case 't':
				o.sink = true
			case 'f':
				o.source = true
			case 'r':
				o.recursive = true
			case 'p':
				o.preserve = true
			case 'd':
				o.targetDir = true
			case 'v', 'q', 'E', 'T':
			default:
				return o, fmt.Errorf("unsupported option -%c", c)
			}
		}
	}
	o.paths = args[i:]
	switch {
	case o.sink == o.source:
		return o, errors.New("want exactly one of -t and -f")
	case o.sink && len(o.paths) != 1:
		return o, errors.New("-t takes one target")
	case o.source && len(o.paths) == 0:
		return o, errors.New("-f takes at least one path")
	}
	return o, nil
}

// scp runs the legacy protocol; it returns the exit status.
func (s *Server) scp(sess ssh.Session, tree *views.Tree, args []string) int {
	o, err := parseSCPArgs(args)
	if err != nil {
		fmt.Fprintf(sess.Stderr(), "scp: %v\n", err)
		return 1
	}
	c := &scpConn{
		ctx: sess.Context(), tree: tree, r: bufio.NewReaderSize(sess, 64<<10), w: sess,
		opts: o, log: s.log.With("user", sess.User(), "op", "scp", "session", sessionID(sess)),
		started: s.started,
	}
	if o.sink {
		c.slashTarget = len(o.paths[0]) > 1 && strings.HasSuffix(o.paths[0], "/")
	}
	if o.sink {
		err = c.sink(treePath(o.paths[0]))
	} else {
		err = c.source()
	}
	if err != nil {
		c.log.Info("scp failed", "err", err)
		if !errors.Is(err, errReported) {
			c.fatal(err)
		}
		return 1
	}
	if c.errors > 0 {
		return 1
	}
	return 0
}

// errReported: the peer was already told (fatal line sent or received).
var errReported = errors.New("scp: reported")

type scpConn struct {
	ctx  context.Context
	tree *views.Tree
	r    *bufio.Reader
	w    io.Writer
	opts scpOpts
	log  interface {
		Info(string, ...any)
	}
	errors int // warnings sent: the exit status is then 1
	// The target ends in "/": a directory, never the name of a file.
	slashTarget bool
	started     time.Time // Server.started
}

func (c *scpConn) ok() error {
	_, err := c.w.Write([]byte{0})
	return err
}

// warn tells the peer about one failed file and goes on.
func (c *scpConn) warn(err error) error {
	c.errors++
	c.log.Info("scp: a file failed", "err", err)
	_, werr := fmt.Fprintf(c.w, "\x01scp: %s\n", oneLine(scpMessage(err)))
	return werr
}

func (c *scpConn) fatal(err error) {
	fmt.Fprintf(c.w, "\x02scp: %s\n", oneLine(scpMessage(err)))
}

func scpMessage(err error) string {
	var fe *fs.Error
	if errors.As(err, &fe) {
		msg := describe(err)
		if fe.Path != "" {
			return fe.Path + ": " + msg
		}
		return msg
	}
	return err.Error()
}

func oneLine(s string) string { return strings.NewReplacer("\n", " ", "\r", " ").Replace(s) }

// readLine reads one protocol line without its newline, bounded.
func (c *scpConn) readLine() (string, error) {
	var b []byte
	for {
		frag, err := c.r.ReadSlice('\n')
		b = append(b, frag...)
		if err == nil {
			return string(b[:len(b)-1]), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) && len(b) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		if len(b) > scpMaxLine {
			return "", errors.New("protocol line too long")
		}
	}
}

// response reads the peer's answer to what we sent.
func (c *scpConn) response() error {
	b, err := c.r.ReadByte()
	if err != nil {
		return err
	}
	switch b {
	case 0:
		return nil
	case 1, 2:
		msg, _ := c.readLine()
		if b == 2 {
			return fmt.Errorf("%w: peer: %s", errReported, msg)
		}
		return &peerWarning{msg}
	}
	return fmt.Errorf("protocol error: response byte %d", b)
}

type peerWarning struct{ msg string }

func (p *peerWarning) Error() string { return "peer: " + p.msg }

// checkName refuses anything but one plain path segment.
func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("invalid name %q", name)
	case strings.ContainsRune(name, '/'):
		return fmt.Errorf("invalid name %q: contains '/'", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("invalid name %q: contains a control character", name)
		}
	}
	return nil
}

// parseEntry parses "C0644 123 name" or "D0755 0 name".
func parseEntry(line string) (size int64, name string, err error) {
	mode, rest, ok := strings.Cut(line[1:], " ")
	if !ok || len(mode) != 4 || strings.Trim(mode, "01234567") != "" {
		return 0, "", fmt.Errorf("protocol error: bad mode in %q", line)
	}
	sz, name, ok := strings.Cut(rest, " ")
	if !ok {
		return 0, "", fmt.Errorf("protocol error: no name in %q", line)
	}
	size, err = strconv.ParseInt(sz, 10, 64)
	if err != nil || size < 0 || size > scpMaxSize {
		return 0, "", fmt.Errorf("protocol error: bad size in %q", line)
	}
	return size, name, checkName(name)
}

// parseTimes parses "T<mtime> <usec> <atime> <usec>".
func parseTimes(line string) (time.Time, error) {
	f := strings.Fields(line[1:])
	if len(f) != 4 {
		return time.Time{}, fmt.Errorf("protocol error: bad times %q", line)
	}
	sec, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || sec < 0 {
		return time.Time{}, fmt.Errorf("protocol error: bad times %q", line)
	}
	usec, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || usec < 0 || usec > 999999 {
		return time.Time{}, fmt.Errorf("protocol error: bad times %q", line)
	}
	return time.Unix(sec, usec*1000), nil
}

// sink receives into target.
func (c *scpConn) sink(target string) error {
	isDir := false
	if fi, err := c.tree.Stat(c.ctx, target); err == nil && fi.IsDir() {
		isDir = true
	}
	if c.opts.targetDir && !isDir {
		return fs.E(fs.NotDir, "scp", target, nil)
	}
	if err := c.ok(); err != nil {
		return err
	}
	return c.sinkLoop(target, isDir, 0)
}

// sinkLoop handles lines until E (depth > 0) or the end of input.
func (c *scpConn) sinkLoop(target string, targetIsDir bool, depth int) error {
	var mtime time.Time
	for {
		b, err := c.r.ReadByte()
		if errors.Is(err, io.EOF) && depth == 0 {
			return nil
		}
		if err != nil {
			return err
		}
		if b == 1 || b == 2 {
			msg, _ := c.readLine()
			c.errors++
			if b == 2 {
				return fmt.Errorf("%w: peer: %s", errReported, msg)
			}
			continue
		}
		c.r.UnreadByte()
		line, err := c.readLine()
		if err != nil {
			return err
		}
		if line == "" {
			return errors.New("protocol error: empty line")
		}
		switch line[0] {
		case 'T':
			if mtime, err = parseTimes(line); err != nil {
				return err
			}
			if err := c.ok(); err != nil {
				return err
			}
			continue
		case 'E':
			if line != "E" || depth == 0 {
				return fmt.Errorf("protocol error: unexpected %q", line)
			}
			return c.ok()
		case 'C', 'D':
		default:
			return fmt.Errorf("protocol error: unknown line %q", line)
		}
		size, name, err := parseEntry(line)
		if err != nil {
			return err // a bad name or size: fatal, nothing more is read
		}
		p := target
		if targetIsDir {
			p = path.Join(target, name)
		}
		if line[0] == 'D' {
			if !c.opts.recursive {
				return errors.New("received a directory without -r")
			}
			if err := c.mkdir(p, mtime); err != nil {
				if err := c.warn(err); err != nil {
					return err
				}
				mtime = time.Time{}
				continue // the client skips the directory's contents
			}
			if err := c.ok(); err != nil {
				return err
			}
			if err := c.sinkLoop(p, true, depth+1); err != nil {
				return err
			}
			mtime = time.Time{}
			continue
		}
		if depth == 0 && !targetIsDir && c.slashTarget {
			// As open("dir/") on an OpenSSH server: the file is
			// skipped, where it became a file named dir.
			if err := c.warn(fs.E(fs.IsDir, "scp", target+"/", nil)); err != nil {
				return err
			}
			mtime = time.Time{}
			continue
		}
		if err := c.receiveFile(p, size, mtime); err != nil {
			return err
		}
		mtime = time.Time{}
	}
}

func (c *scpConn) mkdir(p string, mtime time.Time) error {
	err := c.tree.Mkdir(c.ctx, p)
	if errors.Is(err, iofs.ErrExist) {
		fi, serr := c.tree.Stat(c.ctx, p)
		if serr == nil && fi.IsDir() {
			err = nil
		} else {
			err = fs.E(fs.NotDir, "mkdir", p, nil)
		}
	}
	if err == nil && !mtime.IsZero() {
		c.tree.Chtimes(c.ctx, p, mtime) // best effort, as scp -p does
	}
	return err
}

// receiveFile reads a file's bytes into the Tree. An error that leaves
// the stream in step (the Tree refused the file) is a warning; a short or
// lying stream is fatal.
func (c *scpConn) receiveFile(p string, size int64, mtime time.Time) error {
	if fi, err := c.tree.Stat(c.ctx, p); err == nil && fi.IsDir() {
		return c.warn(fs.E(fs.IsDir, "scp", p, nil))
	}
	if err := c.ok(); err != nil {
		return err
	}
	d := &scpData{r: c.r, left: size}
	_, err := c.tree.Create(c.ctx, p, d, views.CreateOptions{Size: size, ModTime: mtime})
	if d.broken != nil {
		return d.broken
	}
	if err != nil {
		// Read the rest so the stream stays in step, then warn.
		if _, derr := io.Copy(io.Discard, d); derr != nil {
			return derr
		}
		return c.warn(err)
	}
	if !d.done {
		return errors.New("the store did not read the whole file")
	}
	return c.ok()
}

// scpData yields exactly left bytes and checks the 0 byte that must
// follow them before giving the last bytes, so a lying size fails the
// upload before it can be committed.
type scpData struct {
	r      *bufio.Reader
	left   int64
	done   bool  // all bytes and the trailing 0 were read
	broken error // the stream is out of step
}

var errLyingSize = errors.New("protocol error: the data does not match the size announced")

func (d *scpData) Read(p []byte) (int, error) {
	if d.broken != nil {
		return 0, d.broken
	}
	if d.left == 0 {
		if err := d.finish(); err != nil {
			return 0, err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > d.left {
		p = p[:d.left]
	}
	n, err := d.r.Read(p)
	d.left -= int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		d.broken = err
		return n, err
	}
	if d.left == 0 {
		if err := d.finish(); err != nil {
			return n, err
		}
	}
	return n, nil
}

func (d *scpData) finish() error {
	if d.done {
		return nil
	}
	b, err := d.r.ReadByte()
	switch {
	case err != nil:
		d.broken = io.ErrUnexpectedEOF
	case b == 1 || b == 2:
		// The client could not read its file: it says so instead of 0.
		line, _ := d.r.ReadString('\n')
		d.broken = fmt.Errorf("%w: peer: %s", errReported, strings.TrimSpace(line))
	case b != 0:
		d.broken = errLyingSize
	default:
		d.done = true
		return nil
	}
	return d.broken
}

// source sends the paths.
func (c *scpConn) source() error {
	if err := c.response(); err != nil {
		return err
	}
	for _, arg := range c.opts.paths {
		paths, err := c.glob(treePath(arg))
		if err != nil {
			if err := c.warn(err); err != nil {
				return err
			}
			continue
		}
		for _, p := range paths {
			if err := c.send(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// glob expands a path's wildcards (*, ? and [...] in any segment) as the
// shell does for "scp -f" on an OpenSSH server, where users rely on it
// (scp -O host:dir/*.grib): the matches in name order, or the path
// itself when nothing matches, which then fails as a missing file.
func (c *scpConn) glob(p string) ([]string, error) {
	if !strings.ContainsAny(p, "*?[") {
		return []string{p}, nil
	}
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	found := []string{"/"}
	for _, seg := range segs {
		var next []string
		for _, dir := range found {
			if !strings.ContainsAny(seg, "*?[") {
				next = append(next, path.Join(dir, seg))
				continue
			}
			matches, err := c.matchDir(dir, seg)
			if err != nil {
				return nil, err
			}
			next = append(next, matches...)
		}
		if found = next; len(found) == 0 {
			return []string{p}, nil
		}
	}
	return found, nil
}

// matchDir lists the names in dir matching pattern, in name order. A
// bad pattern matches nothing; so does a missing directory.
func (c *scpConn) matchDir(dir, pattern string) ([]string, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, nil
	}
	var out []string
	after := ""
	for {
		page, err := c.tree.ReadDir(c.ctx, dir, after, listPage)
		if errors.Is(err, iofs.ErrNotExist) || fs.KindOf(err) == fs.NotDir {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		for _, e := range page {
			// The shell's * and ? skip a leading dot unless the
			// pattern has one.
			if strings.HasPrefix(e.Name(), ".") && !strings.HasPrefix(pattern, ".") {
				continue
			}
			if ok, _ := path.Match(pattern, e.Name()); ok {
				out = append(out, path.Join(dir, e.Name()))
			}
		}
		if len(page) < listPage {
			return out, nil
		}
		after = page[len(page)-1].Name()
	}
}

// send sends one file or directory. Per-file failures are warnings.
func (c *scpConn) send(p string) error {
	fi, err := c.tree.Stat(c.ctx, p)
	if err != nil {
		return c.warn(err)
	}
	name := fi.Name()
	if checkName(name) != nil {
		return c.warn(fmt.Errorf("%s: a name scp cannot carry", p))
	}
	if c.opts.preserve {
		mt := fi.ModTime()
		if mt.IsZero() || mt.Unix() < 0 {
			// The root and the view roots have no time: the server's
			// start, as SFTP's attributes give (1970 before).
			mt = c.started
		}
		if _, err := fmt.Fprintf(c.w, "T%d 0 %d 0\n", mt.Unix(), mt.Unix()); err != nil {
			return err
		}
		if err := c.answer(); err != nil {
			return skipWarning(err)
		}
	}
	if fi.IsDir() {
		if !c.opts.recursive {
			return c.warn(fmt.Errorf("%s: not a regular file", p))
		}
		return c.sendDir(p, name)
	}
	return c.sendFile(p, name)
}

// answer is response with a peer warning counted, not fatal.
func (c *scpConn) answer() error {
	err := c.response()
	var pw *peerWarning
	if errors.As(err, &pw) {
		c.errors++
	}
	return err
}

// skipWarning turns a peer's warning into "skip this entry".
func skipWarning(err error) error {
	var pw *peerWarning
	if errors.As(err, &pw) {
		return nil
	}
	return err
}

func (c *scpConn) sendDir(p, name string) error {
	if _, err := fmt.Fprintf(c.w, "D0755 0 %s\n", name); err != nil {
		return err
	}
	if err := c.answer(); err != nil {
		return skipWarning(err)
	}
	after := ""
	for {
		page, err := c.tree.ReadDir(c.ctx, p, after, listPage)
		if err != nil {
			if err := c.warn(err); err != nil {
				return err
			}
			break
		}
		for _, e := range page {
			if err := c.send(path.Join(p, e.Name())); err != nil {
				return err
			}
		}
		if len(page) < listPage {
			break
		}
		after = page[len(page)-1].Name()
	}
	if _, err := io.WriteString(c.w, "E\n"); err != nil {
		return err
	}
	return skipWarning(c.answer())
}

func (c *scpConn) sendFile(p, name string) error {
	f, err := c.tree.Open(c.ctx, p)
	if err != nil {
		return c.warn(err)
	}
	defer f.Close()
	size := f.Size()
	if size < 0 {
		return c.warn(fmt.Errorf("%s: size not known yet; read it over SFTP", p))
	}
	if _, err := fmt.Fprintf(c.w, "C0644 %d %s\n", size, name); err != nil {
		return err
	}
	if err := c.answer(); err != nil {
		return skipWarning(err)
	}
	n, err := io.Copy(c.w, io.LimitReader(f, size))
	if err == nil && n < size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		// The client waits for size bytes: the stream cannot be resumed.
		// Its message names p, not the cache's or the provider's path.
		return readErr(p, err)
	}
	if err := c.ok(); err != nil {
		return err
	}
	return skipWarning(c.answer())
}
