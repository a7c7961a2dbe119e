package admin

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
	"github.com/datagate/datagate/views"
)

// Page is the answer of GET /api/v1/objects: a page of objects in id
// order and the cursor of the next page ("" when this one is the last).
//
// The cursor is the last id of the page, and the next page starts
// strictly after it, in the order the index yields (ids grow with their
// creation time). Paging is therefore stable under concurrent writes: no
// object is returned twice, and every object that matched before the
// first page and still matches is returned once; objects inserted during
// the walk appear if their id sorts after the cursor.
type Page struct {
	Objects []*Object `json:"objects"`
	Next    string    `json:"next,omitempty"`
	Limit   int       `json:"limit"`
}

// find searches by metadata: q=key=value (repeatable, all must hold; none
// lists every object when Options.Walk is set; q=name=N is the object's
// name), limit (default
// DefaultPageSize, capped at MaxPageSize) and after (the cursor of the
// previous page).
func (s *Server) find(w http.ResponseWriter, r *http.Request) {
	if !s.onlyParams(w, r, "q", "limit", "after") {
		return
	}
	q := r.URL.Query()
	meta, err := parseParams(q, "q")
	if err != nil {
		writeError(w, err)
		return
	}
	// "name" is the object's name, as in the views' filters (views.NameKey),
	// not a metadata key: q=name=x found nothing. The index has no
	// catalogue of names, so it is checked on what the other conditions
	// yield (every object without them: a walk of the catalogue).
	name, byName := meta[views.NameKey]
	delete(meta, views.NameKey)
	if len(meta) == 0 && s.opts.Walk == nil {
		writeError(w, fs.E(fs.Invalid, "search", "", errors.New("want at least one q=key=value")))
		return
	}
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	conds := make([]index.Cond, 0, len(keys))
	for _, k := range keys {
		conds = append(conds, index.Cond{Key: k, Value: meta[k]})
	}
	limit := DefaultPageSize
	if l := q.Get("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit <= 0 {
			writeError(w, fs.E(fs.Invalid, "search", l, fmt.Errorf("limit %q: want a positive number", l)))
			return
		}
		limit = min(limit, MaxPageSize)
	}
	var opts index.FindOptions
	if a := q.Get("after"); a != "" {
		if opts.After, err = fs.ParseID(a); err != nil {
			writeError(w, fs.E(fs.Invalid, "search", a, errors.New("after: not a cursor this API returned")))
			return
		}
	}
	// One more than the page tells whether a next page exists, so the
	// last page says so rather than sending the client for an empty one.
	opts.Limit = limit + 1
	if byName {
		opts.Limit = 0 // add stops the search once the page is full
	}
	page := Page{Objects: []*Object{}, Limit: limit}
	var last fs.ID
	more := false
	add := func(o *fs.Object) error {
		if byName && o.Name != name {
			return nil
		}
		if len(page.Objects) == limit {
			more = true
			return index.ErrStop
		}
		page.Objects = append(page.Objects, ToJSON(o))
		last = o.ID
		return nil
	}
	if len(conds) == 0 {
		// Every object, a page at a time: the walk starts at the cursor,
		// so a page costs its own size, not the catalogue's.
		err = s.opts.Walk(r.Context(), opts.After, add)
	} else {
		err = s.st.Find(r.Context(), conds, opts, add)
	}
	if errors.Is(err, index.ErrStop) {
		err = nil
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if more {
		page.Next = last.String()
	}
	writeJSON(w, page)
}
