package views_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/datagate/datagate/backends/local"
	"github.com/datagate/datagate/fs/store"
	"github.com/datagate/datagate/views"
)

// Wire a view set into a store as cmd/datagate does, push a file through
// one view and see it in the other.
func Example() {
	dir, _ := os.MkdirTemp("", "views-example-")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	set, err := views.NewSet(map[string]views.Def{
		"by-date": {Path: "{date}/{type}/{name}"},
		"by-type": {Path: "{type}/{date}/{name}", Filter: "type in (obs, fc)"},
	}, nil)
	if err != nil {
		panic(err)
	}
	primary, _ := local.New(store.PrimaryName, local.Config{Root: filepath.Join(dir, "objects")})
	st, err := store.Open(ctx, store.Options{Dir: dir, Primary: primary, Derive: set.Derive})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	if err := set.Attach(ctx, st); err != nil {
		panic(err)
	}

	alice := views.NewTree(views.TreeOptions{Set: set, Store: st, User: "alice",
		Profile: views.Profile{Views: map[string]views.Rights{"by-date": views.Read | views.Write, "by-type": views.Read}}})
	if _, err := alice.Create(ctx, "/by-date/2026-11-22/obs/synop.bufr", strings.NewReader("BUFR"), views.CreateOptions{Size: 4}); err != nil {
		panic(err)
	}
	infos, _ := alice.ReadDir(ctx, "/by-type/obs", "", 100)
	for _, i := range infos {
		fmt.Println(i.Name(), i.IsDir())
	}
	fi, _ := alice.Stat(ctx, "/by-type/obs/2026-11-22/synop.bufr")
	fmt.Println(fi.Name(), fi.Size())
	_, err = alice.Create(ctx, "/by-type/obs/2026-11-22/x", strings.NewReader("x"), views.CreateOptions{Size: 1})
	fmt.Println(err)
	// Output:
	// 2026-11-22 true
	// synop.bufr 4
	// create /by-type/obs/2026-11-22/x: permission denied: needs right "w" on view by-type
}
