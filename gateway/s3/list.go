package s3

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/views"
)

type listKind int

const (
	listV1 listKind = iota
	listV2
	listVersions
)

// maxListKeys is the most keys a listing page holds.
const maxListKeys = 1000

// item is one entry of a listing: an object (or folder object) or a
// common prefix.
type item struct {
	key    string
	info   *views.Info // nil for a common prefix
	prefix bool
	tkey   string // key's Tree form (treeKey), what the walk orders by
}

// lister walks the keys of a bucket under a prefix, in S3 key order,
// strictly after a marker, from the path index page by page: it visits
// only the directories the prefix and marker leave in range, and with
// delimiter "/" only the prefix's own directory. The walk runs on the
// Tree's escaped names (tprefix, tmarker, the keys' tkey), whose order
// is the keys' but for the bytes below 0x20 and the backslash, which
// escape to "%XX"; delimiters group the keys themselves.
type lister struct {
	tree   *views.Tree
	bucket string
	prefix string
	delim  string
	marker string
	// emit receives items in order; it returns false to stop.
	emit   func(item) bool
	lastCP string

	tprefix, tmarker string // treeKey of prefix and marker, set by run
}

// errStop ends a walk early.
var errStop = errors.New("stop")

func (l *lister) run(ctx context.Context) error {
	l.tprefix, l.tmarker = treeKey(l.prefix), treeKey(l.marker)
	dir, rest := "", l.tprefix
	if i := strings.LastIndexByte(l.tprefix, '/'); i >= 0 {
		dir, rest = l.tprefix[:i+1], l.tprefix[i+1:]
	}
	var err error
	if dir != "" && rest == "" {
		// A prefix naming a directory: its folder object, if Mkdir made
		// one, is the first key under the prefix ("aws s3 rm --recursive
		// s3://b/dir/" lists it to delete it).
		if in, serr := l.tree.Stat(ctx, "/"+l.bucket+"/"+dir); serr == nil && in.IsDir() && !in.ModTime().IsZero() {
			err = l.file(dir, in)
		}
	}
	if err == nil {
		err = l.walk(ctx, dir, rest, l.delim != "/")
	}
	if errors.Is(err, errStop) {
		return nil
	}
	k := fs.KindOf(err)
	if k == fs.NotExist || k == fs.NotDir || k == fs.Invalid && dir != "" {
		return nil // nothing under that prefix
	}
	return err
}

// pred returns a string just below every string >= s, for ReadDir's
// exclusive "after": names are valid UTF-8, which never holds 0xff.
func pred(s string) string {
	if s == "" {
		return ""
	}
	return s[:len(s)-1] + string([]byte{s[len(s)-1] - 1, 0xff})
}

