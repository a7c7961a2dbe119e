package store

import (
	"runtime"
	"syscall"
)

// lowPriority runs the rest of the calling goroutine on a thread of its
// own at nice 19, so background hashing takes the CPU only when reads and
// writes leave it idle. The goroutine must exit without unlocking the
// thread: the runtime then ends the thread, niceness and all, rather than
// handing it to other goroutines.
func lowPriority() {
	runtime.LockOSThread()
	syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), 19)
}
