package imapview

import (
	"context"
	"database/sql"
	"sync"
)

// stmtDB is the index reader with its hot statements prepared once. A
// client such as mbsync sends one FETCH per message; compiling the same
// few statements again for every command cost about as much as running
// them. Queries keep their database/sql signatures, so call sites do not
// change; a statement whose text varies with its input (long IN lists,
// searches) is run unprepared once the cache is full.
type stmtDB struct {
	*sql.DB
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
	// head, when set, answers ledgerHead without a query: the index of
	// the archive this process writes (serve holds the writer lock).
	head func() int64
}

// maxStmts bounds the cache: the view's statements are a few dozen texts
// per folder kind and scope.
const maxStmts = 512

func newStmtDB(db *sql.DB) *stmtDB { return &stmtDB{DB: db, stmts: make(map[string]*sql.Stmt)} }

// stmt returns the prepared statement for q, preparing it if the cache
// has room, or nil.
func (d *stmtDB) stmt(ctx context.Context, q string) *sql.Stmt {
	d.mu.Lock()
	st, ok := d.stmts[q]
	full := len(d.stmts) >= maxStmts
	d.mu.Unlock()
	if ok || full {
		return st
	}
	st, err := d.DB.PrepareContext(ctx, q)
	if err != nil {
		return nil // the unprepared query reports the error
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if prev, ok := d.stmts[q]; ok {
		st.Close()
		return prev
	}
	if len(d.stmts) >= maxStmts {
		st.Close()
		return nil
	}
	d.stmts[q] = st
	return st
}

func (d *stmtDB) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := d.stmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return d.DB.QueryContext(ctx, q, args...)
}

func (d *stmtDB) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st := d.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return d.DB.QueryRowContext(ctx, q, args...)
}

// Close closes the statements, then the database.
func (d *stmtDB) Close() error {
	d.mu.Lock()
	for q, st := range d.stmts {
		st.Close()
		delete(d.stmts, q)
	}
	d.mu.Unlock()
	return d.DB.Close()
}

// point is ctx for a query that reads a few rows by key (a bounded IN list,
// MAX of a key): such a query ends in microseconds and in WAL mode never
// waits for the writer, so it runs without ctx's cancellation, whose watch
// (database/sql and the driver set one up for every query on a cancellable
// context) cost more than the query. A ctx already done still stops it.
func point(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }
