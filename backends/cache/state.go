package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/datagate/datagate/backends"
)

// The sidecar: magic, size, chunk size, flags, bitmap words, CRC-32C of all
// that. Little endian. Small: 32 KiB of bitmap for 1 TiB at 4 MiB chunks.
const (
	stateMagic      = "DGCACHE1"
	stateHeaderLen  = len(stateMagic) + 8 + 8 + 4
	flagComplete    = 1
	dataSuffix      = ".data"
	stateSuffix     = ".state"
	stateTmpSuffix  = ".state.tmp"
	maxKeyLen       = 128
	defaultChunk    = 4 << 20
	copyBufSize     = 1 << 20   // fetch copies and digest reads
	minWrite        = 64 << 10  // a fetch reads at least this much (or the rest) before writing
	writeAlign      = 256 << 10 // fetches write up to multiples of this (see copyRun)
	persistInterval = time.Second
	noWake          = math.MaxInt64 // fetch.wake when no reader waits
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// state is the persisted part of an entry.
type state struct {
	size      int64
	chunkSize int64
	complete  bool
	bits      []uint64
}

func chunkCount(size, chunkSize int64) int64 { return (size + chunkSize - 1) / chunkSize }

func bitWords(n int64) int64 { return (n + 63) / 64 }

func (s *state) marshal() []byte {
	b := make([]byte, 0, stateHeaderLen+8*len(s.bits)+4)
	b = append(b, stateMagic...)
	b = binary.LittleEndian.AppendUint64(b, uint64(s.size))
	b = binary.LittleEndian.AppendUint64(b, uint64(s.chunkSize))
	var flags uint32
	if s.complete {
		flags |= flagComplete
	}
	b = binary.LittleEndian.AppendUint32(b, flags)
	for _, w := range s.bits {
		b = binary.LittleEndian.AppendUint64(b, w)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

var errBadState = errors.New("corrupt cache state")

func unmarshalState(b []byte) (state, error) {
	var s state
	if len(b) < stateHeaderLen+4 || string(b[:len(stateMagic)]) != stateMagic {
		return s, errBadState
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return s, errBadState
	}
	p := body[len(stateMagic):]
	s.size = int64(binary.LittleEndian.Uint64(p))
	s.chunkSize = int64(binary.LittleEndian.Uint64(p[8:]))
	s.complete = binary.LittleEndian.Uint32(p[16:])&flagComplete != 0
	p = p[20:]
	if s.size < 0 || s.chunkSize <= 0 || int64(len(p)) != 8*bitWords(chunkCount(s.size, s.chunkSize)) {
		return s, errBadState
	}
	s.bits = make([]uint64, len(p)/8)
	for i := range s.bits {
		s.bits[i] = binary.LittleEndian.Uint64(p[8*i:])
	}
	return s, nil
}

// readState reads the sidecar at path. A missing sidecar is (state{}, false, nil).
func readState(path string) (state, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return state{}, false, nil
	}
	if err != nil {
		return state{}, false, diskErr("read state", path, err)
	}
	s, err := unmarshalState(b)
	if err != nil {
		return state{}, false, fmt.Errorf("cache: %s: %w", path, err)
	}
	return s, true, nil
}

// writeState replaces the sidecar atomically. It is not fsynced: the CRC
// turns a torn sidecar after a crash into "no state", which only costs
// refetching, while the data it claims was synced before it was written.
func writeState(path string, s *state) error {
	tmp := path[:len(path)-len(stateSuffix)] + stateTmpSuffix
	if err := os.WriteFile(tmp, s.marshal(), 0o600); err != nil {
		os.Remove(tmp)
		return diskErr("write state", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return diskErr("write state", path, err)
	}
	return nil
}

// verifiedMtime is the modification time a data file gets once its entry
// is verified. Any write sets the current time instead, so an Open that
// finds a complete entry whose file lost it knows the file may have been
// changed behind the cache's back (a tool, a restore, a stray write) and
// verifies it again before serving it. Entries completed before the stamp
// existed are verified once on their next Open. Damage that leaves the
// mtime alone (bit rot) is for scrubbing to find.
var verifiedMtime = time.Unix(1, 0)

// stamp gives a verified data file its verifiedMtime; failing only costs
// a verification at the next Open.
// Through the descriptor: the path may already be a newer entry's.
func stamp(f *os.File, key string, log *slog.Logger) {
	rc, err := f.SyscallConn()
	if err == nil {
		tv := syscall.NsecToTimeval(verifiedMtime.UnixNano())
		cerr := rc.Control(func(fd uintptr) { err = syscall.Futimes(int(fd), []syscall.Timeval{tv, tv}) })
		err = errors.Join(cerr, err)
	}
	if err != nil {
		log.Warn("cache: stamping a verified entry", "key", key, "err", err)
	}
}

// stamped reports whether f still has the mtime its verification gave it.
func stamped(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.ModTime().Equal(verifiedMtime)
}

// validKey reports whether key is [A-Za-z0-9._-]{1,128}: safe as a file
// name component, so no escaping is needed and the walk can recover it.
func validKey(key string) bool {
	if len(key) == 0 || len(key) > maxKeyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// paths returns the data and state file paths of key: a 2-level fan-out by
// FNV-1a of the key keeps directories small with millions of entries.
func (c *Cache) paths(key string) (data, st string) {
	h := fnv.New32a()
	h.Write([]byte(key))
	s := h.Sum32()
	dir := filepath.Join(c.dir, fmt.Sprintf("%02x", s>>24), fmt.Sprintf("%02x", (s>>16)&0xff))
	return filepath.Join(dir, key+dataSuffix), filepath.Join(dir, key+stateSuffix)
}

// diskErr wraps an error of the cache's own disk, classifying a full disk
// as backends.ErrNoSpace.
// isNoSpace reports whether err is a full disk or quota.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func diskErr(op, path string, err error) error {
	if isNoSpace(err) {
		return fmt.Errorf("cache: %s %s: %w: %w", op, path, backends.ErrNoSpace, err)
	}
	return fmt.Errorf("cache: %s %s: %w", op, path, err)
}

// removeFiles unlinks an entry's files, state first so that a crash in
// between leaves an orphan data file (deleted at start) rather than a
// sidecar describing a missing file.
func removeFiles(dataPath, statePath string) error {
	var errs []error
	for _, p := range []string{statePath, dataPath} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
