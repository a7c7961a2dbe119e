package main

import (
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Connection limits of the network listeners (WebDAV, S3, SFTP, admin):
// without them one client, logged in or not, could hold enough idle
// connections to use up the process's descriptors and refuse everyone
// (20,000 keep-alive connections to the WebDAV port did). A connection
// beyond a limit is closed as soon as it is accepted, so that it does not
// wait in the kernel's queue ahead of others.
const (
	maxConns        = 2048 // per listener
	maxConnsPerAddr = 256  // per listener and remote address
)

// limitListener accepts at most total connections at once, at most
// perAddr of them from one remote address.
type limitListener struct {
	net.Listener
	name           string
	total, perAddr int
	log            *slog.Logger

	mu       sync.Mutex
	open     int
	byAddr   map[string]int
	warnedAt time.Time
}

func limitListen(l net.Listener, name string, total, perAddr int, log *slog.Logger) net.Listener {
	return &limitListener{Listener: l, name: name, total: total, perAddr: perAddr, log: log, byAddr: map[string]int{}}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		l.mu.Lock()
		full, mine := l.open >= l.total, l.byAddr[host] >= l.perAddr
		if full || mine {
			warn := time.Since(l.warnedAt) > time.Minute // one line a minute, not one a connection
			if warn {
				l.warnedAt = time.Now()
			}
			open, fromAddr := l.open, l.byAddr[host]
			l.mu.Unlock()
			c.Close()
			if warn {
				l.log.Warn("connection refused: too many open", "listener", l.name, "addr", host,
					"open", open, "open_from_addr", fromAddr, "max", l.total, "max_per_addr", l.perAddr)
			}
			continue
		}
		l.open++
		l.byAddr[host]++
		l.mu.Unlock()
		return &limitConn{Conn: c, l: l, host: host}, nil
	}
}

func (l *limitListener) release(host string) {
	l.mu.Lock()
	l.open--
	if l.byAddr[host]--; l.byAddr[host] <= 0 {
		delete(l.byAddr, host)
	}
	l.mu.Unlock()
}

// limitConn counts its connection until closed.
type limitConn struct {
	net.Conn
	l    *limitListener
	host string
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.host) })
	return err
}

// ReadFrom keeps the connection's own (sendfile for a file): net/http
// looks for it on the connection it was given.
func (c *limitConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}
