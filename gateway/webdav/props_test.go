package webdav

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/datagate/datagate/views"
)

func proppatch(set string) string {
	return `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:m="urn:datagate:meta" xmlns:x="urn:example">` + set + `</D:propertyupdate>`
}

func TestMetadataProps(t *testing.T) {
	e := newEnv(t)
	d0 := map[string]string{"Depth": "0"}
	e.want(t, 201, req{method: "MKCOL", path: "/dated/2026-11-22"})
	e.want(t, 201, req{method: "PUT", path: "/dated/2026-11-22/t2m.grib", body: "grib"})
	body, _ := e.want(t, 207, req{method: "PROPFIND", path: "/dated/2026-11-22/t2m.grib", hdr: d0})
	sum := md5.Sum([]byte("grib"))
	for _, want := range []string{`2026-11-22</date>`, "urn:datagate:meta", "MD5:" + hex.EncodeToString(sum[:]), "http://owncloud.org/ns"} {
		if !strings.Contains(body, want) {
			t.Errorf("PROPFIND lacks %q:\n%s", want, body)
		}
	}
	// set metadata and a dead property; both come back, the metadata is
	// the object's
	body, _ = e.want(t, 207, req{method: "PROPPATCH", path: "/dated/2026-11-22/t2m.grib",
		body: proppatch(`<D:set><D:prop><m:param>t2m</m:param><x:colour>blue &amp; <x:b>bold</x:b></x:colour></D:prop></D:set>`)})
	if !strings.Contains(body, "200 OK") {
		t.Fatalf("PROPPATCH: %s", body)
	}
	body, _ = e.want(t, 207, req{method: "PROPFIND", path: "/dated/2026-11-22/t2m.grib", hdr: d0})
	if !strings.Contains(body, ">t2m</param>") || !strings.Contains(body, "colour") || !strings.Contains(body, "bold") {
		t.Fatalf("after PROPPATCH:\n%s", body)
	}
	info, err := e.tree("alice").Stat(ctxT(t), "/dated/2026-11-22/t2m.grib")
	if err != nil {
		t.Fatal(err)
	}
	o, err := e.st.Get(ctxT(t), info.ID())
	if err != nil || o.Meta["param"] != "t2m" {
		t.Fatalf("metadata after PROPPATCH: %v %v", o, err)
	}
	// it follows a MOVE
	e.want(t, 201, req{method: "MOVE", path: "/dated/2026-11-22/t2m.grib", hdr: map[string]string{"Destination": e.ts.URL + "/dated/2026-11-22/t2m-v2.grib"}})
	body, _ = e.want(t, 207, req{method: "PROPFIND", path: "/dated/2026-11-22/t2m-v2.grib", hdr: d0})
	if !strings.Contains(body, ">t2m</param>") || !strings.Contains(body, "colour") {
		t.Fatalf("after MOVE:\n%s", body)
	}
	// a key of the template moves the file, with the rest of the change
	body, _ = e.want(t, 207, req{method: "PROPPATCH", path: "/dated/2026-11-22/t2m-v2.grib",
		body: proppatch(`<D:set><D:prop><m:date>2030-01-01</m:date><m:other>x</m:other></D:prop></D:set>`)})
	if !strings.Contains(body, "200 OK") || strings.Contains(body, "409") {
		t.Fatalf("PROPPATCH of a template key:\n%s", body)
	}
	e.want(t, 404, req{method: "GET", path: "/dated/2026-11-22/t2m-v2.grib"})
	body, _ = e.want(t, 207, req{method: "PROPFIND", path: "/dated/2030-01-01/t2m-v2.grib", hdr: d0})
	if !strings.Contains(body, ">x</other>") || !strings.Contains(body, ">t2m</param>") {
		t.Fatalf("after the move by PROPPATCH:\n%s", body)
	}
	// onto a taken path, or without a key the template needs: 409, and
	// nothing changes
	e.want(t, 201, req{method: "PUT", path: "/dated/2026-11-22/t2m-v2.grib", body: "other"})
	for _, patch := range []string{
		`<D:set><D:prop><m:date>2026-11-22</m:date><m:more>y</m:more><x:shade>dark</x:shade></D:prop></D:set>`,
		`<D:remove><D:prop><m:date/></D:prop></D:remove><D:set><D:prop><x:colour>red</x:colour></D:prop></D:set>`,
	} {
		body, _ = e.want(t, 207, req{method: "PROPPATCH", path: "/dated/2030-01-01/t2m-v2.grib", body: proppatch(patch)})
		if !strings.Contains(body, "409") || !strings.Contains(body, "424") {
			t.Fatalf("PROPPATCH %s:\n%s", patch, body)
		}
	}
	body, _ = e.want(t, 207, req{method: "PROPFIND", path: "/dated/2030-01-01/t2m-v2.grib", hdr: d0})
	if strings.Contains(body, "more") || strings.Contains(body, "shade") || !strings.Contains(body, "2030-01-01</date>") || !strings.Contains(body, "colour") {
		t.Fatalf("a refused PROPPATCH changed something:\n%s", body)
	}
	if body, _ := e.want(t, 200, req{method: "GET", path: "/dated/2026-11-22/t2m-v2.grib"}); body != "other" {
		t.Fatalf("the file at the taken path: %q", body)
	}
	e.want(t, 204, req{method: "MOVE", path: "/dated/2030-01-01/t2m-v2.grib", hdr: map[string]string{"Destination": e.ts.URL + "/dated/2026-11-22/t2m-v2.grib"}})
	// protected and reserved names: 403
	for _, p := range []string{`<x:checksums xmlns:x="http://owncloud.org/ns">MD5:00</x:checksums>`, `<m:dg.view>x</m:dg.view>`, `<D:getetag>"x"</D:getetag>`} {
		body, _ = e.want(t, 207, req{method: "PROPPATCH", path: "/dated/2026-11-22/t2m-v2.grib", body: proppatch(`<D:set><D:prop>` + p + `</D:prop></D:set>`)})
		if !strings.Contains(body, "403") {
			t.Errorf("PROPPATCH %s:\n%s", p, body)
		}
	}
	// remove
	e.want(t, 207, req{method: "PROPPATCH", path: "/dated/2026-11-22/t2m-v2.grib",
		body: proppatch(`<D:remove><D:prop><m:param/><x:colour/></D:prop></D:remove>`)})
	body, _ = e.want(t, 207, req{method: "PROPFIND", path: "/dated/2026-11-22/t2m-v2.grib", hdr: d0})
	if strings.Contains(body, "param") || strings.Contains(body, "colour") {
		t.Fatalf("after remove:\n%s", body)
	}
	// read-only view: 403
	e.want(t, 201, req{method: "PUT", path: "/s", body: "s", user: "bob"})
	e.users["bob"].Views["secret"] = 1 // read only now
	body, _ = e.want(t, 207, req{method: "PROPPATCH", path: "/s", user: "bob", body: proppatch(`<D:set><D:prop><m:a>b</m:a></D:prop></D:set>`)})
	if !strings.Contains(body, "403") {
		t.Fatalf("PROPPATCH in a read-only view:\n%s", body)
	}
	// an empty namespace prefix declaration is malformed
	e.want(t, 400, req{method: "PROPFIND", path: "/s", user: "bob", hdr: d0,
		body: `<?xml version="1.0"?><propfind xmlns="DAV:" xmlns:bar=""><prop><bar:x/></prop></propfind>`})
}

