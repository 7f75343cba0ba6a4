package metrics

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// QueueFigures are one queue's gauges.
type QueueFigures struct {
	ID                   int
	Name                 string
	Waiting              int
	OldestWaitingSeconds float64
	AgentsAvailable      int
}

// QueueSource reads every queue's figures (queuelive.Service.All).
type QueueSource func(ctx context.Context) ([]QueueFigures, error)

// Bounds of the per-queue gauges' computation.
const (
	// QueueScrapeTimeout bounds one computation: a slow database makes a
	// scrape lose the queue series, not hang.
	QueueScrapeTimeout = 2 * time.Second
	// QueueCacheFor is how long one computation serves scrapes: however
	// many scrapers, the database is asked at most once per period.
	QueueCacheFor = 2 * time.Second
)

// WatchQueues registers the per-queue gauges parley_queue_waiting,
// parley_queue_oldest_waiting_seconds and parley_queue_agents_available,
// computed at scrape time from src, so that a deleted queue's series go
// with it. Labels: queue_id (stable across renames) and queue (the name,
// for people).
func (m *Metrics) WatchQueues(src QueueSource) {
	m.Registry.MustRegister(newQueueCollector(src))
}

type queueCollector struct {
	src                        QueueSource
	waiting, oldest, available *prometheus.Desc

	mu     sync.Mutex // one computation at a time; others wait and share it
	at     time.Time
	cached []QueueFigures
}

func newQueueCollector(src QueueSource) *queueCollector {
	labels := []string{"queue_id", "queue"}
	return &queueCollector{
		src: src,
		waiting: prometheus.NewDesc("parley_queue_waiting",
			"Open, unowned conversations waiting in the queue (not archived, contact not blocked).", labels, nil),
		oldest: prometheus.NewDesc("parley_queue_oldest_waiting_seconds",
			"How long the longest-waiting conversation of the queue has waited (0 when none).", labels, nil),
		available: prometheus.NewDesc("parley_queue_agents_available",
			"Members of the queue who are AVAILABLE and online.", labels, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.waiting
	ch <- c.oldest
	ch <- c.available
}

// Collect implements prometheus.Collector.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	for _, q := range c.figures() {
		l := []string{strconv.Itoa(q.ID), q.Name}
		ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, float64(q.Waiting), l...)
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, q.OldestWaitingSeconds, l...)
		ch <- prometheus.MustNewConstMetric(c.available, prometheus.GaugeValue, float64(q.AgentsAvailable), l...)
	}
}

// figures returns the cached figures, computing them again when older than
// QueueCacheFor. A failed computation yields no series (unknown, rather
// than stale figures presented as current).
func (c *queueCollector) figures() []QueueFigures {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < QueueCacheFor {
		return c.cached
	}
	ctx, cancel := context.WithTimeout(context.Background(), QueueScrapeTimeout)
	defer cancel()
	qs, err := c.src(ctx)
	if err != nil {
		c.cached, c.at = nil, time.Time{}
		return nil
	}
	c.cached, c.at = qs, time.Now()
	return qs
}
