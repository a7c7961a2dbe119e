package fs

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// ID identifies an object. IDs are ULIDs: 48 bits of milliseconds then 80
// bits of entropy, monotonic within a process, so they sort by creation
// time; the index relies on that for "newest wins" and time-ordered scans.
type ID = ulid.ULID

// ParseID parses the 26-character text form of an ID.
func ParseID(s string) (ID, error) {
	id, err := ulid.ParseStrict(s)
	if err != nil {
		return ID{}, E(Invalid, "parse id", s, err)
	}
	return id, nil
}

// IDGen makes IDs that are unique and strictly increasing in this process.
type IDGen struct {
	mu      sync.Mutex
	entropy *ulid.MonotonicEntropy
}

// NewIDGen returns an ID generator seeded from crypto/rand.
func NewIDGen() *IDGen {
	return &IDGen{entropy: ulid.Monotonic(rand.Reader, 0)}
}

// New returns a new ID for time t.
func (g *IDGen) New(t time.Time) ID {
	g.mu.Lock()
	defer g.mu.Unlock()
	id, err := ulid.New(ulid.Timestamp(t), g.entropy)
	if err != nil {
		// Only when >2^80 ids are made in one millisecond, or t is
		// before the previous call's millisecond: use the next ms.
		id = ulid.MustNew(ulid.Timestamp(time.Now().Add(time.Millisecond)), g.entropy)
	}
	return id
}

// State says where an object's content is.
type State uint8

const (
	// StateRegistered: known by its source location only; nothing cached.
	StateRegistered State = iota
	// StatePartial: some chunks are in the cache.
	StatePartial
	// StateCached: the whole content is in the cache and was verified.
	StateCached
	// StateStored: the content is in at least one store (it was pushed).
	StateStored
)

var stateNames = [...]string{"registered", "partial", "cached", "stored"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", s)
}

// Location is where a registered object's content is: a provider, a path or
// URL relative to the provider's root, and an optional byte range of that
// file (one provider file may hold many objects, as a GRIB file does).
type Location struct {
	Provider string `json:"provider"`
	Path     string `json:"path"`
	Offset   int64  `json:"offset,omitempty"`
	// Length of the range; 0 means to the end of the file.
	Length int64 `json:"length,omitempty"`
}

// IsZero reports whether the location is unset.
func (l Location) IsZero() bool { return l.Provider == "" && l.Path == "" }

// Object is the catalogue record of one object.
type Object struct {
	ID          ID
	Name        string
	Size        int64 // -1 when unknown (registered without a size)
	ModTime     time.Time
	ContentType string
	Meta        map[string]string
	MD5         []byte // 16 bytes, or nil when unknown
	SHA256      []byte // 32 bytes, or nil when unknown
	// ETag is the source's entity tag for registered objects (used to spot
	// changes when crawling) and the hex MD5 for pushed ones.
	ETag    string
	Expires time.Time // zero: never
	Source  Location  // zero for pushed objects
	State   State
	Stores  []string // names of the stores holding a verified copy
	// Version counts content changes under this ID (a re-crawl that finds
	// the source changed bumps it), so caches key content by ID+Version.
	Version uint32
	// Created is when this version was indexed (register, put or re-crawl).
	Created time.Time
	// Fingerprint sums the descriptive fields (name, metadata, content
	// type, expiry) of the record last registered at Source, as the
	// record gave them: a re-registration whose fingerprint differs
	// describes the object anew, one with the same fingerprint leaves
	// it as it is now, renamed or not (fs/index: Register). 0 when
	// unknown: pushed objects, and objects registered before it was kept.
	Fingerprint uint64
}

// ContentKey names this version of the content, for caches.
func (o *Object) ContentKey() string {
	return fmt.Sprintf("%s-%d", o.ID, o.Version)
}

// Clone returns a deep copy, so callers may modify it freely.
func (o *Object) Clone() *Object {
	c := *o
	if o.Meta != nil {
		c.Meta = make(map[string]string, len(o.Meta))
		for k, v := range o.Meta {
			c.Meta[k] = v
		}
	}
	c.MD5 = append([]byte(nil), o.MD5...)
	c.SHA256 = append([]byte(nil), o.SHA256...)
	c.Stores = append([]string(nil), o.Stores...)
	if len(o.MD5) == 0 {
		c.MD5 = nil
	}
	if len(o.SHA256) == 0 {
		c.SHA256 = nil
	}
	if len(o.Stores) == 0 {
		c.Stores = nil
	}
	return &c
}

// MD5Hex and SHA256Hex return the checksums in hex, or "" when unknown.
func (o *Object) MD5Hex() string    { return hex.EncodeToString(o.MD5) }
func (o *Object) SHA256Hex() string { return hex.EncodeToString(o.SHA256) }

// Expired reports whether the object has an expiry time at or before now.
func (o *Object) Expired(now time.Time) bool {
	return !o.Expires.IsZero() && !o.Expires.After(now)
}
