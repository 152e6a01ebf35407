package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/index"
	"github.com/cairn-archive/cairn/archive/objstore"
)

// Check is one readiness condition of /readyz.
type Check struct {
	Name string
	// Check returns nil when the condition holds. It must return within
	// its context's deadline (5 s).
	Check func(ctx context.Context) error
}

type readyResult struct {
	Ready  bool              `json:"ready"`
	Checks map[string]string `json:"checks"` // name: "ok" or the problem
}

// readyz runs every check, concurrently, and answers 200 when all pass,
// else 503 (a load balancer or Kubernetes then sends no traffic).
func (s *Server) readyz(w http.ResponseWriter, r *http.Request, c *call) error {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	res := readyResult{Ready: true, Checks: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, ch := range s.opts.Ready {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := ch.Check(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Ready = false
				res.Checks[ch.Name] = err.Error()
			} else {
				res.Checks[ch.Name] = "ok"
			}
		}()
	}
	wg.Wait()
	status := http.StatusOK
	if !res.Ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, res)
	return nil
}

// ArchiveCheck: the archive's index answers.
func ArchiveCheck(st *archive.Store) Check {
	return Check{Name: "archive", Check: func(ctx context.Context) error {
		if err := st.Index().DB().PingContext(ctx); err != nil {
			return fmt.Errorf("index database: %w", err)
		}
		return nil
	}}
}

// IndexCheck: the index has caught up with the ledger as far as the
// newest published checkpoint. After an index commit fails, the archive
// refuses new messages (SMTP answers 451) until it has replayed the
// ledger; meanwhile the index lags the checkpoints the ledger publishes.
func IndexCheck(st *archive.Store) Check {
	return Check{Name: "index", Check: func(ctx context.Context) error {
		state, err := st.Index().LedgerState()
		if err != nil {
			return err
		}
		note, err := st.Index().Meta(ctx, "checkpoint")
		if errors.Is(err, index.ErrNotFound) {
			return nil // no checkpoint yet: nothing to lag behind
		}
		if err != nil {
			return err
		}
		size, err := checkpointSize(note)
		if err != nil {
			return err
		}
		if state.Size < size {
			return fmt.Errorf("the index holds %d ledger entries, the newest checkpoint %d: catching up", state.Size, size)
		}
		return nil
	}}
}

// checkpointSize reads the tree size, the second line of a signed
// checkpoint note. SPEC: c2sp.org/tlog-checkpoint.
func checkpointSize(note []byte) (uint64, error) {
	lines := bytes.SplitN(note, []byte("\n"), 3)
	if len(lines) < 3 {
		return 0, errors.New("the index's checkpoint copy is malformed")
	}
	n, err := strconv.ParseUint(string(lines[1]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("the index's checkpoint copy is malformed: %w", err)
	}
	return n, nil
}

// probeKey is a key no object has: stating it costs one request (a HEAD on
// S3) and must answer "does not exist".
const probeKey = "readyz-probe"

// ObjectStoreCheck: the object store answers.
func ObjectStoreCheck(st objstore.Store) Check {
	return Check{Name: "objects", Check: func(ctx context.Context) error {
		_, err := st.Stat(ctx, probeKey)
		if err == nil || errors.Is(err, objstore.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("object store: %w", err)
	}}
}

// IsLoopback reports whether a listen address binds loopback only
// (127.0.0.0/8, ::1, localhost). An empty host binds every address.
func IsLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckListen refuses a listener that would carry bearer tokens in clear
// over a network: a non-loopback address needs TLS.
func CheckListen(listen string, tls bool) error {
	if tls || IsLoopback(listen) {
		return nil
	}
	return fmt.Errorf("http.listen %s is not a loopback address: set http.tls_cert and http.tls_key (or http.tls_self_signed: true), since API tokens must not cross a network in clear; or listen on 127.0.0.1 behind a TLS proxy", listen)
}
