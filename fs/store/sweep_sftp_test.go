package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/retry"
)

// TestSFTPStoreCrashLeftovers: a crash during a copy to an SFTP store
// leaves a temporary file in the store's ".datagate-tmp" on the server
// (backends/sftp TestSweepTemp makes one with kill -9). One untouched for
// StoreTempAge (default an hour) is removed at start, through the retry
// decorator serve wraps stores in; a recent one (a copy of another server
// sharing the store) stays.
func TestSFTPStoreCrashLeftovers(t *testing.T) {
	p, dir := sftpStore(t, "remote")
	tmp := filepath.Join(dir, ".datagate-tmp")
	old := filepath.Join(tmp, ".datagate-0123456789abcdef.tmp")
	recent := filepath.Join(tmp, ".datagate-fedcba9876543210.tmp")
	os.MkdirAll(tmp, 0o755)
	for _, f := range []string{old, recent} {
		if err := os.WriteFile(f, pattern(1000), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	then := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(old, then, then); err != nil {
		t.Fatal(err)
	}
	wrapped := retry.New(p, retry.Options{}).(backends.Writer)
	newRepEnv(t, func(r *Replication) { r.Stores = append(r.Stores, Target{Name: "remote", W: wrapped}) })
	waitFor(t, func() bool { _, err := os.Stat(old); return errors.Is(err, os.ErrNotExist) })
	if _, err := os.Stat(recent); err != nil {
		t.Fatalf("a recent temporary file was removed: %v", err)
	}
}
