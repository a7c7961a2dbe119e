// Package s3 serves the S3 REST API over the per-user file systems of
// package views, on net/http.
//
// # Model
//
// A bucket is a view the user sees (the bucket name is the view name);
// an object key is the path inside the view. Every request runs on the
// user's views.Tree made with ViewDirs, whose root holds one directory per
// view, so key K of bucket B is the Tree path "/B/K" whatever the number
// of views the user has. A PUT therefore parses the key with the view's
// template into metadata (a key that fits no template is InvalidArgument,
// naming it), and the object appears at once in every view it belongs
// to. A key ending in "/" is a directory: PUT of an empty body makes it
// (Tree.Mkdir) and listings show such directories as empty "folder
// objects"; directories implied by the objects under them are only
// prefixes. Keys are taken as sent: "..", "//", NUL or over 1,024 bytes
// are refused, never cleaned. The Tree's path segments are escaped
// (fs/pathtmpl: "%" is "%25"), keys are not: a key's segments are
// escaped on the way in and listed names unescaped (keys.go), so a key
// is the object's name as the client gave it, "%" and all.
//
// CreateBucket makes a view "{path...}" with the filter bucket = <name>
// and the fixed metadata bucket=<name> (kept in the index, so it survives
// restarts) for users whose profile allows it; DeleteBucket deletes such a
// view of the user's when empty. Canned ACLs are accepted and ignored:
// access is the configuration's. Buckets are unversioned: objects have
// version id "null" and ListObjectVersions lists the current objects.
//
// # Authentication
//
// Every request is verified with AWS Signature Version 4 (package sigv4):
// header or presigned, the payload hash checked as the body streams in, so
// an upload is committed only when its body matched what was signed.
// Access keys map to users (Options.Keys). A bucket the user does not
// see is NoSuchBucket, whether it exists or not.
//
// # Listing
//
// ListObjects V1/V2 and ListObjectVersions walk the path index with
// Tree.ReadDir pages: with delimiter "/" only the prefix's directory is
// read; otherwise only the subtrees the prefix and the marker leave in
// range. Directories sort as "name/" among their siblings, so keys come
// out in S3's byte order. Continuation tokens carry the bucket and the
// last key and are refused for another bucket or when malformed.
//
// # Content
//
// ETag is the MD5 of the content (computed on every upload; for a
// registered object the source's entity tag until the content has been
// read once). A completed multipart upload answers the S3 form
// md5-of-part-md5s-N; later reads give the MD5 of the whole content.
// Whole local content is sent with sendfile. Multipart parts are spooled
// under Options.UploadDir and stale uploads are removed after
// Options.UploadMaxAge.
//
// # Errors
//
// errors.go maps fs kinds and the S3-specific conditions to S3 XML errors
// in one table. Panics in a handler are recovered into InternalError and
// one log line with the stack.
package s3
