package config

// SFTP configures the SFTP/SCP front-end (gateway/sftp).
type SFTP struct{}
