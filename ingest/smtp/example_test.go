package smtp_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/cairn-archive/cairn/crypto/certs"
	"github.com/cairn-archive/cairn/ingest"
	"github.com/cairn-archive/cairn/ingest/smtp"
)

// How cmd/cairn wires the receiver for the embedded default: a self-signed
// certificate for STARTTLS, the archive as the Archiver, a graceful stop on
// SIGTERM, and Stats for the metrics endpoint.
func Example() {
	var store ingest.Archiver // archive.Store in cmd/cairn
	dataDir := "./cairn-data"

	pair, err := certs.LoadOrCreate(filepath.Join(dataDir, "tls", "smtp.crt"), filepath.Join(dataDir, "tls", "smtp.key"), nil)
	if err != nil {
		slog.Error("smtp certificate", "err", err)
		return
	}
	opts := smtp.DefaultOptions() // or decoded from the config file, zero fields meaning the defaults
	srv, err := smtp.New(opts, store, smtp.Runtime{
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}},
		Logger:    slog.Default(),
	})
	if err != nil {
		slog.Error("smtp", "err", err)
		return
	}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt)
		<-sig
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Shutdown(ctx) // sessions in the middle of a message finish it
	}()
	go func() {
		for range time.Tick(15 * time.Second) {
			st := srv.Stats() // export as Prometheus counters and a const histogram
			slog.Info("smtp", "accepted", st.Accepted, "open", st.SessionsOpen, "archive_failures", st.TempFailures["archive"])
		}
	}()
	if err := srv.ListenAndServe(); err != nil {
		slog.Error("smtp", "err", err)
	}
}
