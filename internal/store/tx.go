package store

import (
	"context"
	"fmt"

	"github.com/parleyhq/parley/ent"
)

// Tx runs fn in a transaction: committed when fn returns nil, rolled back
// when it returns an error or panics. Work that must only happen once the
// writes are durable (publishing events) belongs in afterCommit callbacks,
// registered through the returned *After, which run after a successful
// commit only.
func Tx(ctx context.Context, client *ent.Client, fn func(tx *ent.Tx, after *After) error) (err error) {
	tx, err := client.Tx(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	after := &After{}
	defer func() {
		if v := recover(); v != nil {
			_ = tx.Rollback()
			panic(v)
		}
	}()
	if err := fn(tx, after); err != nil {
		if rerr := tx.Rollback(); rerr != nil {
			return fmt.Errorf("%w (rollback: %v)", err, rerr)
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	for _, f := range after.fns {
		f()
	}
	return nil
}

// After collects work to do once a transaction has committed.
type After struct{ fns []func() }

// Do registers f to run after the commit.
func (a *After) Do(f func()) { a.fns = append(a.fns, f) }
