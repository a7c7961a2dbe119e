package sftp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	pkgsftp "github.com/pkg/sftp"

	"github.com/datagate/datagate/fs"
)

// pkg/sftp's request server neither advertises fsync@openssh.com nor
// passes it to handlers (it answers "unsupported"), and does not offer
// limits@openssh.com. Rather than fork it, packetShim sits between the
// SSH channel and the request server and watches the SFTP packets go by:
//
//   - the VERSION reply gains "fsync@openssh.com" and "limits@openssh.com"
//     and loses "hardlink@openssh.com" (pkg/sftp offers it; a Tree has no
//     links);
//   - OPEN requests, their HANDLE replies and CLOSE requests give it the
//     open file handles, and for each write handle its upload;
//   - it answers fsync@openssh.com itself: it waits until every request
//     before it has been answered in full (so the writes the client sent
//     first have reached the spool, and no reply is half written), pushes
//     the upload's spool as a new version, and writes the STATUS reply.
//     The request server reads nothing meanwhile, so nothing overtakes
//     the fsync either; the handle stays open;
//   - it answers limits@openssh.com the same way, so that OpenSSH's
//     client reads and writes in 255 KiB requests instead of 32 KiB.
//
// Everything else passes through untouched: a packet's header is looked
// at, its body streamed, nothing allocated (reads and writes are the data
// path). Packets are framed as uint32 length, type byte, then (for all
// but INIT and VERSION, whose next field is the version) a uint32 id.
//
// Which upload a HANDLE reply belongs to: the request server runs OPENs
// one at a time, in order, and replies in request order, so the write
// opens that succeed (handlers.opened, in that order) and the HANDLE
// replies to write OPENs come in the same order.

const (
	fxpInit     = 1
	fxpVersion  = 2
	fxpOpen     = 3
	fxpClose    = 4
	fxpStatus   = 101
	fxpHandle   = 102
	fxpExtended = 200

	fxpExtendedReply = 201

	// Open flags that make pkg/sftp open through FilePut (write, append,
	// create, truncate): our openUpload.
	fxfWriting = 0x02 | 0x04 | 0x08 | 0x10

	// pkg/sftp's own limit on a packet; a longer one ends the session
	// there, so the shim passes it through without holding it.
	maxHeldPacket = 256 << 10

	fsyncExt  = "fsync@openssh.com"
	limitsExt = "limits@openssh.com"

	// What limits@openssh.com announces. pkg/sftp takes packets of up to
	// 256 KiB (its maxMsgLength) and, told by WithRSMaxTxPacket, answers
	// reads of up to maxReadLength; OpenSSH's sftp-server says the same.
	maxPacketLength = 256 << 10
	maxReadLength   = maxPacketLength - 1024
	maxWriteLength  = maxPacketLength - 1024
)

var errShimClosed = errors.New("sftp: session closed")

type packetShim struct {
	// immutable after newPacketShim
	ch        io.ReadWriteCloser
	r         *bufio.Reader
	h         *handlers
	done      chan struct{} // closed by Close
	closeOnce sync.Once
	answered  chan struct{} // cap 1: pending reached 0 while waiting

	// Read side: only the request server's receive loop calls Read.
	hdr    [9]byte // length, type, id of the packet being passed
	in     []byte  // bytes to hand out before reading on: a header or a held packet
	inLeft int64   // body bytes of the current packet still to stream from r
	held   []byte  // a packet read whole (OPEN, CLOSE, EXTENDED); reused
	raw    bool    // framing lost (a packet shorter than its header): pass all

	pending atomic.Int64 // requests passed on and not yet answered in full
	waiting atomic.Bool  // an fsync waits for pending to reach 0
	nOpens  atomic.Int64 // len(opens), read without mu

	wmu sync.Mutex
	// guarded by wmu (pkg/sftp writes one packet at a time, in one or two
	// Writes; the fsync reply goes between packets)
	outLeft int64   // bytes of the current reply still to pass
	part    [9]byte // the first bytes of a reply written in pieces
	partN   int
	editing bool   // a reply is held whole in edit, to be edited
	edit    []byte // reused
	editLen int

	mu sync.Mutex
	// guarded by mu
	opens   map[uint32]bool    // OPEN ids awaiting their reply: writing?
	handles map[string]*upload // open file handles; nil for reading
}

