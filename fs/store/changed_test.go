package store

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/datagate/datagate/backends"
	"github.com/datagate/datagate/backends/cache"
	httpbackend "github.com/datagate/datagate/backends/http"
	"github.com/datagate/datagate/backends/local"
	"github.com/datagate/datagate/fs"
)

// A provider file rewritten in place after it was registered (a product
// re-issued under the same name) must not lend the object its new bytes:
// the object was registered whole with the old size and no checksum, and
// a read used to return the first Size bytes of the new file (a web
// server answers "bytes=0-5" of a 19-byte file with 206 and 6 bytes).
// Registered ranges of a file that grew stay readable.
func TestRewrittenProviderFileIsNotServed(t *testing.T) {
	root := t.TempDir()
	srv := httptest.NewServer(http.FileServer(http.Dir(root)))
	t.Cleanup(srv.Close)
	web, err := httpbackend.New("web", httpbackend.Config{URL: srv.URL + "/", Timeout: 5e9, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	disk, err := local.New("disk", local.Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	primary, err := local.New(PrimaryName, local.Config{Root: filepath.Join(dir, "objects")})
	if err != nil {
		t.Fatal(err)
	}
	st, err := Open(context.Background(), Options{
		Dir: dir, Providers: map[string]backends.Provider{"web": web, "disk": disk}, Primary: primary,
		Cache: cache.Options{ChunkSize: 64 << 10},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	old := []byte("hello\n")
	big := pattern(200 << 10)
	for name, b := range map[string][]byte{"small.txt": old, "big.bin": big, "fields.grib": big} {
		if err := os.WriteFile(filepath.Join(root, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var objs []*fs.Object
	for _, prov := range []string{"web", "disk"} {
		objs = append(objs,
			&fs.Object{Name: prov + "-small", Size: int64(len(old)), Source: fs.Location{Provider: prov, Path: "small.txt"}},
			&fs.Object{Name: prov + "-big", Size: int64(len(big)), Source: fs.Location{Provider: prov, Path: "big.bin"}},
			&fs.Object{Name: prov + "-field", Size: 1000, Source: fs.Location{Provider: prov, Path: "fields.grib", Offset: 5000, Length: 1000}})
	}
	register(t, st, objs...)

	// Re-issued: longer, shorter, and a range's file grown at its end.
	if err := os.WriteFile(filepath.Join(root, "small.txt"), []byte("hello world, re-issued\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "big.bin"), big[:100<<10], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "fields.grib"), append(big, "more fields"...), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		got, err := readObject(t, st, o.ID)
		switch {
		case o.Source.Length > 0:
			if err != nil || !bytes.Equal(got, big[5000:6000]) {
				t.Errorf("%s: a range of a grown file: %d bytes, %v", o.Name, len(got), err)
			}
		case err == nil:
			t.Errorf("%s: the rewritten file was served: %q…", o.Name, got[:min(len(got), 20)])
		case !errors.Is(err, backends.ErrChanged):
			t.Errorf("%s: error %v, want one saying the file changed", o.Name, err)
		}
	}
}
