package admin

import (
	"bytes"
	"encoding/hex"
	"io"
	"time"

	"github.com/datagate/datagate/fs"
)

// Object is the JSON form of a catalogue object, shared by the API and the
// CLI's --json output.
type Object struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Size        int64             `json:"size"`
	ModTime     time.Time         `json:"mtime"`
	ContentType string            `json:"content_type,omitempty"`
	Meta        map[string]string `json:"meta,omitempty"`
	MD5         string            `json:"md5,omitempty"`
	SHA256      string            `json:"sha256,omitempty"`
	ETag        string            `json:"etag,omitempty"`
	Expires     *time.Time        `json:"expires,omitempty"`
	Location    *fs.Location      `json:"location,omitempty"`
	State       string            `json:"state"`
	Stores      []string          `json:"stores,omitempty"`
	Version     uint32            `json:"version,omitempty"`
	Created     time.Time         `json:"created"`
}

// ToJSON converts an object for output.
func ToJSON(o *fs.Object) *Object {
	j := &Object{
		ID: o.ID.String(), Name: o.Name, Size: o.Size, ModTime: o.ModTime, ContentType: o.ContentType,
		Meta: o.Meta, MD5: hex.EncodeToString(o.MD5), SHA256: hex.EncodeToString(o.SHA256), ETag: o.ETag,
		State: o.State.String(), Stores: o.Stores, Version: o.Version, Created: o.Created,
	}
	if !o.Expires.IsZero() {
		e := o.Expires
		j.Expires = &e
	}
	if !o.Source.IsZero() {
		l := o.Source
		j.Location = &l
	}
	return j
}

// FromJSON converts back (for the CLI talking to a server).
func FromJSON(j *Object) (*fs.Object, error) {
	id, err := fs.ParseID(j.ID)
	if err != nil {
		return nil, err
	}
	o := &fs.Object{ID: id, Name: j.Name, Size: j.Size, ModTime: j.ModTime, ContentType: j.ContentType,
		Meta: j.Meta, ETag: j.ETag, Stores: j.Stores, Version: j.Version, Created: j.Created}
	o.MD5, _ = hex.DecodeString(j.MD5)
	o.SHA256, _ = hex.DecodeString(j.SHA256)
	if len(o.MD5) == 0 {
		o.MD5 = nil
	}
	if len(o.SHA256) == 0 {
		o.SHA256 = nil
	}
	if j.Expires != nil {
		o.Expires = *j.Expires
	}
	if j.Location != nil {
		o.Source = *j.Location
	}
	for s := fs.StateRegistered; s <= fs.StateStored; s++ {
		if s.String() == j.State {
			o.State = s
		}
	}
	return o, nil
}

// CrawlRequest is the body of POST /api/v1/crawl.
type CrawlRequest struct {
	Provider     string            `json:"provider"`
	Prefix       string            `json:"prefix,omitempty"`
	Match        string            `json:"match,omitempty"`
	Meta         map[string]string `json:"meta,omitempty"`
	PathTemplate string            `json:"path_template,omitempty"`
}

// crawlLine is one line of the crawl response stream.
type crawlLine struct {
	Stats *ingestCrawlStats `json:"stats,omitempty"`
	Done  bool              `json:"done,omitempty"`
	Error *errorBody        `json:"error,omitempty"`
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
