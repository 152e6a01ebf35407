package httpapi

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"

	"go.yaml.in/yaml/v3"
)

// openapiYAML is the API's description, written by hand beside the route
// table; TestOpenAPIInSync walks both.
//
//go:embed openapi.yaml
var openapiYAML []byte

// openapiJSON is the same document as JSON, served at /openapi.json.
var openapiJSON = func() []byte {
	var doc any
	if err := yaml.Unmarshal(openapiYAML, &doc); err != nil {
		panic(fmt.Sprintf("httpapi: openapi.yaml: %v", err))
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("httpapi: openapi.yaml as JSON: %v", err))
	}
	return append(b, '\n')
}()

// OpenAPI returns the API's OpenAPI 3.1 description as JSON.
func OpenAPI() []byte { return append([]byte(nil), openapiJSON...) }

func serveOpenAPI(w http.ResponseWriter, r *http.Request, c *call) error {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openapiJSON)
	return nil
}
