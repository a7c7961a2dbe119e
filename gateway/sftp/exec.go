package sftp

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"path"
	"strings"

	"github.com/gliderlabs/ssh"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/views"
)

// exec serves the commands a remote site runs over SSH: scp (the legacy
// protocol, scp -O) and md5sum/sha256sum, answered from the stored
// checksums (rclone's sftp backend checks hashes this way). There is no
// shell; anything else is refused with a message and exit status 1.
func (s *Server) exec(sess ssh.Session) {
	defer s.release(sess.User())
	defer s.recoverSession(sess)
	sess, end := s.metered(sess, "")
	defer end()
	args := sess.Command()
	if len(args) == 0 {
		fmt.Fprintln(sess.Stderr(), "datagate: no shell here; use sftp, scp, md5sum or sha256sum")
		sess.Exit(1)
		return
	}
	tree := s.sessionTree(sess, "scp") // writes are scp's; checksums only read
	var code int
	switch args[0] {
	case "md5sum":
		code = checksum(sess, s.log.With("user", sess.User(), "session", sessionID(sess)), tree, args[1:], "md5sum", md5.New, func(o *fs.Object) []byte { return o.MD5 })
	case "sha256sum":
		code = checksum(sess, s.log.With("user", sess.User(), "session", sessionID(sess)), tree, args[1:], "sha256sum", sha256.New, func(o *fs.Object) []byte { return o.SHA256 })
	case "scp":
		code = s.scp(sess, tree, args[1:])
	default:
		fmt.Fprintf(sess.Stderr(), "datagate: command %q refused: only sftp, scp, md5sum and sha256sum are served\n", args[0])
		code = 1
	}
	sess.Exit(code)
}

// treePath makes a command-line path a Tree path: relative to the root,
// which is also the home: "~" and "~/…" are the shell's home on an
// OpenSSH server (scp -O host:~/x answered "/~/x: No such file").
func treePath(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		p = p[1:]
	}
	return path.Clean("/" + p)
}

// checksum prints lines in coreutils' format. With no path it hashes
// standard input (rclone checks the command exists this way). A stored
// checksum is used when there is one; otherwise the content is read.
func checksum(sess ssh.Session, log *slog.Logger, tree *views.Tree, paths []string, cmd string, newHash func() hash.Hash, stored func(*fs.Object) []byte) int {
	for _, p := range paths {
		if strings.HasPrefix(p, "-") {
			fmt.Fprintf(sess.Stderr(), "%s: options are not supported (%s)\n", cmd, p)
			return 1
		}
	}
	if len(paths) == 0 {
		h := newHash()
		if _, err := io.Copy(h, sess); err != nil {
			fmt.Fprintf(sess.Stderr(), "%s: -: %v\n", cmd, err)
			return 1
		}
		fmt.Fprintf(sess, "%x  -\n", h.Sum(nil))
		return 0
	}
	code := 0
	for _, p := range paths {
		sum, err := fileSum(sess.Context(), tree, treePath(p), newHash, stored)
		if err != nil {
			log.Info("checksum failed", "cmd", cmd, "path", p, "err", err)
			fmt.Fprintf(sess.Stderr(), "%s: %s: %s\n", cmd, p, describe(err))
			code = 1
			continue
		}
		fmt.Fprint(sess, sumLine(sum, p))
	}
	return code
}

// sumLine escapes as coreutils does: a name with a backslash or newline
// gets them escaped and the line a leading backslash.
func sumLine(sum []byte, name string) string {
	if strings.ContainsAny(name, "\\\n\r") {
		name = strings.NewReplacer("\\", "\\\\", "\n", "\\n", "\r", "\\r").Replace(name)
		return "\\" + hex.EncodeToString(sum) + "  " + name + "\n"
	}
	return hex.EncodeToString(sum) + "  " + name + "\n"
}

func fileSum(ctx context.Context, tree *views.Tree, p string, newHash func() hash.Hash, stored func(*fs.Object) []byte) ([]byte, error) {
	f, err := tree.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if sum := stored(f.Object()); len(sum) > 0 {
		return sum, nil
	}
	h := newHash()
	if _, err := io.Copy(h, f); err != nil {
		return nil, readErr(p, err)
	}
	return h.Sum(nil), nil
}

// describe is the message a command-line client gets for err, in the
// words of coreutils where there are some.
func describe(err error) string {
	switch fs.KindOf(err) {
	case fs.NotExist:
		return "No such file or directory"
	case fs.IsDir:
		return "Is a directory"
	case fs.NotDir:
		return "Not a directory"
	case fs.Permission:
		return "Permission denied"
	case fs.Other:
		return "internal server error"
	case fs.NoSpace:
		return "No space left on device" // the store's message names server paths
	case fs.Unavailable:
		return "Input/output error" // a provider's message names its URL, the store's its files
	}
	return err.Error()
}
