package sftp

import (
	"errors"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"

	pkgsftp "github.com/pkg/sftp"

	"github.com/datagate/datagate/fs"
)

func TestStatusForEveryKind(t *testing.T) {
	want := map[fs.Kind]error{
		fs.Other:       pkgsftp.ErrSSHFxFailure,
		fs.NotExist:    pkgsftp.ErrSSHFxNoSuchFile,
		fs.Exist:       pkgsftp.ErrSSHFxFailure,
		fs.Permission:  pkgsftp.ErrSSHFxPermissionDenied,
		fs.NotEmpty:    pkgsftp.ErrSSHFxFailure,
		fs.IsDir:       pkgsftp.ErrSSHFxFailure,
		fs.NotDir:      pkgsftp.ErrSSHFxFailure,
		fs.Invalid:     pkgsftp.ErrSSHFxBadMessage,
		fs.Unavailable: pkgsftp.ErrSSHFxFailure,
		fs.NoSpace:     pkgsftp.ErrSSHFxFailure,
		fs.Unsupported: pkgsftp.ErrSSHFxOpUnsupported,
	}
	for _, k := range fs.AllKinds {
		t.Run(k.String(), func(t *testing.T) {
			code, ok := want[k]
			if !ok {
				t.Fatalf("kind %v has no SFTP status in this table: map it in status.go", k)
			}
			err := toStatus(fs.E(k, "open", "/v/a", nil))
			if !errors.Is(err, code) {
				t.Fatalf("toStatus(%v) = %v, want code %v", k, err, code)
			}
			// pkg/sftp must not see a different code through os.IsNotExist
			// or an errno in the chain.
			if k != fs.NotExist && os.IsNotExist(err) {
				t.Fatalf("toStatus(%v) looks like not-exist to os.IsNotExist", k)
			}
			if errors.Is(err, io.EOF) {
				t.Fatalf("toStatus(%v) looks like EOF", k)
			}
			if k == fs.Other && err.Error() != "internal server error" {
				t.Fatalf("internal error described to the client: %q", err)
			}
		})
	}
}

// A full disk is described by the client's path, not the server's (the
// store's message named its temporary file under the data directory).
func TestNoSpaceHidesServerPaths(t *testing.T) {
	inner := &os.PathError{Op: "write", Path: "/srv/datagate/spool/sftp/#42", Err: syscall.ENOSPC}
	err := toStatus(fs.Wrap("write spool", "/v/a.bin", inner))
	if !errors.Is(err, pkgsftp.ErrSSHFxFailure) || err.Error() != "write spool /v/a.bin: no space left on device" {
		t.Fatalf("toStatus = %q", err)
	}
	if msg := scpMessage(fs.Wrap("create", "/v/a.bin", inner)); strings.Contains(msg, "/srv") || !strings.Contains(msg, "No space left on device") {
		t.Fatalf("scp message %q", msg)
	}
}
