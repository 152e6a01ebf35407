// Package e2e checks Cairn end to end: the cairn binary, built once, runs
// `cairn serve` as a child process on free 127.0.0.1 ports, real clients
// drive it, and the archive is then read the way an auditor would, through
// `cairn cat`, `cairn verify --full` and the SQLite index.
//
// Issue 3, the SMTP journaling receiver: Postfix always_bcc and
// recipient_bcc_maps (postfix_test.go), Exchange journal reports
// (journal_test.go), smtp-source load and kill -9 mid-load (load_test.go),
// the S3 store hung and killed mid-load (s3_test.go), smuggling and
// STARTTLS injection (probes_test.go). Issue 4, the IMAP view: imap_test.go.
//
//	go test -tags integration -count=1 -v ./cmd/cairn/e2e
//	CAIRN_E2E_LOAD=20000 go test -tags integration -count=1 -run Load -v ./cmd/cairn/e2e
//
// CAIRN_E2E_KEEP=DIR keeps the data folder, config and serve logs of a
// failed test under DIR.
//
// Every test file carries the integration build tag; this file has none,
// so that the package exists (and `go vet ./...` passes) without it.
//
// The tests fail, never skip, when a tool they need is missing: they install
// Postfix's programs with scripts/postfix.sh and start their own versitygw
// with scripts/s3-server.sh (both need root on Debian). Every process they
// start (cairn serve, Postfix, versitygw) is stopped when the test ends.
package e2e
