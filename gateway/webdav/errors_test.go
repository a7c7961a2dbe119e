package webdav

import (
	"errors"
	"net/http"
	"os"
	"testing"

	"github.com/datagate/datagate/fs"
)

// Every kind must be mapped here: a new kind fails this test until it is.
func TestStatusForEveryKind(t *testing.T) {
	want := map[fs.Kind]int{
		fs.Other:       http.StatusInternalServerError,
		fs.NotExist:    http.StatusNotFound,
		fs.Exist:       http.StatusConflict,
		fs.Permission:  http.StatusForbidden,
		fs.NotEmpty:    http.StatusConflict,
		fs.IsDir:       http.StatusMethodNotAllowed,
		fs.NotDir:      http.StatusConflict,
		fs.Invalid:     http.StatusBadRequest,
		fs.Unavailable: http.StatusServiceUnavailable,
		fs.NoSpace:     http.StatusInsufficientStorage,
		fs.Unsupported: http.StatusNotImplemented,
	}
	for _, k := range fs.AllKinds {
		w, ok := want[k]
		if !ok {
			t.Errorf("kind %v has no expected status in this table", k)
			continue
		}
		err := fs.E(k, "op", "/p", nil)
		if got := statusFor(k); got != w {
			t.Errorf("statusFor(%v) = %d, want %d", k, got, w)
		}
		if got := statusOf(err); got != w {
			t.Errorf("statusOf(%v) = %d, want %d", k, got, w)
		}
		// x/net/webdav's generic fallbacks give way to the kind, except
		// where it chose by method for NotExist/Exist.
		for _, fallback := range []int{http.StatusForbidden, http.StatusMethodNotAllowed, http.StatusInternalServerError} {
			got := overrideStatus(fallback, err)
			switch k {
			case fs.Exist:
				if got != fallback {
					t.Errorf("overrideStatus(%d, %v) = %d, want %d kept", fallback, k, got, fallback)
				}
			default:
				if got != w {
					t.Errorf("overrideStatus(%d, %v) = %d, want %d", fallback, k, got, w)
				}
			}
		}
		if got := overrideStatus(http.StatusLocked, err); got != http.StatusLocked {
			t.Errorf("423 replaced by %d for %v", got, k)
		}
		// The shapes x/net/webdav tests with os.IsNotExist & co.
		oe := osError("open", "/p", err)
		if os.IsNotExist(oe) != (k == fs.NotExist) || os.IsExist(oe) != (k == fs.Exist) || os.IsPermission(oe) != (k == fs.Permission) {
			t.Errorf("osError(%v) = %#v: os.Is* disagree with the kind", k, oe)
		}
		var pe *os.PathError
		isPath := errors.As(oe, &pe)
		switch k {
		case fs.Other, fs.Unavailable, fs.NoSpace, fs.Unsupported:
			if isPath {
				t.Errorf("osError(%v) is an *os.PathError: a PROPFIND would skip the entry silently", k)
			}
		default:
			if !isPath {
				t.Errorf("osError(%v) = %T, want *os.PathError", k, oe)
			}
		}
	}
	noParent := fs.E(fs.NotExist, "parent", "/a/b", errNoParent)
	if got := overrideStatus(http.StatusForbidden, noParent); got != http.StatusConflict {
		t.Errorf("missing parent: %d, want 409", got)
	}
	if got := overrideStatus(http.StatusConflict, fs.E(fs.NotExist, "parent", "/v/a", errNoView)); got != http.StatusNotFound {
		t.Errorf("no such view: %d, want 404", got)
	}
	if got := overrideStatus(http.StatusConflict, fs.E(fs.NotExist, "create", "/a", nil)); got != http.StatusConflict {
		t.Errorf("x/net/webdav's 409 for a missing parent replaced by %d", got)
	}
}
