package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/datagate/datagate/cmd/datagate/config"
	"github.com/datagate/datagate/views"
)

// openAudit points the audit log of set (every write through a Tree, and
// the front-ends' failed logins) where log.audit says: a file of JSON
// lines, appended and private to the server's user (0600: it names users
// and addresses), or "-" for the main log with audit=true. The records
// are not fsynced one by one: a crash may lose the last few, as it may
// lose the main log's. The returned func closes the file.
func openAudit(cfg *config.Config, set *views.Set, log *slog.Logger) (func() error, error) {
	p := cfg.Log.AuditPath(cfg.Data)
	if p == "-" {
		set.SetAudit(log.With("audit", true))
		return func() error { set.SetAudit(nil); return nil }, nil
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	set.SetAudit(slog.New(slog.NewJSONHandler(f, nil)))
	log.Info("audit log", "file", p)
	return func() error { set.SetAudit(nil); return f.Close() }, nil
}
