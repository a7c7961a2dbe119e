package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/datagate/datagate/views"
)

// Live are the top-level keys a running server applies when it reloads
// its configuration; a change to any other key needs a restart.
var Live = []string{"users", "views", "providers", "admin"}

// Diff is what a reload changes in the live keys, by name. It holds no
// secret: a user's entry says which credentials changed, not to what.
type Diff struct {
	Users, Views, Providers Changes
	// UserDetail names what changed in each changed user: password,
	// ssh_keys, s3_keys, views, create_views.
	UserDetail map[string][]string
	// Admin: the admin API's users changed.
	Admin bool
}

// Changes are the names added, removed and changed, each sorted.
type Changes struct {
	Added, Removed, Changed []string
}

// Empty reports whether nothing changed.
func (d Diff) Empty() bool {
	return d.Users.empty() && d.Views.empty() && d.Providers.empty() && !d.Admin
}

func (c Changes) empty() bool { return len(c.Added)+len(c.Removed)+len(c.Changed) == 0 }

// String describes the changes for a log line, e.g. "users +carol -bob
// ~alice(password); views +by-type".
func (d Diff) String() string {
	var parts []string
	add := func(what string, c Changes, detail map[string][]string) {
		if c.empty() {
			return
		}
		var w []string
		for _, n := range c.Added {
			w = append(w, "+"+n)
		}
		for _, n := range c.Removed {
			w = append(w, "-"+n)
		}
		for _, n := range c.Changed {
			if d := detail[n]; len(d) > 0 {
				n += "(" + strings.Join(d, ",") + ")"
			}
			w = append(w, "~"+n)
		}
		parts = append(parts, what+" "+strings.Join(w, " "))
	}
	add("users", d.Users, d.UserDetail)
	add("views", d.Views, nil)
	add("providers", d.Providers, nil)
	if d.Admin {
		parts = append(parts, "admin users")
	}
	if len(parts) == 0 {
		return "no change"
	}
	return strings.Join(parts, "; ")
}

// Compare returns what changes from old to new in the live keys, and the
// other top-level keys whose values differ (sorted), which a running
// server cannot apply. Both configurations are loaded ones (defaults
// applied), so equal files compare equal.
func Compare(old, new *Config) (Diff, []string) {
	var fixed []string
	ov, nv := reflect.ValueOf(old).Elem(), reflect.ValueOf(new).Elem()
	t := ov.Type()
	for i := range t.NumField() {
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if key == "" || key == "-" {
			key = strings.ToLower(t.Field(i).Name)
		}
		if slices.Contains(Live, key) {
			continue
		}
		if !reflect.DeepEqual(ov.Field(i).Interface(), nv.Field(i).Interface()) {
			fixed = append(fixed, key)
		}
	}
	slices.Sort(fixed)
	d := Diff{
		Users:     changes(old.Users, new.Users, func(a, b *User) bool { return len(userChanges(a, b)) == 0 }),
		Views:     changes(old.Views, new.Views, func(a, b views.Def) bool { return reflect.DeepEqual(a, b) }),
		Providers: changes(old.Providers, new.Providers, func(a, b *Provider) bool { return reflect.DeepEqual(a, b) }),
		Admin:     !reflect.DeepEqual(old.Admin, new.Admin),
	}
	for _, n := range d.Users.Changed {
		if d.UserDetail == nil {
			d.UserDetail = map[string][]string{}
		}
		d.UserDetail[n] = userChanges(old.Users[n], new.Users[n])
	}
	return d, fixed
}

func changes[V any](old, new map[string]V, same func(a, b V) bool) Changes {
	var c Changes
	for _, n := range sortedKeys(new) {
		o, ok := old[n]
		switch {
		case !ok:
			c.Added = append(c.Added, n)
		case !same(o, new[n]):
			c.Changed = append(c.Changed, n)
		}
	}
	for _, n := range sortedKeys(old) {
		if _, ok := new[n]; !ok {
			c.Removed = append(c.Removed, n)
		}
	}
	return c
}

// userChanges names the parts of a user's entry that differ.
func userChanges(a, b *User) []string {
	if a == nil || b == nil {
		return []string{"profile"}
	}
	var out []string
	if a.PasswordHash != b.PasswordHash {
		out = append(out, "password")
	}
	if !slices.Equal(a.SSHKeys, b.SSHKeys) {
		out = append(out, "ssh_keys")
	}
	if !slices.Equal(a.S3Keys, b.S3Keys) {
		out = append(out, "s3_keys")
	}
	if !reflect.DeepEqual(a.Views, b.Views) && (len(a.Views) > 0 || len(b.Views) > 0) {
		out = append(out, "views")
	}
	if a.CreateViews != b.CreateViews {
		out = append(out, "create_views")
	}
	return out
}

// FixedError is a reload refused because it changes keys a running server
// cannot apply.
type FixedError struct{ Keys []string }

func (e *FixedError) Error() string {
	return fmt.Sprintf("%s cannot change while the server runs (restart to apply; live keys: %s)", strings.Join(e.Keys, ", "), strings.Join(Live, ", "))
}
