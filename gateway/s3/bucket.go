package s3

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/views"
)

const s3NS = "http://s3.amazonaws.com/doc/2006-03-01/"

type owner struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

// writeXML answers v as XML with status 200.
func writeXML(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(xml.Header))
	xml.NewEncoder(w).Encode(v)
}

type bucketXML struct {
	Name         string `xml:"Name"`
	CreationDate string `xml:"CreationDate"`
}

type listAllMyBucketsResult struct {
	XMLName xml.Name    `xml:"ListAllMyBucketsResult"`
	NS      string      `xml:"xmlns,attr"`
	Owner   owner       `xml:"Owner"`
	Buckets []bucketXML `xml:"Buckets>Bucket"`
}

// s3Time formats a time as S3 listings do.
func s3Time(t time.Time) string {
	if t.IsZero() {
		t = time.Unix(0, 0)
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// epoch stands for the creation date of views, which have none.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func (s *Server) listBuckets(q *req) {
	names := make([]string, 0)
	for n := range q.tree.Views() {
		names = append(names, n)
	}
	sort.Strings(names)
	res := listAllMyBucketsResult{NS: s3NS, Owner: owner{q.user, q.user}}
	for _, n := range names {
		res.Buckets = append(res.Buckets, bucketXML{Name: n, CreationDate: s3Time(epoch)})
	}
	writeXML(q.w, res)
}

func (s *Server) headBucket(q *req) {
	if _, err := s.bucketRights(q, q.bucket); err != nil {
		q.fail(s, err)
		return
	}
	q.w.Header().Set("x-amz-bucket-region", s.opts.Region)
	q.w.WriteHeader(http.StatusOK)
}

func (s *Server) bucketLocation(q *req) {
	if _, err := s.bucketRights(q, q.bucket); err != nil {
		q.fail(s, err)
		return
	}
	type loc struct {
		XMLName xml.Name `xml:"LocationConstraint"`
		NS      string   `xml:"xmlns,attr"`
		Region  string   `xml:",chardata"`
	}
	region := s.opts.Region
	if region == DefaultRegion {
		region = "" // S3's answer for us-east-1
	}
	writeXML(q.w, loc{NS: s3NS, Region: region})
}

func (s *Server) bucketVersioning(q *req) {
	if _, err := s.bucketRights(q, q.bucket); err != nil {
		q.fail(s, err)
		return
	}
	type vc struct {
		XMLName xml.Name `xml:"VersioningConfiguration"`
		NS      string   `xml:"xmlns,attr"`
	}
	writeXML(q.w, vc{NS: s3NS})
}

// bucketSubresource answers the bucket configuration reads clients probe
// (acl, policy, ...): an ACL of full control for the owner, "none" for
// the rest, as S3 answers for a bucket without that configuration.
func (s *Server) bucketSubresource(q *req, qs url.Values) {
	rights, err := s.bucketRights(q, q.bucket)
	if err != nil {
		q.fail(s, err)
		return
	}
	if qs.Has("acl") {
		writeXML(q.w, s.acl(q, rights))
		return
	}
	none := map[string]*APIError{
		"policy":            {"NoSuchBucketPolicy", http.StatusNotFound, "The bucket policy does not exist"},
		"cors":              {"NoSuchCORSConfiguration", http.StatusNotFound, "The CORS configuration does not exist"},
		"lifecycle":         {"NoSuchLifecycleConfiguration", http.StatusNotFound, "The lifecycle configuration does not exist"},
		"tagging":           {"NoSuchTagSet", http.StatusNotFound, "The TagSet does not exist"},
		"encryption":        {"ServerSideEncryptionConfigurationNotFoundError", http.StatusNotFound, "The server side encryption configuration was not found"},
		"website":           {"NoSuchWebsiteConfiguration", http.StatusNotFound, "The specified bucket does not have a website configuration"},
		"object-lock":       {"ObjectLockConfigurationNotFoundError", http.StatusNotFound, "Object Lock configuration does not exist for this bucket"},
		"replication":       {"ReplicationConfigurationNotFoundError", http.StatusNotFound, "The replication configuration was not found"},
		"ownershipControls": {"OwnershipControlsNotFoundError", http.StatusNotFound, "The bucket ownership controls were not found"},
		"publicAccessBlock": {"NoSuchPublicAccessBlockConfiguration", http.StatusNotFound, "The public access block configuration was not found"},
	}
	for k, e := range none {
		if qs.Has(k) {
			q.fail(s, e)
			return
		}
	}
	q.fail(s, ErrNotImplemented)
}

type grantee struct {
	XMLNS       string `xml:"xmlns:xsi,attr"`
	Type        string `xml:"xsi:type,attr"`
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

type grant struct {
	Grantee    grantee `xml:"Grantee"`
	Permission string  `xml:"Permission"`
}

type accessControlPolicy struct {
	XMLName xml.Name `xml:"AccessControlPolicy"`
	NS      string   `xml:"xmlns,attr"`
	Owner   owner    `xml:"Owner"`
	Grants  []grant  `xml:"AccessControlList>Grant"`
}

// acl is the user's grant on a bucket they have rights on: full control
// with the w right, READ without (it said FULL_CONTROL to a user who may
// only read).
func (s *Server) acl(q *req, rights views.Rights) accessControlPolicy {
	perm := "FULL_CONTROL"
	if rights&views.Write == 0 {
		perm = "READ"
	}
	return accessControlPolicy{NS: s3NS, Owner: owner{q.user, q.user}, Grants: []grant{{
		Grantee:    grantee{XMLNS: "http://www.w3.org/2001/XMLSchema-instance", Type: "CanonicalUser", ID: q.user, DisplayName: q.user},
		Permission: perm,
	}}}
}

// putBucketACL accepts and ignores canned ACLs: access is the config's.
// It is a write: AccessDenied without the w right, as every write verb
// (it succeeded on a bucket the user may only read).
func (s *Server) putBucketACL(q *req) {
	if r, err := s.bucketRights(q, q.bucket); err != nil || r&views.Write == 0 {
		if err == nil {
			err = ErrAccessDenied
		}
		q.fail(s, err)
		return
	}
	io.Copy(io.Discard, io.LimitReader(q.r.Body, 64<<10))
	q.w.WriteHeader(http.StatusOK)
}

// createBucket creates a view {path...} with fixed metadata
// bucket=<name>, owned by the user. The body (a location constraint) and
// canned ACLs are accepted and ignored.
func (s *Server) createBucket(q *req) {
	if err := views.CheckName(q.bucket); err != nil {
		q.fail(s, withMessage(ErrInvalidBucketName, "%s", err.Error()))
		return
	}
	if _, ok := q.tree.Views()[q.bucket]; ok {
		if v, ok := s.opts.Views.View(q.bucket); ok {
			if owner, rt := v.Runtime(); rt && owner == q.user {
				q.fail(s, ErrBucketAlreadyOwned)
				return
			}
		}
		q.fail(s, ErrBucketAlreadyExists)
		return
	}
	if _, ok := s.opts.Views.View(q.bucket); ok {
		q.fail(s, ErrBucketAlreadyExists)
		return
	}
	io.Copy(io.Discard, io.LimitReader(s.verify.Body(q.r, q.auth), 64<<10))
	def := views.Def{Path: "{path...}", Filter: "bucket = " + q.bucket, Set: map[string]string{"bucket": q.bucket}}
	if err := q.tree.CreateView(q.r.Context(), q.bucket, def); err != nil {
		if fs.KindOf(err) == fs.Exist {
			err = ErrBucketAlreadyExists
		}
		q.fail(s, err)
		return
	}
	q.w.Header().Set("Location", "/"+q.bucket)
	q.w.WriteHeader(http.StatusOK)
}

// deleteBucket deletes a view the user created, when empty.
func (s *Server) deleteBucket(q *req) {
	if _, err := s.bucketRights(q, q.bucket); err != nil {
		q.fail(s, err)
		return
	}
	v, ok := s.opts.Views.View(q.bucket)
	if !ok {
		q.fail(s, ErrNoSuchBucket)
		return
	}
	if owner, rt := v.Runtime(); !rt || owner != q.user {
		q.fail(s, withMessage(ErrAccessDenied, "bucket %s is a configured view or another user's: it cannot be deleted over S3", q.bucket))
		return
	}
	if err := q.tree.DeleteView(q.r.Context(), q.bucket); err != nil { // the Tree's: audited
		switch fs.KindOf(err) {
		case fs.NotEmpty:
			err = ErrBucketNotEmpty
		case fs.NotExist:
			err = ErrNoSuchBucket
		}
		q.fail(s, err)
		return
	}
	q.w.WriteHeader(http.StatusNoContent)
}
