package main

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/datagate/datagate/fs"
	"github.com/datagate/datagate/gateway/admin"
)

// waitJob polls until cond holds on the job's status.
func waitJob(t *testing.T, j *loopJob, what string, cond func(st admin.JobStatus) bool) admin.JobStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := j.Status()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: status %+v", what, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLoopJob(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	release := make(chan struct{})
	var calls atomic.Int64
	j := newLoopJob("gc", "test", time.Hour, func(ctx context.Context) (int64, error) {
		n := calls.Add(1)
		if n == 2 {
			<-release // the second run blocks until released
		}
		if n == 3 {
			return 0, errors.New("disk on fire")
		}
		return n * 10, nil
	})
	go j.loop(ctx)
	// The first run is at once.
	st := waitJob(t, j, "first run", func(st admin.JobStatus) bool { return st.Runs == 1 && !st.Running })
	if st.LastCount != 10 || st.LastErr != "" || st.LastEnd.Before(st.LastStart) || time.Until(st.NextRun) < 59*time.Minute {
		t.Fatalf("after the first run: %+v", st)
	}
	// A trigger runs it now, not in an hour.
	j.Trigger(ctx)
	waitJob(t, j, "triggered run", func(st admin.JobStatus) bool { return st.Running })
	// Triggers while it runs coalesce into one more run.
	for range 5 {
		if err := j.Trigger(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st := j.Status(); !st.Pending {
		t.Fatalf("trigger during a run not pending: %+v", st)
	}
	close(release)
	st = waitJob(t, j, "the run after the triggers", func(st admin.JobStatus) bool { return st.Runs == 3 && !st.Running })
	if st.LastErr != "disk on fire" || calls.Load() != 3 || st.Pending {
		t.Fatalf("after three runs: %+v, %d calls", st, calls.Load())
	}
	time.Sleep(50 * time.Millisecond)
	if calls.Load() != 3 {
		t.Fatalf("coalesced triggers ran %d times", calls.Load())
	}
	cancel()
	<-j.done
	if err := j.Trigger(context.Background()); fs.KindOf(err) != fs.Unavailable {
		t.Fatalf("trigger of a stopped job: %v", err)
	}
}

// Readiness fails until the front-ends have started, and once the store
// has closed; the admin users follow a reload of the configuration.
func TestAdminReadinessAndUsers(t *testing.T) {
	r := newReloadEnv(t, "data: $DIR/var\nusers:\n  alice: {s3_keys: [{id: AKALICE, secret: s3cret-s3cret}], views: {}}\n")
	env := r.env
	env.admin = newAdminState()
	check := func() map[string]string {
		out := map[string]string{}
		for _, c := range readiness(env) {
			if err := c.Check(context.Background()); err != nil {
				out[c.Name] = err.Error()
			}
		}
		return out
	}
	if got := check(); len(got) != 1 || got["frontends"] == "" {
		t.Fatalf("before the front-ends: %v", got)
	}
	env.admin.started.Store(true)
	if got := check(); len(got) != 0 {
		t.Fatalf("started: %v", got)
	}
	us := userInfos(env.config())
	if len(us) != 1 || us[0].Name != "alice" || strings.Join(us[0].Credentials, ",") != "s3_key" {
		t.Fatalf("users: %+v", us)
	}
	env.app.store.Close()
	if got := check(); got["store"] == "" || got["index"] == "" {
		t.Fatalf("after the store closed: %v", got)
	}
}
