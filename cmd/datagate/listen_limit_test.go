package main

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// A listener's connections beyond its limits are closed at once; closing
// one makes room again.
func TestLimitListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := limitListen(ln, "test", 3, 2, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer l.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// closed tells whether the server closed c (EOF within a moment).
	closed := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		return err == io.EOF
	}
	a, b := dial(), dial()
	<-accepted
	srvB := <-accepted
	third := dial() // a third from the same address: over perAddr
	if !closed(third) {
		t.Fatal("a connection over the per-address limit was kept")
	}
	if closed(a) || closed(b) {
		t.Fatal("a connection within the limits was closed")
	}
	srvB.Close() // room again
	c := dial()
	select {
	case <-accepted:
	case <-time.After(2 * time.Second):
		t.Fatal("no room after a close")
	}
	if closed(c) {
		t.Fatal("a connection within the limits was closed after a close")
	}
}
