package webdav

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/net/webdav"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/views"
)

// lockPrefix is the Badger key prefix of persisted locks: 0x57 ('W')
// token → lockRecord (JSON).
const lockPrefix = 0x57

// LockOptions configure NewLockStore.
type LockOptions struct {
	// MaxTimeout caps the timeout of a lock taken with LOCK (Infinite
	// included), so a lock a client forgot cannot stay forever; default
	// 24h. Clients keep a lock by refreshing it.
	MaxTimeout time.Duration
	Logger     *slog.Logger
	// Sync makes the database's writes durable (the index's Sync); a lock
	// or unlock is acknowledged after it. nil: no sync.
	Sync func() error
}

// LockStore holds the WebDAV locks of every user. Locks are named by view
// path ("/view/dir/file"), not by a user's path, so two users whose trees
// show one view differently still see each other's locks. The locks
// clients take with LOCK are also written to Badger and reloaded by
// NewLockStore, so they survive a restart until they expire; the
// short-lived locks x/net/webdav takes around each write request stay in
// memory. Safe for concurrent use.
type LockStore struct {
	// immutable after NewLockStore
	db   *badger.DB // nil: memory only
	max  time.Duration
	log  *slog.Logger
	rand func([]byte) (int, error)
	sync func() error

	mu sync.Mutex
	// guarded by mu
	byToken   map[string]*lock
	byRoot    map[string][]*lock // LOCK locks on each path (several only if shared)
	below     map[string]int     // LOCK locks at or under each path
	exclBelow map[string]int     // exclusive LOCK locks at or under each path
	// x/net/webdav takes a zero-depth lock around each write request
	// that names none: such request locks conflict with LOCK locks, not
	// with each other, so concurrent PUTs to one path all proceed (the
	// store lets the newest win) instead of failing with 423.
	reqAt    map[string]int // request locks on each path
	reqBelow map[string]int // request locks at or under each path
	reqDeep  map[string]int // request locks on each path that cover its tree (treeLocks.deep)
	next     time.Time      // earliest expiry; zero: none
}

type lock struct {
	token     string
	user      string
	root      string // view path
	zeroDepth bool
	owner     string // the <owner> XML
	duration  time.Duration
	expiry    time.Time // zero: never
	persisted bool
	request   bool // taken around one request, not by LOCK
	shared    bool // a shared LOCK lock (others are exclusive)
	held      bool // by a request that Confirmed it
}

// lockRecord is a persisted lock.
type lockRecord struct {
	User      string    `json:"user"`
	Root      string    `json:"root"`
	ZeroDepth bool      `json:"zero_depth,omitempty"`
	Owner     string    `json:"owner,omitempty"`
	Shared    bool      `json:"shared,omitempty"`
	Timeout   int64     `json:"timeout_s"`
	Expires   time.Time `json:"expires"`
}

