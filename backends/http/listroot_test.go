package http

import (
	"errors"
	iofs "io/fs"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/datagate/datagate/backends"
)

// A base URL that is not there (a typo in url:) used to list as empty, so
// `datagate crawl` and acquire jobs reported success with nothing found;
// it is an error now. A missing prefix below it still lists as missing
// (a crawl of a directory not there yet finds nothing).
func TestListOfAMissingBaseFails(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	p := newTest(t, Config{URL: srv.URL + "/products/"})
	none := func(backends.Entry) error { return nil }
	err := p.List(ctxT(t), "", none)
	if !errors.Is(err, iofs.ErrInvalid) || errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("List of a base URL that 404s: %v, want ErrInvalid (and not ErrNotExist)", err)
	}
	if err := p.List(ctxT(t), "obs", none); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("List of a missing prefix: %v, want ErrNotExist", err)
	}
}
