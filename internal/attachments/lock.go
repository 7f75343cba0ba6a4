package attachments

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"sync"
)

// contentLocks serialises, per content hash, "make sure the file is there
// and add a row" (upload) with "remove a row, and the file when no row is
// left" (cleanup), so cleanup never deletes a file an upload has just
// counted on. In one process a striped mutex does it; with PostgreSQL a
// transaction-scoped advisory lock does it across instances too. (SQLite is
// one process's database.)
type contentLocks struct {
	stripes [64]sync.Mutex
	pg      *sql.DB // nil unless PostgreSQL
}

// advisoryNamespace is the first key of Parley's content advisory locks
// ("PaAt"), the second being taken from the hash.
const advisoryNamespace = 0x50614174

func (l *contentLocks) lock(ctx context.Context, sum string) (unlock func(), err error) {
	b, err := hex.DecodeString(sum[:8])
	if err != nil || len(b) != 4 {
		return nil, errBadSum
	}
	mu := &l.stripes[b[0]%byte(len(l.stripes))]
	mu.Lock()
	if l.pg == nil {
		return mu.Unlock, nil
	}
	// The transaction outlives a cancelled request only until unlock: the
	// lock must not vanish half-way because the caller went away.
	tx, err := l.pg.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		mu.Unlock()
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1, $2)", int32(advisoryNamespace), int32(binary.BigEndian.Uint32(b))); err != nil {
		_ = tx.Rollback()
		mu.Unlock()
		return nil, err
	}
	return func() {
		_ = tx.Rollback() // ends the transaction, releasing the lock
		mu.Unlock()
	}, nil
}
