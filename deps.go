//go:build tools

// Package cairn pins the dependencies chosen in DESIGN.md before every package imports them.
package cairn

import (
	_ "filippo.io/age"
	_ "github.com/emersion/go-imap/v2"
	_ "github.com/emersion/go-smtp"
	_ "github.com/google/uuid"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/mattn/go-sqlite3"
	_ "github.com/minio/minio-go/v7"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/spf13/cobra"
	_ "github.com/spf13/viper"
	_ "github.com/transparency-dev/merkle"
	_ "golang.org/x/crypto/chacha20poly1305"
	_ "golang.org/x/mod/sumdb/note"
	_ "golang.org/x/term"
)
