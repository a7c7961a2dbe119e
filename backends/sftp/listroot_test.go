package sftp

import (
	"errors"
	iofs "io/fs"
	"testing"
	"time"

	"github.com/datagate/datagate/backends"
)

// A root that is not on the server (a typo in root:) used to list as
// empty, so `datagate crawl` and acquire jobs reported success with
// nothing found; it is an error now. A missing prefix below the root
// still lists as missing.
func TestListOfAMissingRootFails(t *testing.T) {
	f := newFixture(t, "data/feed", map[string][]byte{"a.txt": []byte("a")})
	cfg := f.passwordConfig()
	cfg.Root = "/data/no-such-feed"
	p := newProvider(t, cfg)
	none := func(backends.Entry) error { return nil }
	err := p.List(testCtx(t, 20*time.Second), "", none)
	if !errors.Is(err, iofs.ErrInvalid) || errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("List of a missing root: %v, want ErrInvalid (and not ErrNotExist)", err)
	}
	cfg.Root = "/data/feed"
	p = newProvider(t, cfg)
	if err := p.List(testCtx(t, 20*time.Second), "obs", none); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("List of a missing prefix: %v, want ErrNotExist", err)
	}
}