func TestPropfindRequests(t *testing.T) {
	e := newEnv(t)
	d0 := map[string]string{"Depth": "0"}
	e.want(t, 201, req{method: "PUT", path: "/files/f.txt", body: "abc"})
	e.want(t, 207, req{method: "PROPPATCH", path: "/files/f.txt", body: proppatch(`<D:set><D:prop><x:colour>red</x:colour></D:prop></D:set>`)})
	// propname: names only
	body, _ := e.want(t, 207, req{method: "PROPFIND", path: "/files/f.txt", hdr: d0, body: `<?xml version="1.0"?><propfind xmlns="DAV:"><propname/></propfind>`})
	if !strings.Contains(body, "<D:getetag/>") || !strings.Contains(body, `<colour xmlns="urn:example"/>`) || strings.Contains(body, "red") {
		t.Errorf("propname:\n%s", body)
	}
	// allprop with include of an unknown property: 404 for it
	body, _ = e.want(t, 207, req{method: "PROPFIND", path: "/files/f.txt", hdr: d0,
		body: `<?xml version="1.0"?><propfind xmlns="DAV:"><allprop/><include><y:nope xmlns:y="urn:y"/></include></propfind>`})
	if !strings.Contains(body, ">red</colour>") || !strings.Contains(body, `<nope xmlns="urn:y"/>`) || !strings.Contains(body, "404 Not Found") {
		t.Errorf("allprop + include:\n%s", body)
	}
	// a collection: no getcontentlength, getetag
	body, _ = e.want(t, 207, req{method: "PROPFIND", path: "/files/", hdr: d0,
		body: `<?xml version="1.0"?><propfind xmlns="DAV:"><prop><resourcetype/><getetag/></prop></propfind>`})
	if !strings.Contains(body, "<D:collection/>") || !strings.Contains(body, "<D:getetag/>") || !strings.Contains(body, "404") {
		t.Errorf("collection props:\n%s", body)
	}
	for _, bad := range []string{`<propfind xmlns="DAV:"/>`, `<other xmlns="DAV:"><allprop/></other>`, `<propfind xmlns="DAV:"><propname/><prop><getetag/></prop></propfind>`} {
		e.want(t, 400, req{method: "PROPFIND", path: "/files/f.txt", hdr: d0, body: bad})
	}
	// a listing of a thousand and more streams in pages
	e.want(t, 201, req{method: "MKCOL", path: "/files/many"})
	tree := e.tree("alice")
	for i := range 1005 {
		if _, err := tree.Create(ctxT(t), fmt.Sprintf("/files/many/f%04d", i), strings.NewReader("x"), views.CreateOptions{Size: 1}); err != nil {
			t.Fatal(err)
		}
	}
	body, _ = e.want(t, 207, req{method: "PROPFIND", path: "/files/many", hdr: map[string]string{"Depth": "1"},
		body: `<?xml version="1.0"?><propfind xmlns="DAV:"><prop><getcontentlength/></prop></propfind>`})
	if n := strings.Count(body, "<D:response>"); n != 1006 || !strings.Contains(body, "/files/many/f1004") {
		t.Errorf("listing of 1005: %d responses", n)
	}
}

