package bench

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/apperr"
)

// Claim benchmark sizes: every contender tries to claim every conversation
// of a pool, in the same order, so each conversation is fought over.
const (
	claimContenders = 8
	claimPoolRaw    = 4000 // the floor is fast: a bigger pool for a steady figure
	claimPool       = 1200
)

// outcome of one claim attempt.
type outcome int

const (
	won      outcome = iota
	conflict         // raced for it and lost (CONFLICT, or 0 rows updated)
	gone             // it was already someone's when looked at (NOT_FOUND)
	failed           // anything else
)

// raceResult is what one race over a pool produced.
type raceResult struct {
	elapsed                       time.Duration
	wins, conflicts, gones, fails int
	firstErr                      string
	statements                    int64
}

func (r raceResult) rate() float64 { return float64(r.wins) / r.elapsed.Seconds() }

// race has every contender walk ids in the same order and try to claim each
// one; exactly one claim per conversation should win.
func race(ids []int, contenders []benchAgent, claim func(a benchAgent, id int) (outcome, string)) raceResult {
	var (
		mu  sync.Mutex
		res raceResult
		wg  sync.WaitGroup
	)
	start := make(chan struct{})
	for _, a := range contenders {
		wg.Go(func() {
			var w, c, g, f int
			var first string
			<-start
			for _, id := range ids {
				o, msg := claim(a, id)
				switch o {
				case won:
					w++
				case conflict:
					c++
				case gone:
					g++
				default:
					f++
					if first == "" {
						first = msg
					}
				}
			}
			mu.Lock()
			res.wins, res.conflicts, res.gones, res.fails = res.wins+w, res.conflicts+c, res.gones+g, res.fails+f
			if res.firstErr == "" {
				res.firstErr = first
			}
			mu.Unlock()
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	res.elapsed = time.Since(t0)
	return res
}

// BenchmarkClaim measures claim throughput under contention: 8 agents of a
// queue race for the same unowned conversations (each tries every one, in
// the same order; exactly one wins each). Three ways, on fresh pools:
//
//   - floor: the bare atomic step, a conditional UPDATE ... WHERE owner_id
//     IS NULL on the same table, autocommit, from 8 goroutines on the
//     server's own connection pool;
//   - service: Conversations.Take in-process (the whole claim: load and
//     access check, conditional update, offers withdrawn, agent stamped,
//     interaction logged, events published to Redis after the commit);
//   - api: the TakeConversation mutation over HTTP, as clients send it.
func BenchmarkClaim(b *testing.B) {
	defer results.timeIt(b)()
	s := newRig(b)
	meter := s.meter
	w := apitest.NewWorkspace(b, s.Server, apitest.WorkspaceOption{})
	ctx := context.Background()
	db := s.App.DB.SQL
	queueID, acct := apitest.Atoi(b, w.QueueID), apitest.Atoi(b, w.WhatsApp)

	contenders := []benchAgent{
		{ID: apitest.Atoi(b, w.Ana.ID), Token: w.Ana.Token},
		{ID: apitest.Atoi(b, w.Ben.ID), Token: w.Ben.Token},
		{ID: apitest.Atoi(b, w.Cleo.ID), Token: w.Cleo.Token},
	}
	more := addAgents(b, s.Server, "claimer", 3001, claimContenders-len(contenders))
	for i, a := range more {
		if _, err := db.ExecContext(ctx, `INSERT INTO queue_members (priority, agent_id, queue_id) VALUES ($1, $2, $3)`, 4+i, a.ID, queueID); err != nil {
			b.Fatal(err)
		}
	}
	contenders = append(contenders, more...)
	agentIDs := make([]int64, len(contenders))
	for i, a := range contenders {
		agentIDs[i] = int64(a.ID)
	}
	api := newGQLClient(s.Server, apitest.Contract(b), 2*claimContenders)
	defer api.close()
	pool := 0
	seed := func(n int) []int {
		pool++
		return seedClaimPool(b, db, fmt.Sprintf("p%d", pool), n, queueID, acct, agentIDs)
	}

	var floor, svc, gql raceResult
	for b.Loop() {
		// Floor: the conditional UPDATE alone.
		ids := seed(claimPoolRaw)
		floor = race(ids, contenders, func(a benchAgent, id int) (outcome, string) {
			r, err := db.ExecContext(ctx, `UPDATE conversations SET owner_id = $1, taken_at = now(), route_at = NULL, updated_at = now()
				WHERE id = $2 AND owner_id IS NULL AND status = 'OPEN'`, a.ID, id)
			if err != nil {
				return failed, err.Error()
			}
			if n, _ := r.RowsAffected(); n == 1 {
				return won, ""
			}
			return conflict, ""
		})

		// The service's Take, in-process.
		ids = seed(claimPool)
		before := meter.n.Load()
		svc = race(ids, contenders, func(a benchAgent, id int) (outcome, string) {
			_, err := s.App.Convs.Take(ctxAs(ctx, a.ID), id)
			if err == nil {
				return won, ""
			}
			switch apperr.CodeOf(err) {
			case apperr.Conflict:
				return conflict, ""
			case apperr.NotFound:
				return gone, ""
			}
			return failed, err.Error()
		})
		svc.statements = meter.n.Load() - before

		// The TakeConversation mutation over HTTP.
		ids = seed(claimPool)
		before = meter.n.Load()
		gql = race(ids, contenders, func(a benchAgent, id int) (outcome, string) {
			r, err := api.op(ctx, a.Token, "TakeConversation", map[string]any{"id": strconv.Itoa(id)})
			if err != nil {
				return failed, err.Error()
			}
			switch r.Code() {
			case "":
				return won, ""
			case "CONFLICT":
				return conflict, ""
			case "NOT_FOUND":
				return gone, ""
			}
			return failed, r.Code()
		})
		gql.statements = meter.n.Load() - before
	}

	// What one uncontended Take sends, for the notes.
	one := seed(1)[0]
	var takeErr error
	var takeStmts []statement
	takePub := countPublishes(b, s, func() {
		takeStmts = meter.record(func() { _, takeErr = s.App.Convs.Take(ctxAs(ctx, contenders[0].ID), one) })
	})
	if takeErr != nil {
		b.Fatalf("uncontended Take: %v", takeErr)
	}
	lostStmts := meter.record(func() { _, takeErr = s.App.Convs.Take(ctxAs(ctx, contenders[1].ID), one) })
	if apperr.CodeOf(takeErr) != apperr.Conflict { // a loser who was offered it learns it was taken
		b.Fatalf("Take of a taken conversation: %v", takeErr)
	}

	for name, r := range map[string]raceResult{"floor": floor, "service": svc, "api": gql} {
		want := claimPool
		if name == "floor" {
			want = claimPoolRaw
		}
		if r.wins != want || r.fails > 0 {
			b.Errorf("%s: %d of %d conversations claimed, %d failed attempts (first: %s)", name, r.wins, want, r.fails, r.firstErr)
		}
	}
	b.ReportMetric(floor.rate(), "floor-claims/s")
	b.ReportMetric(svc.rate(), "service-claims/s")
	b.ReportMetric(gql.rate(), "api-claims/s")
	b.ReportMetric(0, "ns/op")

	floorWhat := fmt.Sprintf("bare conditional UPDATE, %d goroutines", claimContenders)
	results.add(row{order: 10, figure: fmt.Sprintf("(1) claim throughput, %d contenders: TakeConversation over HTTP", claimContenders),
		measured: gql.rate(), floor: floor.rate(), unit: "claims/s", floorWhat: floorWhat, kind: rate})
	results.add(row{order: 11, figure: fmt.Sprintf("(1) claim throughput, %d contenders: Conversations.Take in-process", claimContenders),
		measured: svc.rate(), floor: floor.rate(), unit: "claims/s", floorWhat: floorWhat, kind: rate})
	name := b.Name()
	for _, x := range []struct {
		what string
		r    raceResult
	}{{"floor", floor}, {"service", svc}, {"api", gql}} {
		perClaim := ""
		if x.r.statements > 0 {
			perClaim = fmt.Sprintf("; %.1f SQL statements per winning claim (losers' included)", float64(x.r.statements)/float64(x.r.wins))
		}
		results.note(name, fmt.Sprintf("%s: %d conversations in %s, %d attempts lost a race (CONFLICT / 0 rows), %d found it taken (NOT_FOUND)%s",
			x.what, x.r.wins, x.r.elapsed.Round(time.Millisecond), x.r.conflicts, x.r.gones, perClaim))
	}
	results.note(name, fmt.Sprintf("one uncontended Take: %d SQL statements (%s) plus BEGIN/COMMIT, then %d Redis PUBLISH in one pipeline after the commit",
		len(takeStmts), statementMix(takeStmts), takePub))
	results.note(name, fmt.Sprintf("a Take of a conversation someone owns: %d SQL statement(s) (%s)", len(lostStmts), statementMix(lostStmts)))
	results.note(name, "every contender tries every conversation of a fresh pool in the same order; unowned, open, in the queue, offered to all 8 (as RING_ALL leaves them)")
}

// seedClaimPool inserts n unowned, open WhatsApp conversations in the
// queue, each with its own contact and identity, one inbound message (the
// last message), and an active offer to every agent, as routing would have
// left them. It returns their ids.
func seedClaimPool(b *testing.B, db *sql.DB, tag string, n, queueID, acct int, agents []int64) []int {
	b.Helper()
	contact0 := mustReserve(b, db, "contacts", n)
	ident0 := mustReserve(b, db, "contact_identities", n)
	conv0 := mustReserve(b, db, "conversations", n)
	msg0 := mustReserve(b, db, "messages", n)
	at := time.Now().Add(-time.Minute)
	execAll(b, db, false, []seedStmt{
		{"claim contacts", `INSERT INTO contacts (id, created_at, updated_at, display_name, known, blocked, search_key)
			SELECT $1::bigint + g, $2, $2, 'Claim ' || $3 || ' ' || g, true, false, 'claim ' || $3 || ' ' || g FROM generate_series(0, $4 - 1) g`,
			[]any{contact0, at, tag, n}},
		{"claim identities", `INSERT INTO contact_identities (id, channel, external_id, profile_name, contact_id, channel_account_id)
			SELECT $1::bigint + g, 'WHATSAPP', 'claim-' || $2 || '-' || g, 'Claim ' || g, $3::bigint + g, $4 FROM generate_series(0, $5 - 1) g`,
			[]any{ident0, tag, contact0, acct, n}},
		{"claim conversations", `INSERT INTO conversations (id, created_at, updated_at, channel, status, archived, unknown_contact, open_key,
				last_message_at, customer_last_message_at, route_at, round_started_at, channel_account_id, contact_id, identity_id, queue_id)
			SELECT $1::bigint + g, $2::timestamptz, $2::timestamptz, 'WHATSAPP', 'OPEN', false, false, $3::bigint || ':' || ($4::bigint + g),
				$2::timestamptz, $2::timestamptz, $2::timestamptz + interval '30 seconds', $2::timestamptz,
				$3::bigint, $5::bigint + g, $4::bigint + g, $6::bigint FROM generate_series(0, $7 - 1) g`,
			[]any{conv0, at, acct, ident0, contact0, queueID, n}},
		{"claim messages", `INSERT INTO messages (id, direction, body, search_body, created_at, channel_account_id, provider_message_id, conversation_id, sender_contact_id)
			SELECT $1::bigint + g, 'INBOUND', 'Hello, I need help with my order', 'hello, i need help with my order', $2, $3, 'claim-' || $4 || '-' || g, $5::bigint + g, $6::bigint + g
			FROM generate_series(0, $7 - 1) g`,
			[]any{msg0, at, acct, tag, conv0, contact0, n}},
		{"claim last messages", `UPDATE conversations SET last_message_id = id - $1::bigint + $2::bigint WHERE id >= $1::bigint AND id < $1::bigint + $3`, []any{conv0, msg0, n}},
		{"claim offers", `INSERT INTO offers (offered_at, expires_at, active, conversation_id, agent_id)
			SELECT $1::timestamptz, $1::timestamptz + interval '1 hour', true, $2::bigint + g, a FROM generate_series(0, $3 - 1) g CROSS JOIN unnest($4::bigint[]) a`,
			[]any{at, conv0, n, pq.Array(agents)}},
		{"analyze", `ANALYZE conversations, offers, messages, contacts, contact_identities`, nil},
	})
	ids := make([]int, n)
	for i := range ids {
		ids[i] = int(conv0) + i
	}
	return ids
}
