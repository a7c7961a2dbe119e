package httpserve

import "github.com/datagate/datagate/fs"

// FetchErr is the error to answer for content that could not be read
// although its path was found (Prime's, or S3's first byte): not there,
// not allowed, unavailable or no space say so; anything else (a
// provider's file that is a directory, a registered range past its end)
// is the server's trouble, of kind Other (500, InternalError), printing
// the detail for the log. WebDAV answered 400 and S3 InvalidArgument,
// the client's fault, telling the provider's name and path.
func FetchErr(err error) error {
	switch fs.KindOf(err) {
	case fs.NotExist, fs.Permission, fs.Unavailable, fs.NoSpace:
		return err
	}
	return opaque{err}
}

// opaque hides its error's kind (fs.KindOf: Other) but prints it.
type opaque struct{ err error }

func (e opaque) Error() string { return e.err.Error() }
