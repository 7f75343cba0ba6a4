// Package worker runs Parley's background loops (routing passes, the
// channels' events worker, outbox and sweeper, attachment cleanup, token
// purge) the same way: a pass now and then, at once when woken, again at
// once while a pass says there is more, errors logged and the loop kept
// alive, and an end when the context ends. The loops decide what a pass
// does; this package only decides when.
package worker

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Loop is one periodic background job.
type Loop struct {
	// Name is what a failed pass is logged as.
	Name string
	// Every is the pause between passes (a ticker: passes do not drift).
	Every time.Duration
	// Wake, when not nil, starts a pass at once (a kick channel of
	// capacity one; see Kick).
	Wake <-chan struct{}
	// AtStart runs a pass before the first tick.
	AtStart bool
	// Pass does one round of work. more asks for another pass at once
	// (a batch came back full); an error is logged, unless the context
	// ended, and the loop waits for the next tick.
	Pass func(ctx context.Context) (more bool, err error)
	// Log receives failed passes; nil discards them.
	Log *slog.Logger
}

// Run runs the loop until ctx ends.
func (l Loop) Run(ctx context.Context) {
	t := time.NewTicker(l.Every)
	defer t.Stop()
	if l.AtStart {
		l.drain(ctx)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-l.Wake:
		}
		l.drain(ctx)
	}
}

// drain runs passes while they ask for more.
func (l Loop) drain(ctx context.Context) {
	for ctx.Err() == nil {
		more, err := l.Pass(ctx)
		if err != nil {
			if ctx.Err() == nil && l.Log != nil {
				l.Log.Warn(l.Name, "err", err)
			}
			return
		}
		if !more {
			return
		}
	}
}

// Once adapts a pass that never asks for more.
func Once(f func(ctx context.Context) error) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) { return false, f(ctx) }
}

// RunAll runs the loops side by side until ctx ends, and returns when all
// have.
func RunAll(ctx context.Context, loops ...Loop) {
	var wg sync.WaitGroup
	for _, l := range loops {
		wg.Go(func() { l.Run(ctx) })
	}
	wg.Wait()
}

// NewWake returns a wake channel for Loop.Wake.
func NewWake() chan struct{} { return make(chan struct{}, 1) }

// Kick wakes a loop without ever blocking: a wake already pending covers
// this one.
func Kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
