package config

// S3 configures the S3 front-end (gateway/s3).
type S3 struct{}
