// Package fs is datagate's object store: the domain types (Object, ID,
// Location, State), the error vocabulary every layer speaks, and, in its
// sub-packages, the Badger index (fs/index) and the Store that coordinates
// index, cache and providers (fs/store).
//
// # Objects
//
// An object is a named piece of content with metadata (string → string).
// Its content lives either in a store (it was pushed: StateStored) or at a
// source Location on a provider (it was registered: StateRegistered), from
// where it is fetched lazily into the chunk cache (StatePartial, then
// StateCached once whole and verified against its checksums).
//
// # Errors
//
// Every error that crosses a package boundary carries a Kind (see KindOf).
// *Error unwraps to the matching io/fs sentinel as well, so both
// errors.Is(err, iofs.ErrNotExist) and KindOf(err) == NotExist hold.
// Front-ends map kinds to their protocol in exactly one place each.
package fs