// NewLockStore loads the locks persisted in db (nil: keep locks in memory
// only), dropping those that expired while the server was down.
func NewLockStore(db *badger.DB, opts LockOptions) (*LockStore, error) {
	if opts.MaxTimeout <= 0 {
		opts.MaxTimeout = 24 * time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ls := &LockStore{
		db: db, max: opts.MaxTimeout, log: opts.Logger, rand: rand.Read, sync: opts.Sync,
		byToken: map[string]*lock{}, byRoot: map[string][]*lock{}, below: map[string]int{}, exclBelow: map[string]int{},
		reqAt: map[string]int{}, reqBelow: map[string]int{}, reqDeep: map[string]int{},
	}
	if db == nil {
		return ls, nil
	}
	now := time.Now()
	var stale [][]byte
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{lockPrefix}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			key := item.KeyCopy(nil)
			var rec lockRecord
			err := item.Value(func(v []byte) error { return json.Unmarshal(v, &rec) })
			if err != nil || !now.Before(rec.Expires) || !ls.canCreate(rec.Root, rec.ZeroDepth, false, rec.Shared) {
				stale = append(stale, key)
				continue
			}
			ls.add(&lock{
				token: string(key[1:]), user: rec.User, root: rec.Root, zeroDepth: rec.ZeroDepth, owner: rec.Owner,
				duration: time.Duration(rec.Timeout) * time.Second, expiry: rec.Expires, persisted: true, shared: rec.Shared,
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("webdav: load locks: %w", err)
	}
	if len(stale) > 0 {
		err := db.Update(func(txn *badger.Txn) error {
			for _, k := range stale {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("webdav: drop expired locks: %w", err)
		}
	}
	if n := len(ls.byToken); n > 0 || len(stale) > 0 {
		ls.log.Info("webdav locks loaded", "active", n, "expired", len(stale))
	}
	return ls, nil
}

// ancestors calls fn on p and each of its ancestors up to "/".
func ancestors(p string, fn func(string)) {
	for {
		fn(p)
		if p == "/" {
			return
		}
		p = path.Dir(p)
	}
}

func under(name, root string) bool {
	return root == "/" || strings.HasPrefix(name, root+"/")
}

func (ls *LockStore) add(l *lock) {
	ls.byToken[l.token] = l
	if l.request {
		ls.reqAt[l.root]++
		ancestors(l.root, func(a string) { ls.reqBelow[a]++ })
		if !l.zeroDepth {
			ls.reqDeep[l.root]++
		}
	} else {
		ls.byRoot[l.root] = append(ls.byRoot[l.root], l)
		ancestors(l.root, func(a string) {
			ls.below[a]++
			if !l.shared {
				ls.exclBelow[a]++
			}
		})
	}
	if !l.expiry.IsZero() && (ls.next.IsZero() || l.expiry.Before(ls.next)) {
		ls.next = l.expiry
	}
}

func (ls *LockStore) remove(l *lock) error {
	delete(ls.byToken, l.token)
	dec := func(m map[string]int, k string) {
		if m[k]--; m[k] <= 0 {
			delete(m, k)
		}
	}
	if l.request {
		dec(ls.reqAt, l.root)
		ancestors(l.root, func(a string) { dec(ls.reqBelow, a) })
		if !l.zeroDepth {
			dec(ls.reqDeep, l.root)
		}
	} else {
		at := ls.byRoot[l.root]
		for i, x := range at {
			if x == l {
				at = append(at[:i:i], at[i+1:]...)
				break
			}
		}
		if len(at) == 0 {
			delete(ls.byRoot, l.root)
		} else {
			ls.byRoot[l.root] = at
		}
		ancestors(l.root, func(a string) {
			dec(ls.below, a)
			if !l.shared {
				dec(ls.exclBelow, a)
			}
		})
	}
	if l.persisted {
		return ls.synced(ls.db.Update(func(txn *badger.Txn) error { return txn.Delete(lockKey(l.token)) }))
	}
	return nil
}

// synced follows a successful write with the configured sync.
func (ls *LockStore) synced(err error) error {
	if err != nil || ls.sync == nil {
		return err
	}
	return ls.sync()
}

func lockKey(token string) []byte { return append([]byte{lockPrefix}, token...) }

func (ls *LockStore) persist(l *lock) error {
	if !l.persisted {
		return nil
	}
	v, err := json.Marshal(lockRecord{User: l.user, Root: l.root, ZeroDepth: l.zeroDepth, Owner: l.owner,
		Shared: l.shared, Timeout: int64(l.duration / time.Second), Expires: l.expiry})
	if err != nil {
		return err
	}
	return ls.synced(ls.db.Update(func(txn *badger.Txn) error { return txn.Set(lockKey(l.token), v) }))
}

// expire drops the locks whose time is up; held ones wait for release.
func (ls *LockStore) expire(now time.Time) {
	if ls.next.IsZero() || now.Before(ls.next) {
		return
	}
	ls.next = time.Time{}
	for _, l := range ls.byToken {
		if l.expiry.IsZero() {
			continue
		}
		if !l.held && !now.Before(l.expiry) {
			if err := ls.remove(l); err != nil {
				ls.log.Warn("drop expired lock", "root", l.root, "err", err)
			}
			continue
		}
		if ls.next.IsZero() || l.expiry.Before(ls.next) {
			ls.next = l.expiry
		}
	}
}

// canCreate reports whether a lock on root conflicts with none: no
// conflicting lock on root itself, none under it for an infinite-depth
// lock, and no conflicting infinite-depth lock above it. Shared locks
// conflict only with exclusive ones; request locks conflict with every
// LOCK lock, not with each other.
func (ls *LockStore) canCreate(root string, zeroDepth, request, shared bool) bool {
	conflicts := func(l *lock) bool { return !(shared && l.shared) }
	for _, l := range ls.byRoot[root] {
		if conflicts(l) {
			return false
		}
	}
	if !zeroDepth && ((shared && ls.exclBelow[root] > 0) || (!shared && ls.below[root] > 0)) {
		return false
	}
	if !request && (ls.reqAt[root] > 0 || (!zeroDepth && ls.reqBelow[root] > 0)) {
		return false
	}
	ok := true
	ancestors(root, func(a string) {
		for _, l := range ls.byRoot[a] {
			if a != root && !l.zeroDepth && conflicts(l) {
				ok = false
			}
		}
		// a DELETE, MOVE or COPY under way above root
		if a != root && !request && ls.reqDeep[a] > 0 {
			ok = false
		}
	})
	return ok
}

func (ls *LockStore) newToken() (string, error) {
	var b [16]byte
	if _, err := ls.rand(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:]), nil
}

// forTree returns the webdav.LockSystem of one request of tree's user.
// persist is for LOCK requests: their locks are written to Badger.
func (ls *LockStore) forTree(tree *views.Tree, persist bool) *treeLocks {
	return &treeLocks{ls: ls, user: tree.User(), persist: persist, prefix: viewPrefix(tree)}
}

// viewPrefix is "/view" when the user's root is that one view, else ""
// (the root holds one directory per view).
func viewPrefix(tree *views.Tree) string {
	for v := range tree.Views() {
		if up, ok := tree.UserPath(v, ""); ok && up == "/" {
			return "/" + v
		}
	}
	return ""
}

// prefixed turns a user path into "/view/path".
func prefixed(prefix, name string) string {
	p := path.Clean("/" + name)
	if prefix == "" {
		return p
	}
	if p == "/" {
		return prefix
	}
	return prefix + p
}

// treeLocks adapts the LockStore to one user's paths.
type treeLocks struct {
	ls      *LockStore
	user    string
	prefix  string // "/view" when the user's root is that view
	persist bool
	// etags gives a resource's ETags (etagsOf; none for a collection)
	// for If-header ETag conditions; nil: they never match.
	etags func(name string) []string
	// target is the request's resource and submitted the lock tokens its
	// If header names anywhere (not after Not): every lock covering the
	// target or a MOVE/COPY destination must be among them, whichever
	// list of the header is true.
	target    string
	submitted map[string]bool
	// deep: the request removes or replaces whole trees (DELETE, MOVE,
	// and a COPY's destination), so the locks of their members count as
	// the resource's own. x/net/webdav checks such a request with a
	// zero-depth lock, so a DELETE of a collection removed the files
	// other clients held locked in it.
	deep bool
}

// forRequest notes what Confirm needs of the request beyond one If list;
// target is "" for a request that does not change its resource (COPY).
func (t *treeLocks) forRequest(target, ifHeader string, deep bool) {
	t.target, t.submitted, t.deep = target, submittedTokens(ifHeader), deep
}

// submittedTokens returns the state tokens in the lists of an If header
// (RFC 4918 10.4), leaving out tagged resources, ETags and negated tokens.
func submittedTokens(h string) map[string]bool {
	toks := map[string]bool{}
	depth, not := 0, false
	for i := 0; i < len(h); i++ {
		switch c := h[i]; {
		case c == '(':
			depth, not = depth+1, false
		case c == ')':
			depth--
		case c == '<' || c == '[':
			end := byte('>')
			if c == '[' {
				end = ']'
			}
			j := strings.IndexByte(h[i:], end)
			if j < 0 {
				return toks
			}
			if c == '<' && depth > 0 && !not {
				toks[h[i+1:i+j]] = true
			}
			i, not = i+j, false
		case depth > 0 && (c == 'N' || c == 'n') && strings.HasPrefix(strings.ToLower(h[i:]), "not"):
			not = true
			i += 2
		}
	}
	return toks
}

// viewPath turns a user path into a lock name.
func (t *treeLocks) viewPath(name string) string { return prefixed(t.prefix, name) }

// userPath turns a lock name back into the user's path.
func (t *treeLocks) userPath(root string) string {
	if t.prefix == "" {
		return root
	}
	if root == t.prefix {
		return "/"
	}
	if r, ok := strings.CutPrefix(root, t.prefix+"/"); ok {
		return "/" + r
	}
	return root
}

// match evaluates one If-header list for name: every condition must hold
// (a token: a lock of this user covering name, unless Not; an ETag: the
// resource's, unless Not), and a LOCK lock covering name must be one the
// list names. It returns the lock to hold, if any.
func (t *treeLocks) match(name string, etags []string, conds []webdav.Condition) (*lock, bool) {
	var claimed *lock
	for _, c := range conds {
		if c.Token == "" {
			if slices.Contains(etags, c.ETag) == c.Not {
				return nil, false
			}
			continue
		}
		l := t.ls.byToken[c.Token]
		holds := l != nil && !l.held && l.user == t.user && !l.request &&
			(l.root == name || (!l.zeroDepth && under(name, l.root)))
		if holds == c.Not {
			return nil, false
		}
		if holds {
			claimed = l
		}
	}
	if cover := t.ls.covering(name); len(cover) > 0 {
		for _, l := range cover {
			if l == claimed {
				return claimed, true
			}
		}
		return nil, false
	}
	return claimed, true
}

// covering returns the LOCK locks on name and the infinite ones above it.
func (ls *LockStore) covering(name string) []*lock {
	var found []*lock
	ancestors(name, func(a string) {
		for _, l := range ls.byRoot[a] {
			if a == name || !l.zeroDepth {
				found = append(found, l)
			}
		}
	})
	return found
}

// claim returns the locks covering name, which must all have been
// submitted; ok is false when one was not, or is held by another request.
func (t *treeLocks) claim(name string) ([]*lock, bool) {
	cover := t.ls.covering(name)
	for _, l := range cover {
		if !t.submitted[l.token] || l.held || l.user != t.user || l.request {
			return nil, false
		}
	}
	return cover, true
}

// claimBelow returns the locks of the members of name, which must all
// have been submitted, as claim does.
func (t *treeLocks) claimBelow(name string) ([]*lock, bool) {
	ls := t.ls
	if ls.below[name] == len(ls.byRoot[name]) {
		return nil, true // none below name
	}
	var found []*lock
	for root, at := range ls.byRoot {
		if root == name || !under(root, name) {
			continue
		}
		for _, l := range at {
			if !t.submitted[l.token] || l.held || l.user != t.user || l.request {
				return nil, false
			}
			found = append(found, l)
		}
	}
	return found, true
}

// dropUnder removes the LOCK locks on name and on its members, after a
// DELETE or MOVE of name succeeded: the locks went with the resources
// (RFC 4918 9.6, 9.9.4). Kept, they locked whatever was made at the old
// path next (423 for a file recreated after a rename).
func (t *treeLocks) dropUnder(name string) {
	ls := t.ls
	root := t.viewPath(name)
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.below[root] == 0 {
		return
	}
	for r, at := range ls.byRoot {
		if r != root && !under(r, root) {
			continue
		}
		for _, l := range slices.Clone(at) {
			if err := ls.remove(l); err != nil {
				ls.log.Warn("drop the lock of a removed resource", "root", l.root, "err", err)
			}
		}
	}
}

// Confirm evaluates one list of an If header for up to two resources and
// holds the locks it names until release. The list is about name0 (its
// tagged resource, else the request's), which must satisfy it; the
// request's own resource and name1 (the destination of a MOVE or COPY)
// need only have their locks submitted somewhere in the header.
// x/net/webdav's lock system evaluates the list against both names, so a
// MOVE of a locked file (davfs2's rename: If: <src> (<src's token>)) to an
// unlocked place failed with 412; and a list tagged with another resource
// let a request through to a locked one.
func (t *treeLocks) Confirm(now time.Time, name0, name1 string, conds ...webdav.Condition) (func(), error) {
	var etags0 []string
	for _, c := range conds {
		if c.ETag != "" && t.etags != nil && name0 != "" {
			etags0 = t.etags(name0)
			break
		}
	}
	ls := t.ls
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.expire(now)
	var hold []*lock
	if name0 != "" {
		l, ok := t.match(t.viewPath(name0), etags0, conds)
		if !ok {
			return nil, webdav.ErrConfirmationFailed
		}
		if l != nil {
			hold = append(hold, l)
		}
	}
	for _, name := range []string{t.target, name1} {
		if name == "" || name == name0 {
			continue
		}
		cl, ok := t.claim(t.viewPath(name))
		if !ok {
			return nil, webdav.ErrConfirmationFailed
		}
		hold = append(hold, cl...)
	}
	if t.deep {
		for _, name := range []string{name0, t.target, name1} {
			if name == "" {
				continue
			}
			cl, ok := t.claimBelow(t.viewPath(name))
			if !ok {
				return nil, webdav.ErrConfirmationFailed
			}
			hold = append(hold, cl...)
		}
	}
	for _, l := range hold {
		l.held = true
	}
	return func() {
		ls.mu.Lock()
		defer ls.mu.Unlock()
		for _, l := range hold {
			l.held = false
		}
	}, nil
}

// Create takes an exclusive lock.
func (t *treeLocks) Create(now time.Time, d webdav.LockDetails) (string, error) {
	return t.create(now, d, false)
}

// maxLockOwner bounds a lock's <owner> XML, kept with the lock and sent
// in every lockdiscovery of its resource: clients send a name or a URL.
// Unbounded, 30 shared locks with 900 KB owners made each PROPFIND of
// the file 28 MB, for every user who sees it.
const maxLockOwner = 4 << 10

// create takes a lock, shared or exclusive.
func (t *treeLocks) create(now time.Time, d webdav.LockDetails, shared bool) (string, error) {
	if len(d.OwnerXML) > maxLockOwner {
		return "", fs.E(fs.Invalid, "lock", d.Root, fmt.Errorf("lock owner of %d bytes: at most %d", len(d.OwnerXML), maxLockOwner))
	}
	ls := t.ls
	token, err := ls.newToken()
	if err != nil {
		return "", err
	}
	root := t.viewPath(d.Root)
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.expire(now)
	zeroDepth := d.ZeroDepth
	if t.deep && !t.persist {
		zeroDepth = false // the request lock of a DELETE, MOVE or COPY: see deep
	}
	if !ls.canCreate(root, zeroDepth, !t.persist, shared) {
		return "", webdav.ErrLocked
	}
	l := &lock{token: token, user: t.user, root: root, zeroDepth: zeroDepth, owner: d.OwnerXML, duration: d.Duration,
		persisted: t.persist && ls.db != nil, request: !t.persist, shared: shared && t.persist}
	if t.persist && (l.duration < 0 || l.duration > ls.max) {
		l.duration = ls.max
	}
	if l.duration >= 0 {
		l.expiry = now.Add(l.duration)
	}
	if err := ls.persist(l); err != nil {
		return "", fmt.Errorf("webdav: persist lock on %s: %w", root, err)
	}
	ls.add(l)
	return token, nil
}

// Refresh extends a lock's timeout.
func (t *treeLocks) Refresh(now time.Time, token string, d time.Duration) (webdav.LockDetails, error) {
	ls := t.ls
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.expire(now)
	l := ls.byToken[token]
	if l == nil || l.user != t.user {
		return webdav.LockDetails{}, webdav.ErrNoSuchLock
	}
	if l.held {
		return webdav.LockDetails{}, webdav.ErrLocked
	}
	if l.persisted && (d < 0 || d > ls.max) {
		d = ls.max
	}
	l.duration, l.expiry = d, time.Time{}
	if d >= 0 {
		l.expiry = now.Add(d)
		if ls.next.IsZero() || l.expiry.Before(ls.next) {
			ls.next = l.expiry
		}
	}
	if err := ls.persist(l); err != nil {
		return webdav.LockDetails{}, fmt.Errorf("webdav: persist lock on %s: %w", l.root, err)
	}
	return webdav.LockDetails{Root: t.userPath(l.root), Duration: l.duration, OwnerXML: l.owner, ZeroDepth: l.zeroDepth}, nil
}

// Unlock removes a lock; only its owner may.
func (t *treeLocks) Unlock(now time.Time, token string) error {
	ls := t.ls
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.expire(now)
	l := ls.byToken[token]
	switch {
	case l == nil:
		return webdav.ErrNoSuchLock
	case l.user != t.user:
		return webdav.ErrForbidden
	case l.held:
		return webdav.ErrLocked
	}
	if err := ls.remove(l); err != nil {
		return fmt.Errorf("webdav: remove lock on %s: %w", l.root, err)
	}
	return nil
}

var _ webdav.LockSystem = (*treeLocks)(nil)
