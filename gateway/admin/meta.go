package admin

import (
	"errors"
	"sort"
	"strings"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/ingest"
)

// reservedNS is the views' metadata namespace: dg.view and dg.dir mark a
// directory made by mkdir (views.MetaDirView). An object given them
// leaves its views and shows as an empty directory instead, so the API
// refuses them from callers, as the CLI and the front-ends do.
const reservedNS = "dg."

// CheckMeta refuses metadata a caller may not set: keys in the dg.
// namespace. The error is Invalid and names the first such key.
func CheckMeta(m map[string]string) error {
	var bad []string
	for k := range m {
		if strings.HasPrefix(k, reservedNS) {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return fs.E(fs.Invalid, "metadata", bad[0], errors.New("the dg. namespace is reserved for datagate's own keys"))
}

// callerRecords checks NDJSON records as a caller's: the store's checks,
// and CheckMeta first, so a record with a dg. key is a line error.
type callerRecords struct{ ingest.Registrar }

func (c callerRecords) Check(o *fs.Object) error {
	if err := CheckMeta(o.Meta); err != nil {
		return err
	}
	return c.Registrar.Check(o)
}
