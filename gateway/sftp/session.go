package sftp

import (
	"errors"
	"io"

	"github.com/gliderlabs/ssh"
	pkgsftp "github.com/pkg/sftp"
)

// sftpSubsystem serves one SFTP session over the user's Tree. gliderlabs
// sends exit-status (0 unless we exit first) before closing the channel,
// as OpenSSH 9's scp, which speaks SFTP, insists on.
func (s *Server) sftpSubsystem(sess ssh.Session) {
	defer s.release(sess.User())
	defer s.recoverSession(sess)
	sess, end := s.metered(sess, "sftp")
	defer end()
	log := s.log.With("user", sess.User(), "addr", sess.RemoteAddr().String(), "session", sessionID(sess))
	h := s.newHandlers(s.sessionTree(sess, "sftp"), log)
	rs := pkgsftp.NewRequestServer(newPacketShim(sess, h), h.pkgHandlers(),
		pkgsftp.WithRSAllocator(), pkgsftp.WithRSMaxTxPacket(maxReadLength))
	// Not rs.Close: it would close the channel before the exit-status.
	err := rs.Serve()
	if err != nil && !errors.Is(err, io.EOF) {
		log.Info("SFTP session ended", "err", err)
		sess.Exit(1)
		return
	}
	sess.Exit(0)
}