// startName is the lowest name of directory dirKey that can hold keys
// after marker: entries below it lie wholly at or before the marker.
// A directory d sorts as "d/", so a name that is cut at the first byte
// below '/' bounds both files and directories.
// skip is true when the whole directory is at or before the marker.
func startName(dirKey, marker string) (name string, skip bool) {
	rest, ok := strings.CutPrefix(marker, dirKey)
	if !ok {
		return "", marker > dirKey
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	for i := 0; i < len(rest); i++ {
		if rest[i] < '/' {
			return rest[:i], false
		}
	}
	return rest, false
}

// walk lists directory dirKey (a Tree key, "" or ending in "/") of the
// bucket: names starting with namePrefix; recursive descends into
// subdirectories, otherwise they are common prefixes.
func (l *lister) walk(ctx context.Context, dirKey, namePrefix string, recursive bool) error {
	start, skip := startName(dirKey, l.tmarker)
	if skip {
		return nil
	}
	after := pred(namePrefix)
	if s := pred(start); s > after {
		after = s
	}
	p := "/" + l.bucket + "/" + dirKey
	// Directories sort by name+"/": hold each back until no later name
	// can sort before it.
	var pending []*views.Info
	flush := func(upTo string, all bool) error {
		for len(pending) > 0 && (all || pending[0].Name()+"/" < upTo) {
			d := pending[0]
			pending = pending[1:]
			if err := l.dir(ctx, dirKey, d, recursive); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		page, err := l.tree.ReadDir(ctx, p, after, maxListKeys)
		if err != nil {
			return err
		}
		for _, in := range page {
			name := in.Name()
			if !strings.HasPrefix(name, namePrefix) {
				if name > namePrefix {
					return flush("", true)
				}
				continue
			}
			if err := flush(name, false); err != nil {
				return err
			}
			if in.IsDir() {
				i := len(pending)
				for i > 0 && pending[i-1].Name()+"/" > name+"/" {
					i--
				}
				pending = append(pending[:i], append([]*views.Info{in}, pending[i:]...)...)
				continue
			}
			if err := l.file(dirKey+name, in); err != nil {
				return err
			}
		}
		if len(page) < maxListKeys {
			return flush("", true)
		}
		after = page[len(page)-1].Name()
	}
}

func (l *lister) dir(ctx context.Context, dirKey string, d *views.Info, recursive bool) error {
	dk := dirKey + d.Name() + "/"
	if !recursive {
		return l.put(item{key: keyOf(dk), tkey: dk, prefix: true})
	}
	if l.tmarker >= dk && !strings.HasPrefix(l.tmarker, dk) {
		return nil // the whole subtree is at or before the marker
	}
	if !d.ModTime().IsZero() { // a directory made by Mkdir: a folder object
		if err := l.file(dk, d); err != nil {
			return err
		}
	}
	return l.walk(ctx, dk, "", true)
}

// file passes an object (its Tree key) through the delimiter grouping
// and marker.
func (l *lister) file(tkey string, in *views.Info) error {
	key := keyOf(tkey)
	if l.delim != "" && l.delim != "/" && strings.HasPrefix(key, l.prefix) {
		if i := strings.Index(key[len(l.prefix):], l.delim); i >= 0 {
			cp := key[:len(l.prefix)+i+len(l.delim)]
			if cp == l.lastCP {
				return nil
			}
			l.lastCP = cp
			return l.put(item{key: cp, tkey: treeKey(cp), prefix: true})
		}
	}
	return l.put(item{key: key, tkey: tkey, info: in})
}

func (l *lister) put(it item) error {
	if it.tkey <= l.tmarker {
		return nil
	}
	if !l.emit(it) {
		return errStop
	}
	return nil
}

// Continuation tokens are opaque to clients: the bucket and the last key
// of the page, so a token is refused for another bucket or when altered
// into something that is not one of ours.
const tokenVersion = "dg1"

func encodeToken(bucket, marker string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(tokenVersion + "\x00" + bucket + "\x00" + marker))
}

func decodeToken(bucket, tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", ErrInvalidToken
	}
	parts := strings.SplitN(string(b), "\x00", 3)
	if len(parts) != 3 || parts[0] != tokenVersion || parts[1] != bucket || !utf8.ValidString(parts[2]) || len(parts[2]) > MaxKeyLength {
		return "", ErrInvalidToken
	}
	return parts[2], nil
}

type objectXML struct {
	Key          string `xml:"Key"`
	VersionID    string `xml:"VersionId,omitempty"`
	IsLatest     *bool  `xml:"IsLatest,omitempty"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
	Owner        *owner `xml:"Owner,omitempty"`
	StorageClass string `xml:"StorageClass"`
}

type prefixXML struct {
	Prefix string `xml:"Prefix"`
}

type listResult struct {
	XMLName               xml.Name
	NS                    string      `xml:"xmlns,attr"`
	Name                  string      `xml:"Name"`
	Prefix                string      `xml:"Prefix"`
	Marker                *string     `xml:"Marker,omitempty"`
	NextMarker            string      `xml:"NextMarker,omitempty"`
	KeyMarker             *string     `xml:"KeyMarker,omitempty"`
	VersionIDMarker       *string     `xml:"VersionIdMarker,omitempty"`
	NextKeyMarker         string      `xml:"NextKeyMarker,omitempty"`
	NextVersionIDMarker   string      `xml:"NextVersionIdMarker,omitempty"`
	StartAfter            string      `xml:"StartAfter,omitempty"`
	ContinuationToken     string      `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string      `xml:"NextContinuationToken,omitempty"`
	KeyCount              *int        `xml:"KeyCount,omitempty"`
	MaxKeys               int         `xml:"MaxKeys"`
	Delimiter             string      `xml:"Delimiter,omitempty"`
	EncodingType          string      `xml:"EncodingType,omitempty"`
	IsTruncated           bool        `xml:"IsTruncated"`
	Contents              []objectXML `xml:"Contents"`
	Versions              []objectXML `xml:"Version"`
	CommonPrefixes        []prefixXML `xml:"CommonPrefixes"`
}

