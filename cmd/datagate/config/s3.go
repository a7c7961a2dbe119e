package config

// S3 configures the S3 front-end (gateway/s3); its address is listen.s3.
type S3 struct {
	// Region is what the credential scope must name and GetBucketLocation
	// answers; default us-east-1.
	Region string `yaml:"region"`
	// Domain enables virtual-hosted-style requests to <bucket>.<domain>;
	// path-style requests always work.
	Domain string `yaml:"domain"`
	// UploadMaxAge is how long an unfinished multipart upload's parts are
	// kept (under <data>/s3-uploads); default 24h.
	UploadMaxAge Duration `yaml:"upload_max_age"`
	// TLSCert and TLSKey (PEM files) serve HTTPS; both or neither.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
}
