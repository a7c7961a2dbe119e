package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/datagate/datagate/cmd/datagate/config"
	"github.com/datagate/datagate/views"
)

func TestNewLoggerFormat(t *testing.T) {
	for _, tc := range []struct {
		format   string
		terminal bool
		json     bool
	}{
		{"auto", true, false},
		{"auto", false, true},
		{"", false, true},
		{"text", false, false},
		{"json", true, true},
	} {
		var b bytes.Buffer
		log := newLogger(config.Log{Level: "info", Format: tc.format}, &b, tc.terminal)
		log.InfoContext(views.WithActor(context.Background(), views.Actor{RequestID: "r-1"}), "hello", "k", "v", "every", time.Minute)
		log.Debug("not at info")
		line := strings.TrimSpace(b.String())
		var m map[string]any
		isJSON := json.Unmarshal([]byte(line), &m) == nil
		if isJSON != tc.json || strings.Contains(line, "\n") {
			t.Errorf("format %q terminal %v: %q", tc.format, tc.terminal, line)
			continue
		}
		// Durations read as in the config, not as nanoseconds.
		if isJSON && (m["msg"] != "hello" || m["request_id"] != "r-1" || m["every"] != "1m0s") || !isJSON && !strings.Contains(line, "msg=hello k=v every=1m0s request_id=r-1") {
			t.Errorf("format %q: %q", tc.format, line)
		}
	}
}