// urlEncode is encoding-type=url: everything but unreserved characters
// and '/' percent-encoded.
func urlEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteString("%" + strings.ToUpper(strconv.FormatInt(int64(c)|0x100, 16)[1:]))
	}
	return b.String()
}

// listObjects serves ListObjects (V1), ListObjectsV2 and
// ListObjectVersions (unversioned: the current objects, version null).
func (s *Server) listObjects(q *req, kind listKind) {
	rights, err := s.bucketRights(q, q.bucket)
	if err != nil {
		q.fail(s, err)
		return
	}
	if rights&views.Read == 0 {
		q.fail(s, ErrAccessDenied)
		return
	}
	qs := q.qs
	maxKeys := maxListKeys
	if v := qs.Get("max-keys"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			q.fail(s, ErrInvalidMaxKeys)
			return
		}
		maxKeys = min(n, maxListKeys)
	}
	enc := qs.Get("encoding-type")
	if enc != "" && enc != "url" {
		q.fail(s, ErrInvalidEncodingMethod)
		return
	}
	prefix, delim := qs.Get("prefix"), qs.Get("delimiter")
	res := listResult{NS: s3NS, Name: q.bucket, Prefix: prefix, MaxKeys: maxKeys, Delimiter: delim, EncodingType: enc}
	var marker string
	switch kind {
	case listV1:
		res.XMLName.Local = "ListBucketResult"
		marker = qs.Get("marker")
		res.Marker = &marker
	case listV2:
		res.XMLName.Local = "ListBucketResult"
		marker = qs.Get("start-after")
		res.StartAfter = marker
		if tok := qs.Get("continuation-token"); qs.Has("continuation-token") {
			m, err := decodeToken(q.bucket, tok)
			if err != nil {
				q.fail(s, err)
				return
			}
			res.ContinuationToken = tok
			if treeKey(m) > treeKey(marker) {
				marker = m
			}
		}
	case listVersions:
		res.XMLName.Local = "ListVersionsResult"
		marker = qs.Get("key-marker")
		vm := qs.Get("version-id-marker")
		res.KeyMarker, res.VersionIDMarker = &marker, &vm
	}
	var items []item
	truncated := false
	l := &lister{tree: q.tree, bucket: q.bucket, prefix: prefix, delim: delim, marker: marker, emit: func(it item) bool {
		if len(items) == maxKeys {
			truncated = true
			return false
		}
		items = append(items, it)
		return true
	}}
	if maxKeys > 0 {
		if err := l.run(q.r.Context()); err != nil {
			q.fail(s, err)
			return
		}
	}
	fetchOwner := kind != listV2 || qs.Get("fetch-owner") == "true"
	esc := func(s string) string {
		if enc == "url" {
			return urlEncode(s)
		}
		return s
	}
	etags, err := s.etags(q.r.Context(), items)
	if err != nil {
		q.fail(s, err)
		return
	}
	for i, it := range items {
		if it.prefix {
			res.CommonPrefixes = append(res.CommonPrefixes, prefixXML{esc(it.key)})
			continue
		}
		if etags[i] == "" {
			continue // deleted since the page was read
		}
		ox := objectXML{Key: esc(it.key), LastModified: s3Time(it.info.ModTime()), Size: max(it.info.Size(), 0), StorageClass: "STANDARD", ETag: etags[i]}
		if fetchOwner {
			ox.Owner = &owner{q.user, q.user}
		}
		if kind == listVersions {
			t := true
			ox.VersionID, ox.IsLatest = "null", &t
			res.Versions = append(res.Versions, ox)
		} else {
			res.Contents = append(res.Contents, ox)
		}
	}
	res.IsTruncated = truncated
	if truncated && len(items) > 0 {
		last := items[len(items)-1].key
		switch kind {
		case listV1:
			if delim != "" {
				res.NextMarker = esc(last)
			}
		case listV2:
			res.NextContinuationToken = encodeToken(q.bucket, last)
		case listVersions:
			res.NextKeyMarker, res.NextVersionIDMarker = esc(last), "null"
		}
	}
	if kind == listV2 {
		n := len(items)
		res.KeyCount = &n
		res.Prefix, res.StartAfter, res.Delimiter = esc(res.Prefix), esc(res.StartAfter), esc(res.Delimiter)
	} else {
		res.Prefix, res.Delimiter = esc(res.Prefix), esc(res.Delimiter)
		if res.Marker != nil {
			m := esc(*res.Marker)
			res.Marker = &m
		}
	}
	writeList(q.w, &res)
}

