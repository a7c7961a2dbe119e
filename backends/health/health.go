// Package health remembers which locations (stores, providers, mirror
// hosts) failed recently, so callers try healthy ones first and leave a
// failing one alone for a back-off period before probing it again — the
// way a client treats a primary host with fall-back hosts.
//
// A Tracker knows nothing of what a location is: callers name them with
// any string, report the outcome of each attempt (Success, Failure) and
// ask which to try (Usable, Order). After n consecutive failures a
// location is unhealthy for min(Max, Base·2^(n-1)) with ±25 % jitter;
// once that has passed, one caller at a time may probe it (Usable returns
// true to that caller only) and the probe's outcome decides.
//
// Only faults of the location count (Fault): a missing file or a refused
// request says nothing about whether the location is up.
package health

import (
	"context"
	"errors"
	iofs "io/fs"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/datagate/datagate/backends"
)

// Options tune a Tracker. Zero values take the defaults.
type Options struct {
	Base time.Duration    // back-off after the first failure; default 1s
	Max  time.Duration    // longest back-off; default 5m
	Now  func() time.Time // for tests; default time.Now
}

// Tracker records the health of named locations. Safe for concurrent use.
// The zero value is not usable; call New.
type Tracker struct {
	base, max time.Duration
	now       func() time.Time

	mu sync.Mutex
	m  map[string]*state
}

type state struct {
	fails   int       // consecutive failures
	until   time.Time // unhealthy until then
	probing bool      // a probe is in flight after until passed
}

// New returns a Tracker in which every location starts healthy.
func New(o Options) *Tracker {
	if o.Base <= 0 {
		o.Base = time.Second
	}
	if o.Max < o.Base {
		o.Max = 5 * time.Minute
		if o.Max < o.Base {
			o.Max = o.Base
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Tracker{base: o.Base, max: o.Max, now: o.Now, m: map[string]*state{}}
}

// Healthy reports whether name has not failed since its last success.
func (t *Tracker) Healthy(name string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.m[name]
	return st == nil || st.fails == 0
}

// Usable reports whether the caller may try name now: it is healthy, or
// its back-off has passed and no other probe is in flight (the caller then
// holds the probe and must report Success or Failure).
func (t *Tracker) Usable(name string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.m[name]
	if st == nil || st.fails == 0 {
		return true
	}
	if st.probing || t.now().Before(st.until) {
		return false
	}
	st.probing = true
	return true
}

// Release ends a probe of name that never reached it (the caller gave up
// before asking), leaving its health as it was.
func (t *Tracker) Release(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st := t.m[name]; st != nil {
		st.probing = false
	}
}

// Success marks name healthy.
func (t *Tracker) Success(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, name)
}

// Failure records a failed attempt on name and starts (or lengthens) its
// back-off.
func (t *Tracker) Failure(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.m[name]
	if st == nil {
		st = &state{}
		t.m[name] = st
	}
	st.fails++
	st.probing = false
	d := t.max
	if n := st.fails - 1; n < 40 && t.base<<n > 0 && t.base<<n < t.max {
		d = t.base << n
	}
	// ±25 % so locations that failed together are not probed together.
	d = d*3/4 + rand.N(d/2+1)
	st.until = t.now().Add(d)
}

// Report records the outcome of an attempt: Success when err is nil,
// Failure when err is a Fault, nothing otherwise (the location answered).
// It returns err.
func (t *Tracker) Report(name string, err error) error {
	switch {
	case err == nil:
		t.Success(name)
	case Fault(err):
		t.Failure(name)
	default:
		// The location answered (no such file, refused...): it is up. A
		// probe it held is over.
		t.Success(name)
	}
	return err
}

// Order returns names with the usable ones first, keeping the given order
// within each group; the others follow soonest-to-recover first, so a
// caller that finds every location down can still try them all.
func (t *Tracker) Order(names []string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	out := append([]string(nil), names...)
	down := func(n string) (bool, time.Time) {
		st := t.m[n]
		if st == nil || st.fails == 0 || (!st.probing && !now.Before(st.until)) {
			return false, time.Time{}
		}
		return true, st.until
	}
	sort.SliceStable(out, func(i, j int) bool {
		di, ui := down(out[i])
		dj, uj := down(out[j])
		if di != dj {
			return !di
		}
		return di && ui.Before(uj)
	})
	return out
}

// Fault reports whether err says the location itself is failing
// (unreachable, timing out, broken), as opposed to an answer about the
// request: no such file, permission refused, a bad range, or the
// caller's own cancellation.
func Fault(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, iofs.ErrNotExist), errors.Is(err, iofs.ErrPermission),
		errors.Is(err, iofs.ErrInvalid), errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, backends.ErrNoSpace):
		// A full store cannot take copies; count it, so writers move on.
		return true
	}
	return true
}