// Windows Explorer's PROPPATCH after an upload: the modification time is
// applied, the other Win32 properties accepted and not kept.
func TestWindowsProppatch(t *testing.T) {
	e := newEnv(t)
	e.want(t, 201, req{method: "PUT", path: "/files/w.txt", body: "w"})
	body, _ := e.want(t, 207, req{method: "PROPPATCH", path: "/files/w.txt", body: `<?xml version="1.0" encoding="utf-8" ?>
<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>
<Z:Win32CreationTime>Mon, 02 Jan 2023 10:00:00 GMT</Z:Win32CreationTime>
<Z:Win32LastAccessTime>Mon, 02 Jan 2023 10:00:00 GMT</Z:Win32LastAccessTime>
<Z:Win32LastModifiedTime>Mon, 02 Jan 2023 10:00:00 GMT</Z:Win32LastModifiedTime>
<Z:Win32FileAttributes>00000020</Z:Win32FileAttributes>
</D:prop></D:set></D:propertyupdate>`})
	if !strings.Contains(body, "200 OK") || strings.Contains(body, "403") {
		t.Fatalf("Windows PROPPATCH:\n%s", body)
	}
	_, h := e.want(t, 200, req{method: "HEAD", path: "/files/w.txt"})
	if h.Get("Last-Modified") != "Mon, 02 Jan 2023 10:00:00 GMT" {
		t.Fatalf("Last-Modified %q", h.Get("Last-Modified"))
	}
	body, _ = e.want(t, 207, req{method: "PROPFIND", path: "/files/w.txt", hdr: map[string]string{"Depth": "0"}})
	if strings.Contains(body, "Win32") {
		t.Fatalf("Win32 properties kept:\n%s", body)
	}
}

func TestWindowsProppatchCollection(t *testing.T) {
	e := newEnv(t)
	e.want(t, 201, req{method: "MKCOL", path: "/files/wd"})
	body, _ := e.want(t, 207, req{method: "PROPPATCH", path: "/files/wd", body: `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop><Z:Win32LastModifiedTime>Mon, 02 Jan 2023 10:00:00 GMT</Z:Win32LastModifiedTime><Z:Win32FileAttributes>00000010</Z:Win32FileAttributes></D:prop></D:set></D:propertyupdate>`})
	if !strings.Contains(body, "200 OK") {
		t.Fatalf("Windows PROPPATCH on a collection:\n%s", body)
	}
	body, _ = e.want(t, 207, req{method: "PROPPATCH", path: "/files/wd", body: proppatch(`<D:set><D:prop><x:a>b</x:a></D:prop></D:set>`)})
	if !strings.Contains(body, "403") {
		t.Fatalf("dead property on a collection:\n%s", body)
	}
	body, _ = e.want(t, 207, req{method: "PROPFIND", path: "/files/wd", hdr: map[string]string{"Depth": "0"}})
	if !strings.Contains(body, "Mon, 02 Jan 2023 10:00:00 GMT") {
		t.Fatalf("collection mtime not set:\n%s", body)
	}
}
