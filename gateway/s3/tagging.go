package s3

import (
	"encoding/xml"
	"net/http"

	"github.com/datagate/datagate/views"
)

// Objects have no tags: x-amz-tagging on a write is dropped and
// PutObjectTagging is NotImplemented. GetObjectTagging answers the empty
// set and DeleteObjectTagging has nothing to do, for an object that
// exists: the aws CLI (v2) reads a source's tags to copy any object
// above its multipart threshold ("aws s3 cp/mv s3://... s3://..."), and
// failed on NotImplemented. DELETE ?tagging deleted the object itself.

type taggingXML struct {
	XMLName xml.Name `xml:"Tagging"`
	NS      string   `xml:"xmlns,attr"`
	TagSet  struct{} `xml:"TagSet"`
}

// objectTagging serves GetObjectTagging (del false) and
// DeleteObjectTagging (del true).
func (s *Server) objectTagging(q *req, del bool) {
	r, err := s.bucketRights(q, q.bucket)
	need := views.Read
	if del {
		need = views.Write
	}
	if err == nil && r&need == 0 {
		err = ErrAccessDenied
	}
	if err == nil {
		var info *views.Info
		info, err = q.tree.Stat(q.r.Context(), objectPath(q.r.Context(), q.tree, q.bucket, q.key))
		if err == nil && info.IsDir() {
			err = ErrNoSuchKey
		}
	}
	if err != nil {
		q.fail(s, objectErr(err))
		return
	}
	if del {
		q.w.WriteHeader(http.StatusNoContent)
		return
	}
	writeXML(q.w, taggingXML{NS: s3NS})
}
