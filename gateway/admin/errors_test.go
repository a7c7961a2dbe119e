package admin

import (
	"net/http"
	"testing"

	"github.com/datagate/datagate/fs"
)

func TestEveryKindHasAStatus(t *testing.T) {
	want := map[fs.Kind]int{
		fs.Other: 500, fs.NotExist: 404, fs.Exist: 409, fs.Permission: 403, fs.NotEmpty: 409,
		fs.IsDir: 400, fs.NotDir: 400, fs.Invalid: 400, fs.Unavailable: 502, fs.NoSpace: 507, fs.Unsupported: 501,
	}
	for _, k := range fs.AllKinds {
		w, ok := want[k]
		if !ok {
			t.Errorf("kind %v has no expected status in this table: map it in errors.go and here", k)
			continue
		}
		if got := status(k); got != w {
			t.Errorf("status(%v) = %d, want %d", k, got, w)
		}
		if kindOfName(k.String()) != k {
			t.Errorf("kind %v does not survive the round trip through its name", k)
		}
		if http.StatusText(status(k)) == "" {
			t.Errorf("status(%v) is not a known HTTP status", k)
		}
	}
}
