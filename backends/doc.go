// Package backends defines the Provider interface that every content source
// and store implements, the error sentinels drivers classify their SDK
// errors into, and (in sub-packages) the drivers — local, http, s3, sftp —
// and the decorators that wrap a Provider (cache, retry, ...).
//
// backends knows nothing of objects, users, views or the index: a provider
// deals in paths relative to its root and byte ranges of those files.
//
// # Errors
//
// Drivers classify their errors in one function each into: iofs.ErrNotExist
// (no such file), iofs.ErrPermission (refused), iofs.ErrInvalid (bad path or
// range), ErrNoSpace (store full), ErrUnavailable (unreachable, timed out,
// 5xx after retries). Errors name the provider and the path.
package backends
