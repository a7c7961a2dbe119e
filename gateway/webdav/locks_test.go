package webdav

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/net/webdav"

	"github.com/datagate/datagate/views"
)

const lockBody = `<?xml version="1.0"?><lockinfo xmlns="DAV:"><lockscope><exclusive/></lockscope><locktype><write/></locktype><owner>t</owner></lockinfo>`

func TestLockHTTP(t *testing.T) {
	e := newEnv(t)
	e.users["carol"] = e.users["alice"]
	e.want(t, 201, req{method: "PUT", path: "/files/doc", body: "v1"})
	_, h := e.want(t, 200, req{method: "LOCK", path: "/files/doc", body: lockBody, hdr: map[string]string{"Timeout": "Second-600"}})
	tok := h.Get("Lock-Token")
	if !strings.HasPrefix(tok, "<urn:uuid:") {
		t.Fatalf("Lock-Token %q", tok)
	}
	e.want(t, 423, req{method: "PUT", path: "/files/doc", body: "other"})
	e.want(t, 423, req{method: "PUT", path: "/files/doc", body: "other", user: "carol"})
	e.want(t, 201, req{method: "PUT", path: "/files/doc", body: "v2", hdr: map[string]string{"If": "(" + tok + ")"}})
	// another user cannot use or remove alice's lock
	e.want(t, 412, req{method: "PUT", path: "/files/doc", body: "x", user: "carol", hdr: map[string]string{"If": "(" + tok + ")"}})
	e.want(t, 403, req{method: "UNLOCK", path: "/files/doc", user: "carol", hdr: map[string]string{"Lock-Token": tok}})

	// a restart: a new LockStore on the same database still has the lock
	ls2, err := NewLockStore(e.st.Index().DB(), LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.srv.opts.Locks = ls2
	e.want(t, 423, req{method: "DELETE", path: "/files/doc"})
	e.want(t, 204, req{method: "UNLOCK", path: "/files/doc", hdr: map[string]string{"Lock-Token": tok}})
	e.want(t, 204, req{method: "DELETE", path: "/files/doc"})
	ls3, err := NewLockStore(e.st.Index().DB(), LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls3.byToken) != 0 {
		t.Fatalf("unlocked lock reloaded: %v", ls3.byToken)
	}

	// LOCK on an unmapped URL makes an empty file
	e.want(t, 201, req{method: "LOCK", path: "/files/new", body: lockBody})
	if body, _ := e.want(t, 200, req{method: "GET", path: "/files/new"}); body != "" {
		t.Fatalf("lock-null resource: %q", body)
	}
}

func TestLockExpiry(t *testing.T) {
	e := newEnv(t)
	tree := e.tree("alice")
	now := time.Now()
	ls := e.locks
	tok, err := ls.forTree(tree, true).Create(now, webdav.LockDetails{Root: "/files/a", Duration: 2 * time.Second, ZeroDepth: true})
	if err != nil {
		t.Fatal(err)
	}
	// a request lock on the same path is refused while the lock lives...
	if _, err := ls.forTree(tree, false).Create(now.Add(time.Second), webdav.LockDetails{Root: "/files/a", Duration: -1, ZeroDepth: true}); err != webdav.ErrLocked {
		t.Fatalf("request lock over a LOCK lock: %v", err)
	}
	// ...and request locks do not conflict with each other
	r1, err1 := ls.forTree(tree, false).Create(now, webdav.LockDetails{Root: "/files/b", Duration: -1, ZeroDepth: true})
	r2, err2 := ls.forTree(tree, false).Create(now, webdav.LockDetails{Root: "/files/b", Duration: -1, ZeroDepth: true})
	if err1 != nil || err2 != nil {
		t.Fatalf("request locks conflict: %v %v", err1, err2)
	}
	// but LOCK waits for them
	if _, err := ls.forTree(tree, true).Create(now, webdav.LockDetails{Root: "/files", Duration: time.Minute}); err != webdav.ErrLocked {
		t.Fatalf("infinite LOCK over request locks below: %v", err)
	}
	ls.forTree(tree, false).Unlock(now, r1)
	ls.forTree(tree, false).Unlock(now, r2)

	// expired: gone in memory and, at the next load, in Badger
	later := now.Add(3 * time.Second)
	if _, err := ls.forTree(tree, false).Create(later, webdav.LockDetails{Root: "/files/a", Duration: -1, ZeroDepth: true}); err != nil {
		t.Fatalf("lock did not expire: %v", err)
	}
	if err := ls.forTree(tree, false).Unlock(later, tok); err != webdav.ErrNoSuchLock {
		t.Fatalf("unlock of an expired lock: %v", err)
	}
	tok2, err := ls.forTree(tree, true).Create(now, webdav.LockDetails{Root: "/files/c", Duration: time.Millisecond, ZeroDepth: true})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	ls2, err := NewLockStore(e.st.Index().DB(), LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ls2.byToken[tok2] != nil {
		t.Fatal("an expired lock came back after a restart")
	}

	// Infinite is capped
	ls3, _ := NewLockStore(nil, LockOptions{MaxTimeout: time.Hour})
	tok3, _ := ls3.forTree(tree, true).Create(now, webdav.LockDetails{Root: "/files/d", Duration: -1})
	if l := ls3.byToken[tok3]; l == nil || !l.expiry.Equal(now.Add(time.Hour)) {
		t.Fatalf("infinite lock not capped: %+v", l)
	}
	// depth: an infinite lock on a collection covers what is under it
	if _, err := ls3.forTree(tree, true).Create(now, webdav.LockDetails{Root: "/files/d/x", Duration: time.Minute, ZeroDepth: true}); err != webdav.ErrLocked {
		t.Fatalf("lock under an infinite lock: %v", err)
	}
	rel, err := ls3.forTree(tree, false).Confirm(now, "/files/d/x", "", webdav.Condition{Token: tok3})
	if err != nil {
		t.Fatalf("confirm under an infinite lock: %v", err)
	}
	if _, err := ls3.forTree(tree, false).Confirm(now, "/files/d/y", "", webdav.Condition{Token: tok3}); err != webdav.ErrConfirmationFailed {
		t.Fatalf("confirm of a held lock: %v", err)
	}
	rel()
}

// Locks are named by view path: bob (one view, shown as his root) and a
// user who sees the same view as a directory share its locks.
func TestLockViewPaths(t *testing.T) {
	e := newEnv(t)
	e.users["dave"] = views.Profile{Views: map[string]views.Rights{"secret": views.All, "files": views.Read}} // two views: /secret/... for dave
	bob, dave := e.tree("bob"), e.tree("dave")
	now := time.Now()
	if _, err := e.locks.forTree(bob, true).Create(now, webdav.LockDetails{Root: "/doc", Duration: time.Minute, ZeroDepth: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.locks.forTree(dave, false).Create(now, webdav.LockDetails{Root: "/secret/doc", Duration: -1, ZeroDepth: true}); err != webdav.ErrLocked {
		t.Fatalf("dave's /secret/doc is bob's /doc: %v", err)
	}
}

const sharedLockBody = `<?xml version="1.0"?><lockinfo xmlns="DAV:"><lockscope><shared/></lockscope><locktype><write/></locktype><owner>s</owner></lockinfo>`

func TestSharedLocks(t *testing.T) {
	e := newEnv(t)
	e.users["carol"] = e.users["alice"]
	e.want(t, 201, req{method: "PUT", path: "/files/doc", body: "v1"})
	body, h := e.want(t, 200, req{method: "LOCK", path: "/files/doc", body: sharedLockBody, hdr: map[string]string{"Timeout": "Second-100", "Depth": "0"}})
	t1 := h.Get("Lock-Token")
	if !strings.Contains(body, "<D:shared/>") || !strings.Contains(body, "Second-100") || !strings.Contains(body, strings.Trim(t1, "<>")) {
		t.Fatalf("shared LOCK response %q:\n%s", t1, body)
	}
	// a second shared lock, by another user: fine; an exclusive one: 423
	_, h = e.want(t, 200, req{method: "LOCK", path: "/files/doc", body: sharedLockBody, user: "carol"})
	t2 := h.Get("Lock-Token")
	e.want(t, 423, req{method: "LOCK", path: "/files/doc", body: lockBody})
	e.want(t, 423, req{method: "PUT", path: "/files/doc", body: "x"})
	e.want(t, 201, req{method: "PUT", path: "/files/doc", body: "v2", hdr: map[string]string{"If": "(" + t1 + ")"}})
	e.want(t, 201, req{method: "PUT", path: "/files/doc", body: "v3", user: "carol", hdr: map[string]string{"If": "(" + t2 + ")"}})
	// survives a restart, shared
	ls2, err := NewLockStore(e.st.Index().DB(), LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l := ls2.byToken[strings.Trim(t2, "<>")]; l == nil || !l.shared {
		t.Fatalf("shared lock after reload: %+v", l)
	}
	e.want(t, 204, req{method: "UNLOCK", path: "/files/doc", hdr: map[string]string{"Lock-Token": t1}})
	e.want(t, 204, req{method: "UNLOCK", path: "/files/doc", user: "carol", hdr: map[string]string{"Lock-Token": t2}})
	e.want(t, 200, req{method: "LOCK", path: "/files/doc", body: lockBody})
	e.want(t, 423, req{method: "LOCK", path: "/files/doc", body: sharedLockBody, user: "carol"})
	e.want(t, 400, req{method: "LOCK", path: "/files/doc", body: sharedLockBody, hdr: map[string]string{"Timeout": "Minutes-3"}})
}

// LOCK and refresh responses state the lock as it is: its scope and its
// capped timeout.
func TestLockResponses(t *testing.T) {
	e := newEnv(t)
	e.want(t, 201, req{method: "PUT", path: "/files/a", body: "a"})
	body, h := e.want(t, 200, req{method: "LOCK", path: "/files/a", body: lockBody, hdr: map[string]string{"Timeout": "Infinite"}})
	if !strings.Contains(body, "<D:timeout>Second-86400</D:timeout>") || !strings.Contains(body, "<D:exclusive/>") || !strings.Contains(body, "<D:lockroot><D:href>/files/a</D:href>") {
		t.Fatalf("LOCK response:\n%s", body)
	}
	tok := h.Get("Lock-Token")
	body, _ = e.want(t, 200, req{method: "LOCK", path: "/files/a", hdr: map[string]string{"Timeout": "Second-60", "If": "(" + tok + ")"}})
	if !strings.Contains(body, "Second-60") || !strings.Contains(body, strings.Trim(tok, "<>")) {
		t.Fatalf("refresh response:\n%s", body)
	}
	e.want(t, 412, req{method: "LOCK", path: "/files/a", hdr: map[string]string{"If": "(<urn:uuid:nope>)"}})
	e.want(t, 400, req{method: "LOCK", path: "/files/a"})
	e.want(t, 204, req{method: "UNLOCK", path: "/files/a", hdr: map[string]string{"Lock-Token": tok}})
	_, h = e.want(t, 200, req{method: "LOCK", path: "/files/a", body: sharedLockBody})
	body, _ = e.want(t, 200, req{method: "LOCK", path: "/files/a", hdr: map[string]string{"If": "<" + e.ts.URL + "/files/a> (" + h.Get("Lock-Token") + ")"}})
	if !strings.Contains(body, "<D:shared/>") {
		t.Fatalf("refresh of a shared lock:\n%s", body)
	}
	// a LOCK on nothing makes an empty file (201); in a read-only view, 403
	e.want(t, 201, req{method: "LOCK", path: "/files/new", body: lockBody})
	e.want(t, 403, req{method: "LOCK", path: "/ro/nothing-named-so", body: lockBody}) // ro shows every object by name
	e.want(t, 409, req{method: "LOCK", path: "/files/no/parent", body: lockBody})
}

// A MOVE of a locked file names the source's lock in a tagged If list
// (davfs2's rename): the destination only has to have its own locks named.
func TestMoveLockedFile(t *testing.T) {
	e := newEnv(t)
	e.want(t, 201, req{method: "PUT", path: "/files/a.txt", body: "a"})
	e.want(t, 201, req{method: "PUT", path: "/files/locked.txt", body: "l"})
	_, h := e.want(t, 200, req{method: "LOCK", path: "/files/a.txt", body: lockBody})
	tok := h.Get("Lock-Token")
	_, h = e.want(t, 200, req{method: "LOCK", path: "/files/locked.txt", body: lockBody})
	tokDst := h.Get("Lock-Token")
	e.want(t, 201, req{method: "MKCOL", path: "/files/sub/"})
	tagged := func(p, tok string) string { return "<" + e.ts.URL + p + "> (" + tok + ")" }

	// no token for the source: refused
	e.want(t, 423, req{method: "MOVE", path: "/files/a.txt", hdr: map[string]string{"Destination": e.ts.URL + "/files/sub/b.txt"}})
	// a locked destination whose token is not given: refused
	e.want(t, 412, req{method: "MOVE", path: "/files/a.txt", hdr: map[string]string{
		"Destination": e.ts.URL + "/files/locked.txt", "If": tagged("/files/a.txt", tok)}})
	// ... and accepted with both tokens
	e.want(t, 204, req{method: "MOVE", path: "/files/a.txt", hdr: map[string]string{
		"Destination": e.ts.URL + "/files/locked.txt", "If": tagged("/files/a.txt", tok) + " " + tagged("/files/locked.txt", tokDst)}})
	e.want(t, 201, req{method: "PUT", path: "/files/c.txt", body: "c"})
	_, h = e.want(t, 200, req{method: "LOCK", path: "/files/c.txt", body: lockBody})
	tok = h.Get("Lock-Token")
	e.want(t, 201, req{method: "MOVE", path: "/files/c.txt", hdr: map[string]string{
		"Destination": e.ts.URL + "/files/sub/renamed.txt", "If": tagged("/files/c.txt", tok)}})
	if body, _ := e.want(t, 200, req{method: "GET", path: "/files/sub/renamed.txt"}); body != "c" {
		t.Fatalf("moved file holds %q", body)
	}
	e.want(t, 404, req{method: "GET", path: "/files/c.txt"})

	// a list tagged with another locked resource does not open this one
	_, h = e.want(t, 200, req{method: "LOCK", path: "/files/sub/renamed.txt", body: lockBody})
	tokRenamed := h.Get("Lock-Token")
	e.want(t, 412, req{method: "PUT", path: "/files/locked.txt", body: "x", hdr: map[string]string{"If": tagged("/files/sub/renamed.txt", tokRenamed)}})
	e.want(t, 201, req{method: "PUT", path: "/files/locked.txt", body: "x", hdr: map[string]string{
		"If": tagged("/files/sub/renamed.txt", tokRenamed) + " " + tagged("/files/locked.txt", tokDst)}})
	// copying a locked file needs no token
	e.want(t, 201, req{method: "COPY", path: "/files/locked.txt", hdr: map[string]string{"Destination": e.ts.URL + "/files/copy.txt"}})
}

func TestSubmittedTokens(t *testing.T) {
	got := submittedTokens(`<http://h/a> (<urn:uuid:1> ["etag<x>"]) (Not <urn:uuid:2> <urn:uuid:3>) <http://h/b> (NOT [e] <urn:uuid:4>)`)
	want := map[string]bool{"urn:uuid:1": true, "urn:uuid:3": true, "urn:uuid:4": true}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k := range want {
		if !got[k] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}
