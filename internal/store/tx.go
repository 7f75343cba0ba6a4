package store

import (
	"context"
	"fmt"

	"github.com/parleyhq/parley/ent"
)

// Tx runs fn in a transaction: committed when fn returns nil, rolled back
// when it returns an error or panics. Work that must happen in the
// transaction but last, just before the commit (writing the events it
// caused to the event log), registers through [After.Local]; work that must
// only happen once the writes are durable (publishing those events) runs
// in callbacks registered through [After.Do], after a successful commit
// only.
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
	err = fn(tx, after)
	for i := 0; err == nil && i < len(after.last); i++ {
		err = after.last[i].flush(ctx, tx)
	}
	if err != nil {
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

// After collects work to do at the end of a transaction and once it has
// committed.
type After struct {
	fns  []func()
	last []local
}

type local struct {
	key   any
	value any
	flush func(ctx context.Context, tx *ent.Tx) error
}

// Do registers f to run after the commit.
func (a *After) Do(f func()) { a.fns = append(a.fns, f) }

// Local returns the value this transaction keeps under key, creating it
// with mk on first use; mk's flush then runs once in the transaction, after
// fn and just before the commit (an error rolls the transaction back). It
// lets a package gather what a transaction does (the events it causes) and
// write it in one go, at the last moment.
func (a *After) Local(key any, mk func() (value any, flush func(ctx context.Context, tx *ent.Tx) error)) any {
	for _, l := range a.last {
		if l.key == key {
			return l.value
		}
	}
	v, flush := mk()
	a.last = append(a.last, local{key: key, value: v, flush: flush})
	return v
}
