package store

import (
	"bytes"
	"strings"
	"testing"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/local"
	"github.com/datagate/datagate/fs"
)

// A reload swaps the providers: an object of a removed provider stays
// registered and fails to fetch with an error naming the provider; an
// added provider serves registrations and reads at once.
func TestSetProviders(t *testing.T) {
	e := newEnv(t)
	e.write(t, "a", pattern(1000))
	e.write(t, "b", pattern(2000))
	cached := &fs.Object{Size: -1, Source: fs.Location{Provider: "disk", Path: "a"}}
	cold := &fs.Object{Size: -1, Source: fs.Location{Provider: "disk", Path: "b"}}
	register(t, e.st, cached, cold)
	if _, err := readObject(t, e.st, cached.ID); err != nil {
		t.Fatal(err)
	}

	other, err := local.New("other", local.Config{Root: e.srcRoot})
	if err != nil {
		t.Fatal(err)
	}
	e.st.SetProviders(map[string]backends.Provider{"other": other})

	if _, err := e.st.Get(ctxT(t), cold.ID); err != nil {
		t.Fatalf("object of a removed provider left the catalogue: %v", err)
	}
	for _, o := range []*fs.Object{cold, cached} {
		_, err = readObject(t, e.st, o.ID)
		if fs.KindOf(err) != fs.Unavailable || !strings.Contains(err.Error(), `"disk"`) {
			t.Fatalf("read from a removed provider: %v (kind %v), want Unavailable naming it", err, fs.KindOf(err))
		}
	}
	if _, err := e.st.Register(ctxT(t), []*fs.Object{{Source: fs.Location{Provider: "disk", Path: "b"}}}); fs.KindOf(err) != fs.Invalid {
		t.Fatalf("register on a removed provider: %v", err)
	}
	added := &fs.Object{Size: -1, Source: fs.Location{Provider: "other", Path: "b"}}
	register(t, e.st, added)
	if got, err := readObject(t, e.st, added.ID); err != nil || !bytes.Equal(got, pattern(2000)) {
		t.Fatalf("added provider: %d bytes, %v", len(got), err)
	}
	if p, ok := e.st.Provider("other"); !ok || p != other {
		t.Fatal("Provider does not see the new set")
	}
}
