package fuse

import (
	"context"
	"strconv"

	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/datagate/datagate/views"
)

// mountTree is t whose writes are recorded in the audit log as made
// through mount id by the process that asked (the kernel names its pid
// in each request; a push on a late release may have none). An id per
// operation would cost more than the audit is worth: the mount and the
// pid tell who did it.
func mountTree(t *views.Tree, id string) *views.Tree {
	user := t.User()
	return t.WithActor(func(ctx context.Context) views.Actor {
		a := views.Actor{User: user, Frontend: "fuse", RequestID: id}
		if c, ok := gofuse.FromContext(ctx); ok && c.Pid != 0 {
			a.Remote = "pid " + strconv.FormatUint(uint64(c.Pid), 10)
		}
		return a
	})
}
