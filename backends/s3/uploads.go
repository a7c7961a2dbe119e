package s3

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// AbortUploads aborts the incomplete multipart uploads under the
// provider's prefix that were started before before, and returns how many
// it aborted. A Put that fails aborts its own upload (minio-go does), but
// one a crash interrupted stays in the bucket, invisible and billed, until
// aborted. The owner of a store calls it with a margin (a day) that no
// upload in progress, of this server or another sharing the prefix,
// can reach. One listing request per 1,000 uploads.
func (p *Provider) AbortUploads(ctx context.Context, before time.Time) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	core := minio.Core{Client: p.client}
	n := 0
	var errs []error
	for u := range p.client.ListIncompleteUploads(ctx, p.bucket, p.root, true) {
		if u.Err != nil {
			return n, p.classify("list uploads", p.root, u.Err)
		}
		if !strings.HasPrefix(u.Key, p.root) || !u.Initiated.Before(before) {
			continue
		}
		if err := core.AbortMultipartUpload(ctx, p.bucket, u.Key, u.UploadID); err != nil {
			errs = append(errs, p.classify("abort upload", u.Key, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