// etags gives the ETags of a page's objects: from the path index when it
// holds one that is what GET answers (an MD5 or a multipart ETag), else
// by looking the objects up, a few at a time: "" for an object deleted
// meanwhile.
func (s *Server) etags(ctx context.Context, items []item) ([]string, error) {
	out := make([]string, len(items))
	lookups := 0
	for i, it := range items {
		if it.prefix || it.info.IsDir() {
			continue
		}
		if e := strings.Trim(it.info.ETag(), `"`); isMultipartETag(e) || isHexMD5(e) {
			out[i] = `"` + e + `"`
			continue
		}
		lookups++
	}
	if lookups == 0 {
		for i, it := range items {
			if !it.prefix && it.info.IsDir() {
				out[i] = emptyETag
			}
		}
		return out, nil
	}
	const workers = 4
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(items); i += workers {
				it := items[i]
				switch {
				case it.prefix || out[i] != "":
				case it.info.IsDir():
					out[i] = emptyETag
				default:
					o, err := s.opts.Store.Get(ctx, it.info.ID())
					if err != nil {
						if fs.KindOf(err) != fs.NotExist {
							errs[w] = err
							return
						}
						continue
					}
					out[i] = etagOf(o)
				}
			}
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// writeList renders a listing by hand: encoding/xml's reflection costs
// as much as the index walk on a 1,000-key page.
func writeList(w http.ResponseWriter, r *listResult) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusOK)
	b := bufio.NewWriterSize(w, 64<<10)
	defer b.Flush()
	text := func(s string) { xml.EscapeText(b, []byte(s)) }
	elem := func(name, v string) {
		b.WriteString("<" + name + ">")
		text(v)
		b.WriteString("</" + name + ">")
	}
	b.WriteString(xml.Header)
	b.WriteString("<" + r.XMLName.Local + ` xmlns="` + s3NS + `">`)
	elem("Name", r.Name)
	elem("Prefix", r.Prefix)
	if r.Marker != nil {
		elem("Marker", *r.Marker)
	}
	if r.NextMarker != "" {
		elem("NextMarker", r.NextMarker)
	}
	if r.KeyMarker != nil {
		elem("KeyMarker", *r.KeyMarker)
		elem("VersionIdMarker", *r.VersionIDMarker)
	}
	if r.NextKeyMarker != "" {
		elem("NextKeyMarker", r.NextKeyMarker)
		elem("NextVersionIdMarker", r.NextVersionIDMarker)
	}
	if r.StartAfter != "" {
		elem("StartAfter", r.StartAfter)
	}
	if r.ContinuationToken != "" {
		elem("ContinuationToken", r.ContinuationToken)
	}
	if r.NextContinuationToken != "" {
		elem("NextContinuationToken", r.NextContinuationToken)
	}
	if r.KeyCount != nil {
		elem("KeyCount", strconv.Itoa(*r.KeyCount))
	}
	elem("MaxKeys", strconv.Itoa(r.MaxKeys))
	if r.Delimiter != "" {
		elem("Delimiter", r.Delimiter)
	}
	if r.EncodingType != "" {
		elem("EncodingType", r.EncodingType)
	}
	elem("IsTruncated", strconv.FormatBool(r.IsTruncated))
	obj := func(tag string, o *objectXML) {
		b.WriteString("<" + tag + ">")
		elem("Key", o.Key)
		if o.VersionID != "" {
			elem("VersionId", o.VersionID)
			elem("IsLatest", "true")
		}
		elem("LastModified", o.LastModified)
		elem("ETag", o.ETag)
		elem("Size", strconv.FormatInt(o.Size, 10))
		if o.Owner != nil {
			b.WriteString("<Owner>")
			elem("ID", o.Owner.ID)
			elem("DisplayName", o.Owner.DisplayName)
			b.WriteString("</Owner>")
		}
		elem("StorageClass", o.StorageClass)
		b.WriteString("</" + tag + ">")
	}
	for i := range r.Contents {
		obj("Contents", &r.Contents[i])
	}
	for i := range r.Versions {
		obj("Version", &r.Versions[i])
	}
	for _, p := range r.CommonPrefixes {
		b.WriteString("<CommonPrefixes>")
		elem("Prefix", p.Prefix)
		b.WriteString("</CommonPrefixes>")
	}
	b.WriteString("</" + r.XMLName.Local + ">")
}
