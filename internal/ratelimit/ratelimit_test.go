package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestMemoryWindow(t *testing.T) {
	m := NewMemory()
	now := time.Unix(1000, 0)
	m.now = func() time.Time { return now }
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if ok, _, _ := m.Allow(ctx, "k", 3, time.Minute); !ok {
			t.Fatalf("attempt %d refused, want allowed", i+1)
		}
	}
	ok, retry, _ := m.Allow(ctx, "k", 3, time.Minute)
	if ok || retry != time.Minute {
		t.Fatalf("4th attempt: ok=%v retry=%v, want refused with 1m", ok, retry)
	}
	if ok, _, _ := m.Allow(ctx, "other", 3, time.Minute); !ok {
		t.Fatal("another key is limited by k's attempts")
	}
	now = now.Add(time.Minute)
	if ok, _, _ := m.Allow(ctx, "k", 3, time.Minute); !ok {
		t.Fatal("attempt in a new window refused")
	}
}

func TestRedisWindow(t *testing.T) {
	url := os.Getenv("TEST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err != nil {
		if os.Getenv("PARLEY_REQUIRE_SERVICES") == "1" {
			t.Fatalf("Redis required but unreachable: %v", err)
		}
		t.Skipf("Redis unreachable: %v", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	r := NewRedis(c, "parley-test-"+hex.EncodeToString(b)+":")
	for i := 0; i < 2; i++ {
		if ok, _, err := r.Allow(ctx, "k", 2, time.Minute); !ok || err != nil {
			t.Fatalf("attempt %d: ok=%v err=%v", i+1, ok, err)
		}
	}
	ok, retry, err := r.Allow(ctx, "k", 2, time.Minute)
	if ok || err != nil || retry <= 0 || retry > time.Minute {
		t.Fatalf("3rd attempt: ok=%v retry=%v err=%v, want refused within a minute", ok, retry, err)
	}
}
