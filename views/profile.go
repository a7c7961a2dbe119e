package views

import (
	"fmt"
	"strings"
)

// Rights are what a user may do in a view.
type Rights uint8

const (
	Read   Rights = 1 << iota // r: stat, list, read
	Write                     // w: create, overwrite, rename, mkdir, chtimes
	Delete                    // d: remove, rmdir
	All    = Read | Write | Delete
)

// ParseRights parses rights letters, e.g. "rw" or "rwd". Each letter at
// most once; the empty string is no right (the view is then invisible).
func ParseRights(s string) (Rights, error) {
	var r Rights
	for _, c := range s {
		var b Rights
		switch c {
		case 'r':
			b = Read
		case 'w':
			b = Write
		case 'd':
			b = Delete
		default:
			return 0, fmt.Errorf("rights %q: unknown letter %q (want r, w, d)", s, c)
		}
		if r&b != 0 {
			return 0, fmt.Errorf("rights %q: letter %q twice", s, c)
		}
		r |= b
	}
	return r, nil
}

func (r Rights) String() string {
	var b strings.Builder
	for i, c := range "rwd" {
		if r&(1<<i) != 0 {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// Profile is what one user may see and do: their rights on each view by
// name, and whether they may create views (S3 CreateBucket); a user gets
// every right on the views they created.
type Profile struct {
	Views       map[string]Rights
	CreateViews bool
}
