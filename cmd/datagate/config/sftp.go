package config

// SFTP configures the SFTP/SCP front-end (gateway/sftp), listening on
// listen.sftp. Zero values take the defaults shown.
type SFTP struct {
	MaxAuthTries       int      `yaml:"max_auth_tries"`        // per connection; default 6
	LoginGraceTime     Duration `yaml:"login_grace_time"`      // connect to authenticated; default 30s
	IdleTimeout        Duration `yaml:"idle_timeout"`          // a connection with no traffic is closed; default 15m
	MaxSessionsPerUser int      `yaml:"max_sessions_per_user"` // sftp/scp sessions at once; default 128
	MaxHandles         int      `yaml:"max_handles"`           // open files per SFTP session; default 256
	// After penalty_failures failed logins from one address, it is
	// refused for penalty_time. Defaults 10 and 30s.
	PenaltyFailures int      `yaml:"penalty_failures"`
	PenaltyTime     Duration `yaml:"penalty_time"`
	// SSH ciphers offered; default AES-GCM and AES-CTR (see
	// gateway/sftp.DefaultCiphers for why not chacha20-poly1305).
	Ciphers []string `yaml:"ciphers"`
}
