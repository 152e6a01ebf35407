// Package httpapi is Cairn's HTTP API: health and readiness probes,
// Prometheus metrics, and JSON endpoints for search, message reads,
// litigation holds, erasure requests, retention explanations, exports and
// accounts. `cairn serve` mounts it (cmd/cairn/serve_http.go); the
// routes, their roles and their audit actions are the table in server.go,
// and openapi.yaml describes them (a test keeps the two in step).
//
// Invariants:
//   - Every call that reaches archive data or changes anything is
//     authenticated with an API token (Authorization: Bearer, auth.DB
//     tokens) and authorised by role before its handler runs: auditor
//     searches and reads within the account's scope; legal also manages
//     holds, erasure requests and exports; admin also manages accounts;
//     the token-only metrics role reads /metrics and nothing else.
//   - Every such call is an audit event, recorded before any result or
//     change leaves the server (fail closed: when the audit log refuses the
//     event, the call fails with 503 and nothing is returned or changed).
//     Refused calls (no token, bad token, throttled, wrong role, bad
//     request) are recorded as failures. The unauthenticated probes
//     (/healthz, /readyz) and the API description (/openapi.json) touch no
//     archive data and are not audited.
//   - Failed authentications are throttled per client address (the
//     accounts' auth.Limiter): past the free failures, further attempts are
//     answered 429 at once, without checking the token.
//   - A scoped account sees only its custodians' and domains' messages; a
//     message outside the scope is answered 404, as a missing one is.
//   - The server never listens on a non-loopback address without TLS
//     (CheckListen): bearer tokens do not cross a network in clear.
//
// Specs: RFC 9110 (HTTP semantics), RFC 6750 (bearer tokens, the
// WWW-Authenticate challenge), RFC 6585 §4 (429 Too Many Requests),
// OpenAPI 3.1 (openapi.yaml), the Prometheus text exposition format
// (/metrics).
package httpapi
