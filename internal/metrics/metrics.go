// Package metrics defines Parley's Prometheus metrics on a registry of its
// own (not the global one), so that tests can build several servers in one
// process.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the collectors the server updates.
type Metrics struct {
	Registry *prometheus.Registry
	// HTTPRequests counts requests by route and status code.
	HTTPRequests *prometheus.CounterVec
	// HTTPDuration observes request durations by route.
	HTTPDuration *prometheus.HistogramVec
	// GraphQLOperations counts operations by type (query, mutation,
	// subscription) and outcome (ok, error).
	GraphQLOperations *prometheus.CounterVec
	// GraphQLErrors counts errors returned to clients by extensions.code.
	GraphQLErrors *prometheus.CounterVec
	// ActiveSubscriptions is the number of live client subscriptions.
	ActiveSubscriptions prometheus.Gauge
	// BrokerSubscriptions is the number of subscriptions this instance
	// holds at its broker: subscriptions of the same operation, variables
	// and viewer share one.
	BrokerSubscriptions prometheus.Gauge
	// WebsocketConnections is the number of open GraphQL websockets.
	WebsocketConnections prometheus.Gauge
}

// New registers Parley's metrics and the Go runtime and process collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "parley_http_request_duration_seconds", Help: "HTTP request durations by route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		GraphQLOperations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_graphql_operations_total", Help: "GraphQL operations by type and outcome.",
		}, []string{"type", "outcome"}),
		GraphQLErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_graphql_errors_total", Help: "GraphQL errors returned, by extensions.code.",
		}, []string{"code"}),
		ActiveSubscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_active_subscriptions", Help: "Live client subscriptions (websocket operations) on this instance.",
		}),
		BrokerSubscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_broker_subscriptions", Help: "Subscriptions this instance holds at its pub/sub broker.",
		}),
		WebsocketConnections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_websocket_connections", Help: "Open GraphQL websocket connections on this instance.",
		}),
	}
	r.MustRegister(m.HTTPRequests, m.HTTPDuration, m.GraphQLOperations, m.GraphQLErrors,
		m.ActiveSubscriptions, m.BrokerSubscriptions, m.WebsocketConnections,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