func newPacketShim(ch io.ReadWriteCloser, h *handlers) *packetShim {
	return &packetShim{
		ch: ch, r: bufio.NewReaderSize(ch, 32<<10), h: h,
		done: make(chan struct{}), answered: make(chan struct{}, 1),
		opens: map[uint32]bool{}, handles: map[string]*upload{},
	}
}

func (s *packetShim) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	return s.ch.Close()
}

// Read hands the request server the client's packets, less the fsyncs.
func (s *packetShim) Read(p []byte) (int, error) {
	for {
		if len(s.in) > 0 {
			n := copy(p, s.in)
			s.in = s.in[n:]
			return n, nil
		}
		if s.inLeft > 0 {
			if int64(len(p)) > s.inLeft {
				p = p[:s.inLeft]
			}
			n, err := s.r.Read(p)
			s.inLeft -= int64(n)
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
		if s.raw {
			return s.r.Read(p)
		}
		if err := s.next(); err != nil {
			return 0, err
		}
	}
}

// next reads the next packet's header and decides: stream it, hold it
// whole to look inside, or answer it here (fsync).
func (s *packetShim) next() error {
	if _, err := io.ReadFull(s.r, s.hdr[:]); err != nil {
		return err // io.EOF between packets: the client is done
	}
	size := 4 + int64(binary.BigEndian.Uint32(s.hdr[:4]))
	s.in = s.hdr[:]
	if size < int64(len(s.hdr)) {
		// Too short to be a request: the request server will give up on
		// it; from here on bytes pass unread.
		s.raw = true
		return nil
	}
	typ := s.hdr[4]
	if (typ == fxpOpen || typ == fxpClose || typ == fxpExtended) && size <= maxHeldPacket {
		if int64(cap(s.held)) < size {
			s.held = make([]byte, size)
		}
		pkt := s.held[:size]
		copy(pkt, s.hdr[:])
		if _, err := io.ReadFull(s.r, pkt[len(s.hdr):]); err != nil {
			return io.ErrUnexpectedEOF
		}
		if (typ == fxpExtended && s.extended(pkt)) || (typ == fxpOpen && s.openOfDir(pkt)) {
			s.in = nil
			return nil // answered here: read on
		}
		s.note(typ, pkt)
		s.in = pkt
	} else {
		s.inLeft = size - int64(len(s.hdr))
	}
	s.pending.Add(1)
	return nil
}

// note learns handles from OPEN and CLOSE requests.
func (s *packetShim) note(typ byte, pkt []byte) {
	id := binary.BigEndian.Uint32(pkt[5:9])
	switch typ {
	case fxpOpen:
		_, rest, ok := sshString(pkt[9:])
		if !ok || len(rest) < 4 {
			return // the request server will reject it
		}
		writing := binary.BigEndian.Uint32(rest)&fxfWriting != 0
		s.mu.Lock()
		if _, dup := s.opens[id]; !dup {
			s.nOpens.Add(1)
		}
		s.opens[id] = writing
		s.mu.Unlock()
	case fxpClose:
		if handle, _, ok := sshString(pkt[9:]); ok {
			s.mu.Lock()
			delete(s.handles, string(handle))
			s.mu.Unlock()
		}
	}
}

// extended answers fsync@openssh.com and limits@openssh.com; false for
// any other extended request, which passes on.
func (s *packetShim) extended(pkt []byte) bool {
	name, rest, ok := sshString(pkt[9:])
	if !ok || (string(name) != fsyncExt && string(name) != limitsExt) {
		return false
	}
	id := binary.BigEndian.Uint32(pkt[5:9])
	// Replies go between the request server's, after those it owes.
	if s.quiesce() != nil {
		return true // the session is over: no reply to write
	}
	var reply []byte
	if string(name) == limitsExt {
		reply = s.limitsReply(id)
	} else {
		reply = statusPacket(id, s.fsync(rest))
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.ch.Write(reply) // an error here ends the session anyway
	return true
}

// openOfDir answers an OPEN for writing of a path ending in "/" with the
// failure OpenSSH's server gives (open(2) says EISDIR): the request
// server cleans the "/" away before the handlers see the path, and the
// upload became a file named as the directory the user meant ("scp f
// host:newdir/" made a file newdir). false for any other OPEN.
func (s *packetShim) openOfDir(pkt []byte) bool {
	p, rest, ok := sshString(pkt[9:])
	if !ok || len(rest) < 4 || binary.BigEndian.Uint32(rest)&fxfWriting == 0 ||
		len(p) < 2 || p[len(p)-1] != '/' {
		return false
	}
	id := binary.BigEndian.Uint32(pkt[5:9])
	if s.quiesce() != nil {
		return true // the session is over: no reply to write
	}
	reply := statusPacket(id, fs.E(fs.IsDir, "open", string(p), nil))
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.ch.Write(reply) // an error here ends the session anyway
	return true
}

// fsync pushes the upload of the handle in req, if it is one.
func (s *packetShim) fsync(req []byte) error {
	handle, _, ok := sshString(req)
	if !ok {
		return failure(pkgsftp.ErrSSHFxBadMessage, "fsync: no handle")
	}
	s.mu.Lock()
	u, open := s.handles[string(handle)]
	s.mu.Unlock()
	switch {
	case !open:
		return failure(pkgsftp.ErrSSHFxFailure, "fsync: no such open file")
	case u == nil:
		return nil // a read handle has nothing to make durable
	}
	return u.sync()
}

// limitsReply answers limits@openssh.com: OpenSSH's client then reads
// and writes maxReadLength bytes per request (32 KiB otherwise), so a
// GiB costs 8 times fewer requests, and keeps min(64, handles) in flight.
func (s *packetShim) limitsReply(id uint32) []byte {
	b := make([]byte, 4, 4+1+4+4*8)
	b = append(b, fxpExtendedReply)
	b = binary.BigEndian.AppendUint32(b, id)
	b = binary.BigEndian.AppendUint64(b, maxPacketLength)
	b = binary.BigEndian.AppendUint64(b, maxReadLength)
	b = binary.BigEndian.AppendUint64(b, maxWriteLength)
	b = binary.BigEndian.AppendUint64(b, uint64(s.h.s.opts.MaxHandles))
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// quiesce waits until every request passed on has been answered in full.
func (s *packetShim) quiesce() error {
	if s.pending.Load() <= 0 {
		return nil
	}
	s.waiting.Store(true)
	defer s.waiting.Store(false)
	for s.pending.Load() > 0 {
		select {
		case <-s.answered:
		case <-s.done:
			return errShimClosed
		}
	}
	return nil
}

// replied counts one reply written in full.
func (s *packetShim) replied() {
	if s.pending.Add(-1) <= 0 && s.waiting.Load() {
		select {
		case s.answered <- struct{}{}:
		default:
		}
	}
}

// Write passes the request server's replies to the client, editing
// VERSION and learning handles from HANDLE replies.
func (s *packetShim) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	total := len(p)
	for len(p) > 0 {
		switch {
		case s.outLeft > 0:
			k := min(int64(len(p)), s.outLeft)
			if _, err := s.ch.Write(p[:k]); err != nil {
				return total - len(p), err
			}
			p = p[k:]
			if s.outLeft -= k; s.outLeft == 0 {
				s.replied()
			}
		case s.editing:
			k := copy(s.edit[len(s.edit):s.editLen], p)
			s.edit = s.edit[:len(s.edit)+k]
			p = p[k:]
			if len(s.edit) == s.editLen {
				if err := s.sendEdited(); err != nil {
					return total - len(p), err
				}
			}
		case s.partN == 0 && len(p) >= len(s.part):
			// A reply starts, its header in p (pkg/sftp writes a
			// packet's fixed part in one Write): nothing is copied.
			consumed, err := s.startReply(p[:len(s.part)], false)
			if err != nil {
				return total - len(p), err
			}
			if consumed {
				p = p[len(s.part):]
			}
		default:
			// A reply starts in pieces: gather its header first.
			k := copy(s.part[s.partN:], p)
			s.partN += k
			p = p[k:]
			if s.partN == len(s.part) {
				s.partN = 0
				if _, err := s.startReply(s.part[:], true); err != nil {
					return total - len(p), err
				}
			}
		}
	}
	return total, nil
}

// startReply looks at a reply's first 9 bytes (length, type, id). It
// holds the replies to edit; the others pass on, head included if
// mustWrite (it was gathered) or else left to the caller (consumed false).
func (s *packetShim) startReply(head []byte, mustWrite bool) (consumed bool, err error) {
	size := 4 + int64(binary.BigEndian.Uint32(head[:4]))
	if size < int64(len(head)) {
		return false, errors.New("sftp: reply shorter than its header")
	}
	switch head[4] {
	case fxpVersion, fxpHandle:
		if size <= maxHeldPacket {
			s.editing, s.editLen = true, int(size)
			if cap(s.edit) < s.editLen {
				s.edit = make([]byte, 0, s.editLen)
			}
			s.edit = append(s.edit[:0], head...)
			if len(s.edit) == s.editLen {
				return true, s.sendEdited()
			}
			return true, nil
		}
	case fxpStatus:
		if s.nOpens.Load() > 0 {
			s.forgetOpen(binary.BigEndian.Uint32(head[5:9])) // a failed OPEN
		}
	}
	s.outLeft = size
	if !mustWrite {
		return false, nil
	}
	if _, err := s.ch.Write(head); err != nil {
		return true, err
	}
	if s.outLeft -= int64(len(head)); s.outLeft == 0 {
		s.replied()
	}
	return true, nil
}

func (s *packetShim) forgetOpen(id uint32) (writing, was bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	writing, was = s.opens[id]
	if was {
		delete(s.opens, id)
		s.nOpens.Add(-1)
	}
	return writing, was
}

// sendEdited writes the held reply, edited.
func (s *packetShim) sendEdited() error {
	s.editing = false
	pkt := s.edit
	switch pkt[4] {
	case fxpVersion:
		pkt = editVersion(pkt)
	case fxpHandle:
		id := binary.BigEndian.Uint32(pkt[5:9])
		if handle, _, ok := sshString(pkt[9:]); ok {
			if writing, was := s.forgetOpen(id); was {
				var u *upload
				if writing {
					u = s.h.claimOpened()
				}
				s.mu.Lock()
				s.handles[string(handle)] = u
				s.mu.Unlock()
			}
		}
	}
	_, err := s.ch.Write(pkt)
	s.replied()
	return err
}

// editVersion rewrites the extension pairs of a VERSION reply: without
// hardlink@openssh.com, with fsync@openssh.com and limits@openssh.com.
func editVersion(pkt []byte) []byte {
	out := append([]byte(nil), pkt[:9]...) // length, type, version
	rest := pkt[9:]
	for len(rest) > 0 {
		name, r, ok := sshString(rest)
		if !ok {
			break
		}
		data, r, ok := sshString(r)
		if !ok {
			break
		}
		rest = r
		switch string(name) {
		case "hardlink@openssh.com", fsyncExt, limitsExt:
			continue
		}
		out = appendSSHString(appendSSHString(out, string(name)), string(data))
	}
	out = appendSSHString(appendSSHString(out, fsyncExt), "1")
	out = appendSSHString(appendSSHString(out, limitsExt), "1")
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out
}

// statusPacket is an SSH_FXP_STATUS reply for err (nil: OK).
func statusPacket(id uint32, err error) []byte {
	code, msg := uint32(0), "OK"
	if err != nil {
		code, msg = statusNumber(err), toStatus(err).Error()
	}
	b := make([]byte, 4, 32+len(msg))
	b = append(b, fxpStatus)
	b = binary.BigEndian.AppendUint32(b, id)
	b = binary.BigEndian.AppendUint32(b, code)
	b = appendSSHString(b, msg)
	b = appendSSHString(b, "en")
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// statusNumber is the wire code of err's status (see status.go).
func statusNumber(err error) uint32 {
	codes := []struct {
		err  error
		code uint32
	}{
		{pkgsftp.ErrSSHFxEOF, 1}, {pkgsftp.ErrSSHFxNoSuchFile, 2}, {pkgsftp.ErrSSHFxPermissionDenied, 3},
		{pkgsftp.ErrSSHFxFailure, 4}, {pkgsftp.ErrSSHFxBadMessage, 5}, {pkgsftp.ErrSSHFxOpUnsupported, 8},
	}
	for _, c := range codes {
		if errors.Is(toStatus(err), c.err) {
			return c.code
		}
	}
	return 4
}

// sshString splits an SSH string (uint32 length, bytes) off b.
func sshString(b []byte) (s, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, b, false
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, b, false
	}
	return b[4 : 4+n], b[4+n:], true
}

func appendSSHString(b []byte, s string) []byte {
	return append(binary.BigEndian.AppendUint32(b, uint32(len(s))), s...)
}
