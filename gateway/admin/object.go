package admin

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
	"github.com/datagate/datagate/views"
)

// ViewLister gives the views whose paths an object's detail lists
// (views.Set). Each View computes a path from metadata alone, so no
// index lookup is made.
type ViewLister interface {
	Views() []*views.View
}

// ViewPath is one path an object has.
type ViewPath struct {
	View string `json:"view"`
	Path string `json:"path"`
}

// Detail is the answer of GET /api/v1/objects/{id}: the record, where its
// content is, and its path in every view it is in.
type Detail struct {
	Object
	Locations *Locations `json:"locations,omitempty"`
	Paths     []ViewPath `json:"paths"`
}

func (s *Server) detail(w http.ResponseWriter, r *http.Request) {
	id, ok := s.id(w, r)
	if !ok {
		return
	}
	o, err := s.st.Get(r.Context(), id)
	s.writeDetail(w, r, o, err)
}

// writeDetail answers with o's detail, or with err.
func (s *Server) writeDetail(w http.ResponseWriter, r *http.Request, o *fs.Object, err error) {
	var d *Detail
	if err == nil {
		d, err = s.detailOf(r, o)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, d)
}

func (s *Server) detailOf(r *http.Request, o *fs.Object) (*Detail, error) {
	d := &Detail{Object: *ToJSON(o), Paths: []ViewPath{}}
	if s.opts.Views != nil {
		for _, v := range s.opts.Views.Views() {
			if p, ok := v.PathOf(o); ok {
				d.Paths = append(d.Paths, ViewPath{View: v.Name(), Path: p})
			}
		}
	}
	if s.opts.Inspect != nil {
		l, err := s.opts.Inspect.Locations(r.Context(), o.ID)
		if err != nil && fs.KindOf(err) != fs.NotExist {
			return nil, err
		}
		if err == nil {
			d.Locations = &l
		}
	}
	return d, nil
}

// MetaPatch is the body of PATCH /api/v1/objects/{id}. Keys in Set are
// set, keys in Delete removed (Delete first), and Name, when present,
// renames the object. The object moves in every view whose path depends
// on what changed.
type MetaPatch struct {
	Set    map[string]string `json:"set,omitempty"`
	Delete []string          `json:"delete,omitempty"`
	Name   *string           `json:"name,omitempty"`
}

// check refuses what the index or the views would: empty or oversized
// keys and values, NUL, the reserved dg. namespace (directory markers)
// and "name", which is the object's name (use the name field).
func (p *MetaPatch) check() error {
	if len(p.Set) == 0 && len(p.Delete) == 0 && p.Name == nil {
		return errors.New("nothing to change: give set, delete or name")
	}
	keys := make([]string, 0, len(p.Set)+len(p.Delete))
	for k := range p.Set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	keys = append(keys, p.Delete...)
	for _, k := range keys {
		switch {
		case k == views.NameKey:
			return errors.New(`metadata key "name" is the object's name: use the "name" field`)
		case strings.HasPrefix(k, "dg."):
			return fmt.Errorf("metadata key %q: the dg. namespace is reserved", k)
		case k == "" || len(k) > index.MaxMetaKey || strings.ContainsRune(k, 0):
			return fmt.Errorf("bad metadata key %.40q", k)
		}
	}
	for k, v := range p.Set {
		if len(v) > index.MaxMetaValue || strings.ContainsRune(v, 0) {
			return fmt.Errorf("metadata %s: value longer than %d bytes or holding NUL", k, index.MaxMetaValue)
		}
	}
	if p.Name != nil && (*p.Name == "" || strings.ContainsAny(*p.Name, "/\x00")) {
		return fmt.Errorf("name %q: want a non-empty name without '/' or NUL", *p.Name)
	}
	return nil
}

func (s *Server) patch(w http.ResponseWriter, r *http.Request) {
	id, ok := s.id(w, r)
	if !ok {
		return
	}
	var p MetaPatch
	if !s.decodeBody(w, r, "update", &p) {
		return
	}
	if err := p.check(); err != nil {
		writeError(w, fs.E(fs.Invalid, "update", id.String(), err))
		return
	}
	o, err := s.st.Update(r.Context(), id, func(o *fs.Object) error {
		if _, ok := o.Meta[views.MetaDirPath]; ok {
			return fs.E(fs.Invalid, "update", id.String(), errors.New("a directory marker, not an object"))
		}
		if o.Meta == nil {
			o.Meta = make(map[string]string, len(p.Set))
		}
		for _, k := range p.Delete {
			delete(o.Meta, k)
		}
		for k, v := range p.Set {
			o.Meta[k] = v
		}
		if p.Name != nil {
			o.Name = *p.Name
		}
		return nil
	})
	s.audit(r, "update", err, slog.String("id", id.String()), slog.Any("set", p.Set), slog.Any("delete", p.Delete), slog.Bool("renamed", p.Name != nil))
	s.writeDetail(w, r, o, err)
}
