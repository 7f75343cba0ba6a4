package worker_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/worker"
)

// TestLoop: a pass at start when asked, again at once while it says there
// is more, on every wake, none after an error until the next tick, and an
// end when the context ends.
func TestLoop(t *testing.T) {
	var passes atomic.Int32
	more := atomic.Int32{}
	more.Store(3) // the start drains three more passes
	wake := worker.NewWake()
	step := make(chan int32, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		worker.Loop{Name: "test", Every: time.Hour, Wake: wake, AtStart: true, Pass: func(context.Context) (bool, error) {
			n := passes.Add(1)
			step <- n
			if n == 6 {
				return true, errors.New("failed") // more is ignored after an error
			}
			return more.Add(-1) >= 0, nil
		}}.Run(ctx)
	}()
	next := func() int32 {
		t.Helper()
		select {
		case n := <-step:
			return n
		case <-time.After(5 * time.Second):
			t.Fatal("no pass")
			return 0
		}
	}
	for want := int32(1); want <= 4; want++ {
		if n := next(); n != want {
			t.Fatalf("pass %d, want %d", n, want)
		}
	}
	worker.Kick(wake)
	if n := next(); n != 5 {
		t.Fatalf("woken: pass %d", n)
	}
	worker.Kick(wake)
	if n := next(); n != 6 {
		t.Fatalf("second wake: pass %d", n)
	}
	select {
	case n := <-step:
		t.Fatalf("pass %d ran after an error without a wake or tick", n)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the loop did not end with its context")
	}
}
