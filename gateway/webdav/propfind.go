package webdav

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/webdav"

	"github.com/datagate/datagate/views"
)

// servePropfind answers PROPFIND (Depth 0 or 1) itself rather than
// through x/net/webdav, which reads a whole directory before its first
// entry, stats and opens every entry, and whose XML encoder slows down
// quadratically with namespaced properties. Here a listing streams in the
// Tree's pages, each entry costs at most one record lookup (none when
// only DAV: properties a listing carries are asked for), and the XML is
// written directly. The properties are x/net/webdav's (resourcetype,
// displayname, getcontentlength, getlastmodified, getcontenttype,
// getetag, supportedlock) plus lockdiscovery and the dead ones
// (props.go).
func (s *Server) servePropfind(w http.ResponseWriter, r *http.Request, tree *views.Tree, rfs *reqFS) {
	ctx := r.Context()
	pf, err := readPropfind(r.Body)
	if err != nil {
		http.Error(w, "malformed PROPFIND body: "+err.Error(), http.StatusBadRequest)
		return
	}
	p := clean(r.URL.Path)
	info, err := tree.Stat(ctx, p)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(webdav.StatusMulti)
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<D:multistatus xmlns:D="DAV:">`)
	pw := &propWriter{s: s, rfs: rfs, pf: pf, w: bw, locks: s.opts.Locks.forTree(tree, false), root: p, now: time.Now()}
	pw.entry(r, p, &fileInfo{Info: info, s: s})
	if info.IsDir() && r.Header.Get("Depth") == "1" {
		after := ""
		for {
			ents, err := tree.ReadDir(ctx, p, after, listPage)
			if err != nil {
				// The status is sent: end the document, log the cause.
				s.log.WarnContext(ctx, "PROPFIND listing failed", "path", p, "err", err)
				break
			}
			for _, e := range ents {
				pw.entry(r, path.Join(p, e.Name()), &fileInfo{Info: e, s: s})
			}
			if len(ents) < listPage || ctx.Err() != nil {
				break
			}
			after = ents[len(ents)-1].Name()
			bw.Flush()
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
		}
	}
	bw.WriteString("</D:multistatus>\n")
	bw.Flush()
}

// propfindReq is a parsed PROPFIND body.
type propfindReq struct {
	allprop  bool
	propname bool
	props    []xml.Name // asked for by name (also allprop's include)
}

// readPropfind parses a PROPFIND body; an empty one is allprop.
func readPropfind(r io.Reader) (propfindReq, error) {
	var pf propfindReq
	dec := xml.NewDecoder(r)
	depth := 0
	in := "" // the DAV: child of propfind being read: prop or include
	sawRoot := false
	for {
		t, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return pf, err
		}
		switch t := t.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 1:
				if t.Name != (xml.Name{Space: "DAV:", Local: "propfind"}) {
					return pf, fmt.Errorf("root element %s, want DAV:propfind", t.Name.Local)
				}
				sawRoot = true
			case depth == 2 && t.Name.Space == "DAV:":
				switch t.Name.Local {
				case "allprop":
					pf.allprop = true
				case "propname":
					pf.propname = true
				case "prop", "include":
					in = t.Name.Local
				}
			case depth == 3 && in != "":
				pf.props = append(pf.props, t.Name)
			}
		case xml.EndElement:
			if depth == 2 {
				in = ""
			}
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return pf, errors.New("text outside the root element")
			}
		}
	}
	switch {
	case !sawRoot:
		pf.allprop = true // no body
	case pf.propname && (pf.allprop || len(pf.props) > 0):
		return pf, errors.New("propname with other requests")
	case !pf.allprop && !pf.propname && len(pf.props) == 0:
		return pf, errors.New("no allprop, propname or prop")
	}
	return pf, nil
}

// propWriter writes the responses of one PROPFIND.
type propWriter struct {
	s   *Server
	rfs *reqFS
	pf  propfindReq
	w   *bufio.Writer
	buf bytes.Buffer
	// locks gives lockdiscovery (RFC 4918 15.8): without it cadaver's
	// discover and davfs2 saw no lock on a locked file. scope holds the
	// locks in reach of the PROPFIND's resource root, taken at the first
	// entry that asks.
	locks  *treeLocks
	root   string
	now    time.Time
	scoped bool
	scope  []lock
}

// liveProps are the DAV: properties served, in allprop order.
var liveProps = []string{"resourcetype", "displayname", "getcontentlength", "getlastmodified", "getcontenttype", "getetag", "supportedlock", "lockdiscovery"}

// live returns the value of live property name, and whether fi has it.
// The record lookup happens only for the properties that need it.
func (pw *propWriter) live(r *http.Request, p string, fi *fileInfo, name string) (string, bool) {
	ctx := r.Context()
	dir := fi.IsDir()
	switch name {
	case "resourcetype":
		if dir {
			return `<D:collection/>`, true
		}
		return "", true
	case "displayname":
		if p == "/" {
			return "", true
		}
		return xmlEscape(fi.Name()), true
	case "getcontentlength":
		return strconv.FormatInt(fi.Size(), 10), !dir && fi.Size() >= 0
	case "getlastmodified":
		return fi.ModTime().UTC().Format(http.TimeFormat), true
	case "getcontenttype":
		if dir {
			return "", false
		}
		ct, err := fi.ContentType(ctx)
		return xmlEscape(ct), err == nil
	case "getetag":
		if dir {
			return "", false
		}
		et, err := fi.ETag(ctx)
		return xmlEscape(et), err == nil
	case "supportedlock":
		return `<D:lockentry><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>` +
			`<D:lockentry><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>`, true
	case "lockdiscovery":
		if !pw.scoped {
			pw.scope, pw.scoped = pw.locks.lockScope(pw.root, pw.now), true
		}
		return pw.locks.lockDiscovery(pw.scope, p, pw.now), true
	}
	return "", false
}

// entry writes the response for one resource.
func (pw *propWriter) entry(r *http.Request, p string, fi *fileInfo) {
	var dead map[xml.Name]webdav.Property
	needDead := pw.pf.allprop || pw.pf.propname
	for _, n := range pw.pf.props {
		needDead = needDead || n.Space != "DAV:"
	}
	if needDead && !fi.IsDir() {
		df := &davFile{fs: pw.rfs, ctx: r.Context(), name: p, info: fi}
		var err error
		if dead, err = df.DeadProps(); err != nil {
			pw.s.log.DebugContext(r.Context(), "PROPFIND: dead properties", "path", p, "err", err)
		}
	}
	href := (&url.URL{Path: p}).EscapedPath()
	if fi.IsDir() && !strings.HasSuffix(href, "/") {
		href += "/"
	}
	b := &pw.buf
	b.Reset()
	b.WriteString("<D:response><D:href>")
	b.WriteString(xmlEscape(href))
	b.WriteString("</D:href><D:propstat><D:prop>")
	var missing []xml.Name
	switch {
	case pw.pf.propname:
		for _, n := range liveProps {
			if _, ok := pw.liveName(fi, n); ok {
				b.WriteString("<D:" + n + "/>")
			}
		}
		for n := range dead {
			writeProp(b, n, nil)
		}
	case pw.pf.allprop:
		for _, n := range liveProps {
			if v, ok := pw.live(r, p, fi, n); ok {
				b.WriteString("<D:" + n + ">" + v + "</D:" + n + ">")
			}
		}
		for n, d := range dead {
			writeProp(b, n, d.InnerXML)
		}
		for _, n := range pw.pf.props { // include: live ones are all there
			if n.Space != "DAV:" {
				if _, ok := dead[n]; !ok {
					missing = append(missing, n)
				}
			}
		}
	default:
		for _, n := range pw.pf.props {
			if d, ok := dead[n]; ok {
				writeProp(b, n, d.InnerXML)
				continue
			}
			if n.Space == "DAV:" {
				if v, ok := pw.live(r, p, fi, n.Local); ok {
					b.WriteString("<D:" + n.Local + ">" + v + "</D:" + n.Local + ">")
					continue
				}
			}
			missing = append(missing, n)
		}
	}
	b.WriteString("</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>")
	if len(missing) > 0 {
		b.WriteString("<D:propstat><D:prop>")
		for _, n := range missing {
			writeProp(b, n, nil)
		}
		b.WriteString("</D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>")
	}
	b.WriteString("</D:response>\n")
	pw.w.Write(b.Bytes())
}

// liveName reports whether fi has live property n (for propname),
// without looking up the record.
func (pw *propWriter) liveName(fi *fileInfo, n string) (string, bool) {
	switch n {
	case "getcontentlength", "getcontenttype", "getetag":
		return n, !fi.IsDir()
	}
	return n, true
}

// writeProp writes a property element in its own namespace; inner nil
// writes it empty.
func writeProp(b *bytes.Buffer, n xml.Name, inner []byte) {
	if n.Space == "DAV:" {
		b.WriteString("<D:" + n.Local)
	} else {
		b.WriteString("<" + n.Local + ` xmlns="` + xmlEscape(n.Space) + `"`)
	}
	if inner == nil {
		b.WriteString("/>")
		return
	}
	b.WriteByte('>')
	b.Write(inner)
	if n.Space == "DAV:" {
		b.WriteString("</D:" + n.Local + ">")
	} else {
		b.WriteString("</" + n.Local + ">")
	}
}

func xmlEscape(s string) string {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '&', '<', '>', '"', '\'', '\r', '\n', '\t':
			var b bytes.Buffer
			xml.EscapeText(&b, []byte(s))
			return strings.ReplaceAll(b.String(), `"`, "&#34;")
		}
		if s[i] < 0x20 {
			var b bytes.Buffer
			xml.EscapeText(&b, []byte(s))
			return b.String()
		}
	}
	return s
}
