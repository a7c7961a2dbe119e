package sftp

import (
	"fmt"

	"github.com/gliderlabs/ssh"

	"github.com/datagate/datagate/views"
)

func (s *Server) scp(sess ssh.Session, tree *views.Tree, args []string) int {
	fmt.Fprintln(sess.Stderr(), "datagate: legacy scp is not served; use scp without -O (SFTP)")
	return 1
}
