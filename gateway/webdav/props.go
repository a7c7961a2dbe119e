package webdav

import (
	"bytes"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"golang.org/x/net/webdav"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/fs/index"
)

// Property namespaces.
const (
	// MetaNS holds one property per metadata key of a file: PROPFIND
	// shows them, PROPPATCH sets and removes them (needs w on the view).
	MetaNS = "urn:datagate:meta"
	// ownCloudNS: oc:checksums, which ownCloud/Nextcloud clients and
	// rclone (vendor owncloud) read to verify transfers.
	ownCloudNS = "http://owncloud.org/ns"
	// msNS: Windows Explorer sets Win32LastModifiedTime (and creation
	// and access times, attributes) after each upload. The modification
	// time is applied; the others are accepted and not kept.
	msNS = "urn:schemas-microsoft-com:"
)

// deadPrefix marks metadata keys holding other dead properties (any
// namespace but MetaNS): "dav:{namespace}local" → the property's XML.
// They live with the object's other metadata, so they follow it through
// MOVE (a metadata change) and go with it on DELETE.
const deadPrefix = "dav:"

// reservedKey reports keys that are not shown or set as MetaNS
// properties: the views' own (dg.) and the dead properties'.
func reservedKey(k string) bool {
	return strings.HasPrefix(k, "dg.") || strings.HasPrefix(k, deadPrefix)
}

// DeadProps returns a file's metadata as MetaNS properties, its other dead
// properties, and oc:checksums. Collections have none.
func (d *davFile) DeadProps() (map[xml.Name]webdav.Property, error) {
	if d.info.IsDir() {
		return nil, nil
	}
	o, err := d.info.object(d.ctx)
	if err != nil {
		return nil, d.fs.fail("props", d.name, err)
	}
	m := make(map[xml.Name]webdav.Property, len(o.Meta)+1)
	for k, v := range o.Meta {
		if rest, ok := strings.CutPrefix(k, deadPrefix); ok {
			if n, ok := parseDeadKey(rest); ok {
				m[n] = webdav.Property{XMLName: n, InnerXML: []byte(v)}
			}
			continue
		}
		if reservedKey(k) || !validXMLName(k) {
			continue // a key XML cannot name is left out
		}
		var b bytes.Buffer
		xml.EscapeText(&b, []byte(v))
		n := xml.Name{Space: MetaNS, Local: k}
		m[n] = webdav.Property{XMLName: n, InnerXML: b.Bytes()}
	}
	if sums := checksums(o); sums != "" {
		n := xml.Name{Space: ownCloudNS, Local: "checksums"}
		m[n] = webdav.Property{XMLName: n, InnerXML: []byte(`<checksum xmlns="` + ownCloudNS + `">` + sums + `</checksum>`)}
	}
	return m, nil
}

// checksums in the form ownCloud's oc:checksum uses.
func checksums(o *fs.Object) string {
	var s []string
	if len(o.MD5) > 0 {
		s = append(s, "MD5:"+hex.EncodeToString(o.MD5))
	}
	if len(o.SHA256) > 0 {
		s = append(s, "SHA256:"+hex.EncodeToString(o.SHA256))
	}
	return strings.Join(s, " ")
}

func deadKey(n xml.Name) string { return deadPrefix + "{" + n.Space + "}" + n.Local }

func parseDeadKey(s string) (xml.Name, bool) {
	if !strings.HasPrefix(s, "{") {
		return xml.Name{}, false
	}
	i := strings.IndexByte(s, '}')
	if i < 0 || i == len(s)-1 {
		return xml.Name{}, false
	}
	return xml.Name{Space: s[1:i], Local: s[i+1:]}, true
}

// validXMLName reports whether s can be an XML element's local name (the
// ASCII subset of the rule; other keys are not shown as properties).
func validXMLName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		case i > 0 && (c == '-' || c == '.' || c >= '0' && c <= '9'):
		default:
			return false
		}
	}
	return !strings.HasPrefix(strings.ToLower(s), "xml")
}

// xmlText returns the text of a property value that holds text only.
func xmlText(inner []byte) (string, bool) {
	dec := xml.NewDecoder(bytes.NewReader(inner))
	var b strings.Builder
	for {
		t, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return b.String(), true
		}
		if err != nil {
			return "", false
		}
		switch t := t.(type) {
		case xml.CharData:
			b.Write(t)
		case xml.Comment:
		default:
			return "", false
		}
	}
}

// patchOp is one validated property change.
type patchOp struct {
	key, val string
	remove   bool
}

