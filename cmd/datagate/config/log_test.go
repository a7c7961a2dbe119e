package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestLogConfig(t *testing.T) {
	cfg := Default()
	if err := cfg.finish(); err != nil {
		t.Fatal(err)
	}
	if cfg.Log.Format != "auto" || cfg.Log.Level != "info" {
		t.Fatalf("defaults: %+v", cfg.Log)
	}
	if got := cfg.Log.AuditPath("/srv/dg"); got != filepath.Join("/srv/dg", "audit.log") {
		t.Fatalf("default audit path %q", got)
	}
	for _, tc := range []struct {
		yaml, err, audit string
	}{
		{yaml: "log: {format: json, audit: /var/log/dg-audit.log}", audit: "/var/log/dg-audit.log"},
		{yaml: "log: {format: text, audit: '-'}", audit: "-"},
		{yaml: "log: {format: auto}", audit: "/d/audit.log"},
		{yaml: "log: {format: xml}", err: `log.format "xml": want text, json or auto`},
		{yaml: "log: {level: loud}", err: `log.level "loud"`},
		{yaml: "log: {audit_file: x}", err: `unknown key "audit_file"`},
	} {
		cfg := Default()
		err := Parse(strings.NewReader(tc.yaml), cfg)
		if err == nil {
			err = cfg.finish()
		}
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.yaml, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.yaml, err)
			continue
		}
		if got := cfg.Log.AuditPath("/d"); got != tc.audit {
			t.Errorf("%s: audit %q, want %q", tc.yaml, got, tc.audit)
		}
	}
}
