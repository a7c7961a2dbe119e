package fuse

import (
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/datagate/datagate/views"
	"github.com/datagate/datagate/views/audittest"
)

// TestAudit: writes through the mount are recorded with the user, the
// mount's id (also on its log lines) and the pid of the process that
// made them.
func TestAudit(t *testing.T) {
	logs, audit := &audittest.Log{}, &audittest.Log{}
	e := newEnv(t, map[string]views.Rights{"by-date": views.All, "by-type": views.Read}, Options{
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	e.set.SetAudit(audit.JSON())
	if err := os.MkdirAll(e.path("by-date/2026-11-22/fc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.path("by-date/2026-11-22/fc/a.grib"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(e.path("by-date/2026-11-22/fc/a.grib"), e.path("by-date/2026-11-22/fc/b.grib")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(e.path("by-date/2026-11-22/fc/b.grib")); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`mount_id=([0-9a-f]+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no mount id on the log lines:\n%s", logs)
	}
	var a string
	for deadline := time.Now().Add(10 * time.Second); ; {
		a = audit.String()
		if strings.Contains(a, `"op":"remove"`) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{
		`"op":"create","user":"alice","view":"by-date","path":"/by-date/2026-11-22/fc/a.grib"`,
		`"op":"rename","user":"alice","view":"by-date","path":"/by-date/2026-11-22/fc/a.grib","to":"/by-date/2026-11-22/fc/b.grib"`,
		`"op":"remove","user":"alice","view":"by-date","path":"/by-date/2026-11-22/fc/b.grib"`,
		`"frontend":"fuse","request_id":"` + m[1] + `"`,
	} {
		if !strings.Contains(a, want) {
			t.Errorf("audit lacks %s:\n%s", want, a)
		}
	}
	if !regexp.MustCompile(`"op":"create".*"remote":"pid \d+"`).MatchString(a) {
		t.Errorf("the create does not name the writer's pid:\n%s", a)
	}
}