// Patch sets and removes properties, all or none, with Tree.SetMeta:
// MetaNS properties are the file's metadata, others dead properties kept
// beside it. It needs w on the view. A key of the view's path template
// moves the file (in every view) to the path its new metadata gives;
// 409 when that path is taken, when the view's filter refuses the new
// metadata or a key the template needs is removed; 403 for a key the
// view fixes (set:).
func (d *davFile) Patch(patches []webdav.Proppatch) ([]webdav.Propstat, error) {
	var names []xml.Name
	for _, p := range patches {
		for _, pr := range p.Props {
			names = append(names, pr.XMLName)
		}
	}
	bad := map[xml.Name]int{}
	if d.info.Mode()&0o200 == 0 {
		for _, n := range names {
			bad[n] = http.StatusForbidden
		}
		return propstats(names, bad), nil
	}
	var ops []patchOp
	var mtime time.Time
	for _, p := range patches {
		for _, pr := range p.Props {
			if pr.XMLName.Space == msNS && strings.HasPrefix(pr.XMLName.Local, "Win32") {
				if pr.XMLName.Local == "Win32LastModifiedTime" && !p.Remove {
					text, _ := xmlText(pr.InnerXML)
					t, err := http.ParseTime(strings.TrimSpace(text))
					if err != nil {
						bad[pr.XMLName] = http.StatusConflict
						continue
					}
					mtime = t
				}
				continue
			}
			if d.info.IsDir() {
				bad[pr.XMLName] = http.StatusForbidden // no dead properties on collections
				continue
			}
			op, code := toOp(pr, p.Remove)
			if code != 0 {
				bad[pr.XMLName] = code
				continue
			}
			ops = append(ops, op)
		}
	}
	if len(bad) > 0 {
		return propstats(names, bad), nil
	}
	if len(ops) == 0 {
		return propstats(names, nil), d.chtimes(mtime)
	}
	// A modification time goes first: the metadata change may move the
	// file. (Windows sends its Win32 properties alone.)
	if err := d.chtimes(mtime); err != nil {
		return nil, err
	}
	set, del := map[string]string{}, []string(nil)
	for _, op := range ops {
		if op.remove {
			delete(set, op.key)
			del = append(del, op.key)
		} else {
			set[op.key] = op.val
		}
	}
	_, err := d.fs.tree.SetMeta(d.ctx, d.name, set, del)
	if fs.KindOf(err) == fs.NoSpace {
		// More than views.MaxMeta bytes of metadata: nothing changed.
		for _, n := range names {
			bad[n] = http.StatusInsufficientStorage // RFC 4918 9.2.1: no room to record it
		}
		return propstats(names, bad), nil
	}
	code := 0
	switch fs.KindOf(err) {
	case fs.Permission: // a key the view fixes
		code = http.StatusForbidden
	case fs.Invalid, fs.Exist: // the view refuses the new metadata, or its path is taken
		code = http.StatusConflict
	}
	switch {
	case err == nil:
		// A template key moved the file: its locks stay behind otherwise
		// (server.go drops them, as after a MOVE).
		if now, serr := d.fs.tree.Stat(d.ctx, d.name); serr != nil || now.ID() != d.info.ID() {
			d.fs.setMovedAway(d.name)
		}
		return propstats(names, nil), nil
	case code == 0:
		return nil, d.fs.fail("proppatch", d.name, err)
	}
	d.fs.s.log.DebugContext(d.ctx, "proppatch refused", "path", d.name, "err", err)
	for _, n := range names {
		if n.Space == MetaNS {
			bad[n] = code
		}
	}
	if len(bad) == 0 { // dead properties alone
		for _, n := range names {
			bad[n] = code
		}
	}
	return propstats(names, bad), nil
}

// chtimes applies a modification time a client set as a property.
func (d *davFile) chtimes(t time.Time) error {
	if t.IsZero() {
		return nil
	}
	return d.fs.fail("proppatch", d.name, d.fs.tree.Chtimes(d.ctx, d.name, t))
}

// toOp validates one property change: 403 for protected properties.
func toOp(pr webdav.Property, remove bool) (patchOp, int) {
	n := pr.XMLName
	switch {
	case n.Space == ownCloudNS && n.Local == "checksums":
		return patchOp{}, http.StatusForbidden
	case n.Space == MetaNS:
		if reservedKey(n.Local) || len(n.Local) > index.MaxMetaKey {
			return patchOp{}, http.StatusForbidden
		}
		if remove {
			return patchOp{key: n.Local, remove: true}, 0
		}
		text, ok := xmlText(pr.InnerXML)
		if !ok || strings.IndexByte(text, 0) >= 0 {
			return patchOp{}, http.StatusConflict // metadata values are text
		}
		if len(text) > index.MaxMetaValue {
			return patchOp{}, http.StatusInsufficientStorage
		}
		return patchOp{key: n.Local, val: text}, 0
	}
	k := deadKey(n)
	if len(k) > index.MaxMetaKey || len(pr.InnerXML) > index.MaxMetaValue {
		return patchOp{}, http.StatusInsufficientStorage
	}
	return patchOp{key: k, val: string(pr.InnerXML), remove: remove}, 0
}

// propstats reports the outcome: with no failures, 200 for all; else the
// failures with their statuses and 424 for the rest (nothing was done).
func propstats(names []xml.Name, bad map[xml.Name]int) []webdav.Propstat {
	if len(bad) == 0 {
		ps := webdav.Propstat{Status: http.StatusOK}
		for _, n := range names {
			ps.Props = append(ps.Props, webdav.Property{XMLName: n})
		}
		return []webdav.Propstat{ps}
	}
	by := map[int]*webdav.Propstat{}
	var out []webdav.Propstat
	order := []int{}
	for _, n := range names {
		code, ok := bad[n]
		if !ok {
			code = webdav.StatusFailedDependency
		}
		if by[code] == nil {
			by[code] = &webdav.Propstat{Status: code}
			order = append(order, code)
		}
		by[code].Props = append(by[code].Props, webdav.Property{XMLName: n})
	}
	for _, c := range order {
		out = append(out, *by[c])
	}
	return out
}

var _ webdav.DeadPropsHolder = (*davFile)(nil)
