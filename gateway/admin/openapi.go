package admin

import (
	_ "embed"
	"net/http"
)

// openAPI describes every route of the API; TestOpenAPICoversRoutes keeps
// it in step with routes().
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the API description (OpenAPI 3).
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPI)
}
