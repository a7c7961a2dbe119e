package webdav

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A request without credentials whose body trickles in (slowloris: a
// byte now and then of a 100 MB PUT) is answered 401 at once and its
// connection closed; the body was drained, up to 1 GiB with no time
// bound, before the answer, so one anonymous client held a connection
// and a goroutine as long as it liked.
func TestUnauthenticatedBodyIsNotDrained(t *testing.T) {
	e := newEnv(t)
	for _, auth := range []string{"", "Authorization: Basic YWxpY2U6d3Jvbmc=\r\n"} { // none; alice:wrong
		c, err := net.Dial("tcp", strings.TrimPrefix(e.ts.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "PUT /files/slow.bin HTTP/1.1\r\nHost: x\r\n%sContent-Length: 100000000\r\n\r\n", auth)
		stop := make(chan struct{})
		go func() { // the trickle
			tk := time.NewTicker(50 * time.Millisecond)
			defer tk.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tk.C:
					if _, err := c.Write([]byte("x")); err != nil {
						return
					}
				}
			}
		}()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		close(stop)
		if err != nil {
			t.Fatalf("%q: no answer within 5 s while the body trickles: %v", auth, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%q: status %d, want 401", auth, resp.StatusCode)
		}
	}
}
