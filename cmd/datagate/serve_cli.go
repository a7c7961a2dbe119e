package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/datagate/datagate/cmd/datagate/config"
	"github.com/datagate/datagate/fs"
)

// Operator commands that need the whole app (views, users) rather than the
// object API run inside the server when one owns the data directory: the
// CLI sends its arguments over the socket, the server runs the same cobra
// command against its own app and returns the output. Only the commands
// listed here may be run that way.
var servedCommands = map[string]bool{"ls": true, "views": true}

type runRequest struct {
	Args []string `json:"args"`
}

// cliHandler serves POST /api/v1/run on the socket.
func cliHandler(a *app, cfg *config.Config, env *serveEnv) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req runRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || len(req.Args) == 0 || !servedCommands[req.Args[0]] {
			http.Error(w, "not a command the server runs", http.StatusBadRequest)
			return
		}
		root := newRootFor(&globals{served: a, servedCfg: env.config(), servedLog: env.log}) // as reloaded (reload.go)
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(io.Discard)
		root.SetArgs(req.Args)
		err := root.ExecuteContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		res := map[string]any{"output": out.String()}
		if err != nil {
			res["error"], res["exit"] = err.Error(), exitCode(err)
		}
		json.NewEncoder(w).Encode(res)
	})
}

// runOnServer runs the command on the server owning the data directory, if
// one answers on its socket; done is false when there is none.
func runOnServer(cmd *cobra.Command, cfg *config.Config) (done bool, err error) {
	sock := socketPath(cfg)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "unix", sock)
	}}}
	defer hc.CloseIdleConnections()
	args := append([]string{cmd.Name()}, cmdArgs(cmd)...)
	body, _ := json.Marshal(runRequest{Args: args})
	req, _ := http.NewRequestWithContext(cmd.Context(), "POST", "http://datagate/api/v1/run", bytes.NewReader(body))
	resp, err := hc.Do(req)
	if err != nil {
		return false, nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return true, fmt.Errorf("server: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	var res struct {
		Output string `json:"output"`
		Error  string `json:"error"`
		Exit   int    `json:"exit"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return true, fmt.Errorf("server answer: %w", err)
	}
	io.WriteString(cmd.OutOrStdout(), res.Output)
	if res.Error != "" {
		kind := fs.Other
		switch res.Exit {
		case 2:
			kind = fs.Invalid
		case 3:
			kind = fs.NotExist
		}
		return true, &fs.Error{Kind: kind, Err: fmt.Errorf("%s", res.Error)}
	}
	return true, nil
}

// cmdArgs returns the command's own arguments and flags as typed: what
// follows the command name on the command line.
func cmdArgs(cmd *cobra.Command) []string {
	for i, a := range os.Args {
		if a == cmd.Name() {
			return os.Args[i+1:]
		}
	}
	return nil
}
