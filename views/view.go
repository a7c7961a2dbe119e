package views

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
	"github.com/datagate/datagate/fs/pathtmpl"
)

// Def defines a view: what the configuration says and what a view created
// at run time is persisted as.
type Def struct {
	Path   string            `yaml:"path" json:"path"`                         // path template, e.g. {date}/{type}/{name}
	Filter string            `yaml:"filter,omitempty" json:"filter,omitempty"` // see Filter
	Set    map[string]string `yaml:"set,omitempty" json:"set,omitempty"`       // metadata every upload receives
}

// View is a parsed, immutable view.
type View struct {
	name    string
	def     Def
	tmpl    *pathtmpl.Template
	filter  *Filter
	owner   string // the user who created it at run time; "" for configured views
	runtime bool
}

// Reserved metadata keys. Directory markers (Mkdir) carry the view they
// belong to and their directory path in that view. Templates, filters
// and set: may not use the dg. namespace.
const (
	MetaDirView = "dg.view"
	MetaDirPath = "dg.dir"
	reservedNS  = "dg."
	// NameKey is the placeholder and filter key that stands for the
	// object's name (fs.Object.Name) rather than a metadata key.
	NameKey = "name"
)

// Limits on the paths a Tree accepts and the index keeps.
const (
	MaxName = 255  // bytes per path segment
	MaxPath = 4096 // bytes per path
)

var viewNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// CheckName reports whether name can name a view: 1-63 letters, digits,
// '_', '.', '-', starting with a letter or digit.
func CheckName(name string) error {
	if !viewNameRE.MatchString(name) {
		return fs.E(fs.Invalid, "view", name, errors.New("a view name is 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit"))
	}
	return nil
}

// NewView parses a view definition. Errors are Invalid and name the view.
func NewView(name string, d Def) (*View, error) {
	fail := func(err error) (*View, error) {
		return nil, fs.E(fs.Invalid, "view", name, err)
	}
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if d.Path == "" {
		return fail(errors.New("no path template"))
	}
	t, err := pathtmpl.Parse(d.Path)
	if err != nil {
		return fail(err)
	}
	for _, k := range t.Keys() {
		if strings.HasPrefix(k, reservedNS) {
			return fail(fmt.Errorf("template key %q: the %s namespace is reserved", k, reservedNS))
		}
	}
	f, err := ParseFilter(d.Filter)
	if err != nil {
		return fail(err)
	}
	for _, c := range f.conds {
		if strings.HasPrefix(c.key, reservedNS) {
			return fail(fmt.Errorf("filter key %q: the %s namespace is reserved", c.key, reservedNS))
		}
	}
	tk := map[string]bool{}
	for _, k := range t.Keys() {
		tk[k] = true
	}
	for k, v := range d.Set {
		switch {
		case k == NameKey || strings.HasPrefix(k, reservedNS):
			return fail(fmt.Errorf("set: key %q is reserved", k))
		case tk[k]:
			return fail(fmt.Errorf("set: key %q is also in the path template, which gives it its value", k))
		case k == "" || len(k) > index.MaxMetaKey || len(v) > index.MaxMetaValue || strings.ContainsRune(k+v, 0):
			return fail(fmt.Errorf("set: bad key or value %.40q", k))
		}
	}
	// An upload receives set: and must then belong to the view.
	if !f.MatchPartial(func(k string) (string, bool) { v, ok := d.Set[k]; return v, ok }) {
		return fail(fmt.Errorf("set: %v contradicts the filter %q", d.Set, d.Filter))
	}
	return &View{name: name, def: cloneDef(d), tmpl: t, filter: f}, nil
}

func cloneDef(d Def) Def {
	c := d
	if d.Set != nil {
		c.Set = make(map[string]string, len(d.Set))
		for k, v := range d.Set {
			c.Set[k] = v
		}
	}
	return c
}

// Name returns the view's name.
func (v *View) Name() string { return v.name }

// Def returns a copy of the view's definition.
func (v *View) Def() Def { return cloneDef(v.def) }

// Template returns the view's path template.
func (v *View) Template() *pathtmpl.Template { return v.tmpl }

// Filter returns the view's filter (never nil).
func (v *View) Filter() *Filter { return v.filter }

// Runtime reports whether the view was created at run time (and so is kept
// in the index), and by whom.
func (v *View) Runtime() (owner string, ok bool) { return v.owner, v.runtime }

// getter returns the metadata lookup filters and templates see: the
// object's metadata, with "name" standing for its name.
func getter(o *fs.Object) func(string) (string, bool) {
	return func(k string) (string, bool) {
		if k == NameKey {
			return o.Name, true
		}
		v, ok := o.Meta[k]
		return v, ok
	}
}

// renderMeta is what templates render: the metadata plus the name. It
// copies the map only when the name must be added.
func renderMeta(o *fs.Object) map[string]string {
	if cur, ok := o.Meta[NameKey]; ok && cur == o.Name {
		return o.Meta
	}
	m := make(map[string]string, len(o.Meta)+1)
	for k, v := range o.Meta {
		m[k] = v
	}
	m[NameKey] = o.Name
	return m
}

// PathOf returns the object's path in the view, and whether it is in the
// view at all: it must pass the filter, have every key the template
// needs, and render to a path within the Tree's limits. Directory markers
// are in no view by this rule (see Set.Derive).
func (v *View) PathOf(o *fs.Object) (string, bool) {
	if _, ok := o.Meta[MetaDirPath]; ok {
		return "", false
	}
	return v.pathOf(o, nil)
}

func (v *View) pathOf(o *fs.Object, meta map[string]string) (string, bool) {
	if !v.filter.Match(getter(o)) {
		return "", false
	}
	if meta == nil {
		meta = renderMeta(o)
	}
	p, ok := v.tmpl.Render(meta)
	if !ok || !pathFits(p) {
		return "", false
	}
	return p, true
}

// pathFits reports whether a rendered path is within the limits a Tree
// accepts; an object whose path would not be is left out of the view
// rather than indexed where no client could name it.
func pathFits(p string) bool {
	if len(p) > MaxPath {
		return false
	}
	for {
		i := strings.IndexByte(p, '/')
		if i < 0 {
			return len(p) <= MaxName
		}
		if i > MaxName {
			return false
		}
		p = p[i+1:]
	}
}

// sortedNames returns the keys of m in order.
func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
