package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/datagate/datagate/fs"
)

// goneCtx is cancelled as soon as its object has left the catalogue: a
// client that gives up right after its delete was committed.
type goneCtx struct {
	context.Context
	st *Store
	id fs.ID
}

func (c goneCtx) Err() error {
	if _, err := c.st.idx.Get(context.Background(), c.id); fs.KindOf(err) == fs.NotExist {
		return context.Canceled
	}
	return nil
}

// A delete whose caller went away once it was committed left the stored
// bytes behind, referenced by nothing, until an fsck --repair ("drop
// stored content … context canceled" in the soak test, S3 clients
// stopping at the load's end).
func TestDeleteDropsContentWhenTheCallerLeaves(t *testing.T) {
	e := newEnv(t)
	o, err := e.st.Put(ctxT(t), PutRequest{Name: "a", Size: -1}, bytes.NewReader(pattern(5000)))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(e.dir, "objects", primaryPath(o.ID))
	if _, err := os.Stat(file); err != nil {
		t.Fatal(err)
	}
	if err := e.st.Delete(goneCtx{context.Background(), e.st, o.ID}, o.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); err == nil {
		t.Fatalf("the deleted object's file is left: %s", file)
	}
}
