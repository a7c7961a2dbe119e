package store

import (
	"runtime"
	"syscall"
	"testing"
)

// niceOf returns the nice value of the calling thread.
func niceOf(t *testing.T) int {
	prio, err := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
	if err != nil {
		t.Fatal(err)
	}
	return 20 - prio // the raw syscall answers 20 - nice
}

func TestLowPriorityNicesOnlyItsThread(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := niceOf(t)
	got := make(chan int)
	go func() {
		lowPriority()
		got <- niceOf(t)
	}()
	if n := <-got; n != 19 {
		t.Errorf("nice in the background goroutine = %d, want 19", n)
	}
	if n := niceOf(t); n != before {
		t.Errorf("nice of another thread changed from %d to %d", before, n)
	}
}
