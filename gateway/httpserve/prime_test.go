package httpserve

import "testing"

func TestFirstByte(t *testing.T) {
	for _, c := range []struct {
		h    string
		off  int64
		sent bool
	}{
		{"", 0, true},
		{"bytes=0-", 0, true},
		{"bytes=10-20", 10, true},
		{"bytes=10-20, 30-40", 10, true},
		{"bytes=-5", 95, true},
		{"bytes=-500", 0, true},
		{"bytes=100-", 0, false},
		{"bytes=x-", 0, false},
		{"bytes=-0", 0, false},
		{"bytes=5", 0, false},
		{"items=1-2", 0, true},
	} {
		off, sent := firstByte(c.h, 100)
		if off != c.off || sent != c.sent {
			t.Errorf("%q: got %d %v, want %d %v", c.h, off, sent, c.off, c.sent)
		}
	}
}
