package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/apitest"
)

// Inbox dataset: 100,000 conversations over a year, 1,000,000 messages,
// 40,000 contacts with a WhatsApp and a live-chat identity each, ten agents
// owning conversations, one queue.
const (
	inboxConversations = 100_000
	inboxMessages      = 1_000_000
	inboxContacts      = 40_000
	inboxOpen          = 3_000 // the newest conversations are still open
	inboxOwners        = 10
	inboxPage          = 20
	inboxSamples       = 200 // per view and per path, per experiment
)

// inboxDataset is what seedInbox built, for the checks and the notes.
type inboxDataset struct {
	conv0, msg0 int64
	took        time.Duration
	skippedFKs  bool // foreign-key triggers were off while loading
}

// seedInbox fills the database with hand-written bulk SQL. Ids are taken
// from each table's identity sequence, so they stay inside the table's
// global-id range. The shape:
//
//   - conversation c (0..99,999) starts at now - 366 days + c * 315 s; one in
//     five is a live chat, the rest WhatsApp; every 5,000th is an INTERNAL
//     chat between the first agent and another;
//   - the newest 3,000 (and the internal chats) are OPEN, 1 in 50 of them
//     archived; the rest are DEALT_WITH and archived;
//   - owners rotate over ten agents; an open customer conversation is
//     unowned one time in seven, and then offered (active offers) to the
//     queue's three members; every owned one has an old, inactive offer;
//   - contact c mod 40,000 (one in ten unknown);
//   - message 0..99,999 is conversation c's first (inbound) message; the
//     other 900,000 are spread over conversations by a multiplicative hash,
//     within a day of the conversation's start, inbound or outbound by turns
//     (outbound only once owned), one in fifty a SYSTEM message; message ids
//     follow their timestamps, as they do when messages arrive;
//   - last_message_id / last_message_at are each conversation's newest
//     message; closed_at an hour later for closed ones;
//   - each owner has a read marker on each conversation: at its last message,
//     except for a third of the open ones, never read (so unread counts are
//     not all zero).
func seedInbox(b *testing.B, db *sql.DB, owners []int64, queueMembers [3]int64, queueID, wa, lc int) inboxDataset {
	b.Helper()
	start := time.Now()
	contact0 := mustReserve(b, db, "contacts", inboxContacts)
	ident0 := mustReserve(b, db, "contact_identities", 2*inboxContacts)
	conv0 := mustReserve(b, db, "conversations", inboxConversations)
	msg0 := mustReserve(b, db, "messages", inboxMessages)
	ownerArr := make([]string, len(owners))
	for i, o := range owners {
		ownerArr[i] = strconv.FormatInt(o, 10)
	}
	v := map[string]string{
		"N": strconv.Itoa(inboxConversations), "M": strconv.Itoa(inboxMessages), "K": strconv.Itoa(inboxContacts),
		"OPEN": strconv.Itoa(inboxOpen), "contact0": strconv.FormatInt(contact0, 10), "ident0": strconv.FormatInt(ident0, 10),
		"conv0": strconv.FormatInt(conv0, 10), "msg0": strconv.FormatInt(msg0, 10),
		"owners": "ARRAY[" + strings.Join(ownerArr, ",") + "]::bigint[]", "nowners": strconv.Itoa(len(owners)),
		"ana": ownerArr[0], "members": fmt.Sprintf("ARRAY[%d,%d,%d]::bigint[]", queueMembers[0], queueMembers[1], queueMembers[2]),
		"queue": strconv.Itoa(queueID), "wa": strconv.Itoa(wa), "lc": strconv.Itoa(lc),
		"base": "(now() - interval '366 days')",
	}
	// The statements are built from our own integers only.
	sq := func(s string) string {
		return regexp.MustCompile(`\{(\w+)\}`).ReplaceAllStringFunc(s, func(m string) string {
			r, ok := v[m[1:len(m)-1]]
			if !ok {
				panic("seed: no value for " + m)
			}
			return r
		})
	}
	stmts := []seedStmt{
		{"contacts", sq(`INSERT INTO contacts (id, created_at, updated_at, display_name, email, phone, known, blocked, search_key)
			SELECT {contact0} + k, t, t, name, 'customer' || k || '@example.com', '+1555' || lpad(k::text, 7, '0'), k % 10 <> 0, false,
				lower(name || ' customer' || k || '@example.com +1555' || lpad(k::text, 7, '0'))
			FROM (SELECT k, {base} + k * interval '780 seconds' AS t,
				(ARRAY['Ana','Bruno','Carla','Diego','Elena','Fabio','Gala','Hugo','Irene','Jorge','Karla','Luis','Marta','Nico','Olga','Pablo'])[1 + k % 16]
				|| ' ' || (ARRAY['Garcia','Lopez','Martin','Sanchez','Perez','Gomez','Ruiz','Diaz','Moreno','Alvarez','Romero','Navarro'])[1 + (k / 16) % 12]
				|| ' ' || k AS name
				FROM generate_series(0, {K} - 1) k) s`), nil},
		{"identities", sq(`INSERT INTO contact_identities (id, channel, external_id, profile_name, contact_id, channel_account_id)
			SELECT {ident0} + k, 'WHATSAPP', '1555' || lpad(k::text, 7, '0'), 'Customer ' || k, {contact0} + k, {wa} FROM generate_series(0, {K} - 1) k
			UNION ALL
			SELECT {ident0} + {K} + k, 'LIVE_CHAT', 'visitor-' || k, 'Visitor ' || k, {contact0} + k, {lc} FROM generate_series(0, {K} - 1) k`), nil},
		{"conversations", sq(`INSERT INTO conversations (id, created_at, updated_at, channel, status, archived, unknown_contact, open_key,
				last_message_at, customer_last_message_at, taken_at, channel_account_id, contact_id, identity_id, queue_id, owner_id)
			SELECT {conv0} + c, at, at, ch, CASE WHEN open THEN 'OPEN' ELSE 'DEALT_WITH' END, NOT open OR c % 50 = 0,
				ch <> 'INTERNAL' AND k % 10 = 0, CASE WHEN open AND ch <> 'INTERNAL' THEN acct || ':' || ident END,
				at, CASE WHEN ch <> 'INTERNAL' THEN at END, CASE WHEN owner IS NOT NULL THEN at + interval '1 minute' END,
				acct, CASE WHEN ch <> 'INTERNAL' THEN {contact0} + k END, ident, CASE WHEN ch <> 'INTERNAL' THEN {queue} END, owner
			FROM (SELECT c, k, at, ch, open,
					CASE ch WHEN 'WHATSAPP' THEN {wa} WHEN 'LIVE_CHAT' THEN {lc} END AS acct,
					CASE ch WHEN 'WHATSAPP' THEN {ident0} + k WHEN 'LIVE_CHAT' THEN {ident0} + {K} + k END AS ident,
					CASE WHEN ch = 'INTERNAL' OR (open AND c % 7 = 3) THEN NULL ELSE ({owners})[1 + (c / 3) % {nowners}] END AS owner
				FROM (SELECT c, c % {K} AS k, {base} + c * interval '315 seconds' AS at,
						CASE WHEN c % 5000 = 2500 THEN 'INTERNAL' WHEN c % 5 = 4 THEN 'LIVE_CHAT' ELSE 'WHATSAPP' END AS ch,
						c >= {N} - {OPEN} OR c % 5000 = 2500 AS open
					FROM generate_series(0, {N} - 1) c) s1) s2`), nil},
		{"participants", sq(`INSERT INTO conversation_participants (conversation_id, agent_id)
			SELECT {conv0} + c, a FROM generate_series(0, {N} - 1) c
			CROSS JOIN LATERAL (VALUES ({ana}::bigint), (({owners})[2 + c % ({nowners} - 1)])) p(a) WHERE c % 5000 = 2500`), nil},
		{"messages", sq(`INSERT INTO messages (id, direction, body, search_body, created_at, delivery_status, channel_account_id,
				provider_message_id, conversation_id, sender_agent_id, sender_contact_id)
			SELECT {msg0} - 1 + row_number() OVER (ORDER BY created, k), dir, body, lower(body), created,
				CASE WHEN dir = 'OUTBOUND' AND channel <> 'INTERNAL' THEN 'DELIVERED' END,
				CASE WHEN dir = 'INBOUND' THEN channel_account_id END,
				CASE WHEN dir = 'INBOUND' THEN 'seed-' || k END,
				conv, CASE WHEN dir = 'OUTBOUND' THEN
					CASE WHEN channel = 'INTERNAL' THEN CASE WHEN k % 2 = 0 THEN {ana} ELSE ({owners})[2 + (conv - {conv0}) % ({nowners} - 1)] END
					ELSE owner_id END END,
				CASE WHEN dir = 'INBOUND' THEN contact_id END
			FROM (SELECT m.k, cv.id AS conv, cv.channel, cv.channel_account_id, cv.owner_id, cv.contact_id,
					CASE WHEN cv.channel = 'INTERNAL' THEN 'OUTBOUND' WHEN m.k < {N} THEN 'INBOUND' WHEN m.k % 50 = 7 THEN 'SYSTEM'
						WHEN cv.owner_id IS NULL OR m.k % 2 = 0 THEN 'INBOUND' ELSE 'OUTBOUND' END AS dir,
					cv.created_at + CASE WHEN m.k < {N} THEN interval '0' ELSE ((m.k::bigint * 7919) % 86400) * interval '1 second' END AS created,
					(ARRAY['Hi, my order has not arrived yet','Can you check the status of my refund?','Thanks, that solved it!',
						'What are your opening hours?','I would like to change my delivery address','Here is the photo you asked for',
						'Is this item available in blue?','Perfect, see you tomorrow'])[1 + m.k % 8] || ' #' || m.k AS body
				FROM (SELECT k, CASE WHEN k < {N} THEN k ELSE ((k::bigint * 2654435761) % 4294967296) * {N} / 4294967296 END AS ci
					FROM generate_series(0, {M} - 1) k) m
				JOIN conversations cv ON cv.id = {conv0} + m.ci) s`), nil},
		{"last messages", sq(`UPDATE conversations c SET last_message_id = l.id, last_message_at = l.created_at, updated_at = l.created_at,
				closed_at = CASE WHEN c.status <> 'OPEN' THEN l.created_at + interval '1 hour' END
			FROM (SELECT DISTINCT ON (conversation_id) conversation_id, id, created_at FROM messages
				WHERE conversation_id >= {conv0} ORDER BY conversation_id, created_at DESC, id DESC) l
			WHERE c.id = l.conversation_id`), nil},
		{"offers", sq(`INSERT INTO offers (offered_at, expires_at, active, conversation_id, agent_id)
			SELECT created_at, created_at + interval '30 seconds', false, id, owner_id FROM conversations
				WHERE id >= {conv0} AND owner_id IS NOT NULL AND channel <> 'INTERNAL'
			UNION ALL
			SELECT created_at, now() + interval '1 day', true, id, a FROM conversations CROSS JOIN unnest({members}) a
				WHERE id >= {conv0} AND owner_id IS NULL AND status = 'OPEN' AND channel <> 'INTERNAL'`), nil},
		{"read states", sq(`INSERT INTO read_states (last_read_message_id, read_at, conversation_id, agent_id)
			SELECT CASE WHEN status = 'OPEN' AND id % 3 = 0 THEN 0 ELSE last_message_id END, last_message_at, id, owner_id
			FROM conversations WHERE id >= {conv0} AND owner_id IS NOT NULL`), nil},
	}
	skipped := execAll(b, db, true, stmts)
	for _, t := range []string{"contacts", "contact_identities", "conversations", "conversation_participants", "messages", "offers", "read_states"} {
		if _, err := db.Exec("VACUUM (ANALYZE) " + t); err != nil {
			b.Fatalf("vacuum %s: %v", t, err)
		}
	}
	return inboxDataset{conv0: conv0, msg0: msg0, took: time.Since(start), skippedFKs: skipped}
}

// inboxFloorSQL is the hand-written query for one inbox page: the same
// rows, order and fields the contract's Inbox operation asks for (contact,
// queue, owner, last message, unread count) and the total count, in one
// statement. $1 is the agent, $2 the page size plus one (for hasNextPage,
// as the service fetches). Like the service, it leaves out conversations
// without a message yet.
func inboxFloorSQL(view string) string {
	where := map[string]string{
		"RECENT": `NOT c.archived AND (c.owner_id = $1
			OR (c.channel = 'INTERNAL' AND EXISTS (SELECT 1 FROM conversation_participants p WHERE p.conversation_id = c.id AND p.agent_id = $1))
			OR (c.owner_id IS NULL AND c.channel <> 'INTERNAL'
				AND EXISTS (SELECT 1 FROM offers f WHERE f.conversation_id = c.id AND f.agent_id = $1 AND f.active)))`,
		"MINE": `c.owner_id = $1 AND NOT c.archived`,
	}[view]
	visible := `c.last_message_id IS NOT NULL AND ` + where
	return `WITH page AS (
		SELECT c.id FROM conversations c WHERE ` + visible + `
		ORDER BY c.last_message_at DESC, c.id DESC LIMIT $2
	)
	SELECT c.id, c.channel, c.status, c.archived, c.unknown_contact, c.last_message_at,
		ct.id, ct.display_name, q.id, q.name, o.id, o.name, o.extension,
		m.id, m.body, m.direction, m.created_at,
		(SELECT count(*) FROM messages u WHERE u.conversation_id = c.id
			AND u.id > COALESCE((SELECT r.last_read_message_id FROM read_states r WHERE r.conversation_id = c.id AND r.agent_id = $1), 0)
			AND u.direction <> 'SYSTEM' AND (u.sender_agent_id IS NULL OR u.sender_agent_id <> $1)) AS unread,
		(SELECT count(*) FROM conversations c WHERE ` + visible + `) AS total
	FROM page JOIN conversations c ON c.id = page.id
	LEFT JOIN contacts ct ON ct.id = c.contact_id
	LEFT JOIN queues q ON q.id = c.queue_id
	LEFT JOIN agents o ON o.id = c.owner_id
	LEFT JOIN messages m ON m.id = c.last_message_id
	ORDER BY c.last_message_at DESC, c.id DESC`
}

// pageRow is what the checks compare between the two paths.
type pageRow struct {
	ID     string
	Unread int
}

// floorPage runs the hand-written query and reads every column.
func floorPage(ctx context.Context, db *sql.DB, view string, agent int) ([]pageRow, int, error) {
	rows, err := db.QueryContext(ctx, inboxFloorSQL(view), agent, inboxPage+1)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var out []pageRow
	total := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, 0, err
		}
		unread, _ := vals[len(vals)-2].(int64)
		t, _ := vals[len(vals)-1].(int64)
		total = int(t)
		out = append(out, pageRow{ID: strconv.FormatInt(vals[0].(int64), 10), Unread: int(unread)})
	}
	if len(out) > inboxPage {
		out = out[:inboxPage]
	}
	return out, total, rows.Err()
}

// inboxResponse is the part of the contract's Inbox result the checks use.
type inboxResponse struct {
	Inbox struct {
		TotalCount int
		PageInfo   struct{ HasNextPage bool }
		Edges      []struct {
			Node struct {
				ID          string
				UnreadCount int
				Contact     *struct{ DisplayName string }
				LastMessage *struct{ ID string }
			}
		}
	}
}

func (r inboxResponse) rows() []pageRow {
	out := make([]pageRow, 0, len(r.Inbox.Edges))
	for _, e := range r.Inbox.Edges {
		out = append(out, pageRow{ID: e.Node.ID, Unread: e.Node.UnreadCount})
	}
	return out
}

// BenchmarkInboxQuery measures the contract's Inbox query (first page of
// 20, newest activity first) for one agent on 100,000 conversations and
// 1,000,000 messages, over HTTP as clients send it, for the RECENT and MINE
// views; the floor is one hand-written SQL statement returning the same
// page (same rows, order and fields, unread counts and total included), on
// the server's own connection pool. The two paths take turns.
func BenchmarkInboxQuery(b *testing.B) {
	defer results.timeIt(b)()
	name := b.Name()
	s := newRig(b)
	meter := s.meter
	w := apitest.NewWorkspace(b, s.Server, apitest.WorkspaceOption{})
	ctx := context.Background()
	db := s.App.DB.SQL
	extra := addAgents(b, s.Server, "owner", 4001, inboxOwners-4)
	owners := []int64{int64(apitest.Atoi(b, w.Ana.ID)), int64(apitest.Atoi(b, w.Ben.ID)), int64(apitest.Atoi(b, w.Cleo.ID)), int64(apitest.Atoi(b, w.Dan.ID))}
	for _, a := range extra {
		owners = append(owners, int64(a.ID))
	}
	ds := seedInbox(b, db, owners, [3]int64{owners[0], owners[1], owners[2]}, apitest.Atoi(b, w.QueueID), apitest.Atoi(b, w.WhatsApp), apitest.Atoi(b, w.LiveChat))
	var nConv, nMsg int
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM conversations), (SELECT count(*) FROM messages)`).Scan(&nConv, &nMsg); err != nil {
		b.Fatal(err)
	}
	fks := "foreign keys checked"
	if ds.skippedFKs {
		fks = "foreign-key triggers off while loading"
	}
	results.note(name, fmt.Sprintf("seeded %d conversations and %d messages in %s with bulk SQL (%s; then VACUUM ANALYZE)", nConv, nMsg, ds.took.Round(100*time.Millisecond), fks))

	ana := apitest.Atoi(b, w.Ana.ID)
	api := newGQLClient(s.Server, apitest.Contract(b), 2)
	defer api.close()
	query := func(view string) (inboxResponse, error) {
		var out inboxResponse
		r, err := api.op(ctx, w.Ana.Token, "Inbox", map[string]any{"view": view, "first": inboxPage})
		if err != nil {
			return out, err
		}
		if r.Code() != "" {
			return out, fmt.Errorf("Inbox %s: %s", view, r.Code())
		}
		err = json.Unmarshal(r.Data, &out)
		return out, err
	}

	// PARLEY_BENCH_EXPLAIN=file writes every statement with its plan there.
	var plans strings.Builder
	defer func() {
		if path := os.Getenv("PARLEY_BENCH_EXPLAIN"); path != "" {
			if err := os.WriteFile(path, []byte(plans.String()), 0o644); err != nil {
				b.Errorf("write plans: %v", err)
			}
		}
	}()
	views := []string{"RECENT", "MINE"}
	// Same page on both paths, and what the service sends to the database.
	for _, view := range views {
		var resp inboxResponse
		var err error
		stmts := meter.record(func() { resp, err = query(view) })
		if err != nil {
			b.Fatal(err)
		}
		fl, total, err := floorPage(ctx, db, view, ana)
		if err != nil {
			b.Fatalf("floor %s: %v", view, err)
		}
		if got := resp.rows(); fmt.Sprint(got) != fmt.Sprint(fl) || resp.Inbox.TotalCount != total {
			b.Errorf("%s: the service's page %v (total %d) is not the hand-written query's %v (total %d)", view, got, resp.Inbox.TotalCount, fl, total)
		}
		var times []string
		for i, st := range stmts {
			plan, err := explain(ctx, db, st)
			if err != nil {
				b.Fatalf("EXPLAIN %s statement %d: %v\n%s", view, i+1, err, st.Query)
			}
			times = append(times, fmt.Sprintf("%s %s", statementLabel(st), execMS(plan)))
			fmt.Fprintf(&plans, "-- %s statement %d\n%s\n-- args %v\n%s\n\n", view, i+1, st.Query, st.Args, plan)
		}
		plan, err := explain(ctx, db, statement{Query: inboxFloorSQL(view), Args: []any{ana, inboxPage + 1}})
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(&plans, "-- %s hand-written query\n%s\n-- args [%d %d]\n%s\n\n", view, inboxFloorSQL(view), ana, inboxPage+1, plan)
		results.note(name, fmt.Sprintf("%s: %d conversations visible to the agent; the service sends %d SQL statements per request, one after the other; "+
			"execution times by EXPLAIN ANALYZE, in ms: %s; the hand-written query: %s",
			view, total, len(stmts), strings.Join(times, ", "), execMS(plan)))
	}

	// Warm up both paths.
	for range 10 {
		for _, view := range views {
			if _, err := query(view); err != nil {
				b.Fatal(err)
			}
			if _, _, err := floorPage(ctx, db, view, ana); err != nil {
				b.Fatal(err)
			}
		}
	}
	svc := map[string][]time.Duration{}
	floor := map[string][]time.Duration{}
	for b.Loop() {
		for range inboxSamples {
			for _, view := range views {
				t0 := time.Now()
				if _, err := query(view); err != nil {
					b.Fatal(err)
				}
				svc[view] = append(svc[view], time.Since(t0))
				t0 = time.Now()
				if _, _, err := floorPage(ctx, db, view, ana); err != nil {
					b.Fatal(err)
				}
				floor[view] = append(floor[view], time.Since(t0))
			}
		}
	}
	for i, view := range views {
		ds, df := summarize(svc[view]), summarize(floor[view])
		b.ReportMetric(ms(ds.p50), strings.ToLower(view)+"-p50-ms")
		b.ReportMetric(ms(ds.p99), strings.ToLower(view)+"-p99-ms")
		fig := fmt.Sprintf("(4) Inbox %s, first %d, over HTTP", view, inboxPage)
		results.add(row{order: 40 + 2*i, figure: fig + " p50", measured: ms(ds.p50), floor: ms(df.p50), unit: "ms", floorWhat: "one hand-written SQL query p50"})
		results.add(row{order: 41 + 2*i, figure: fig + " p99", measured: ms(ds.p99), floor: ms(df.p99), unit: "ms", floorWhat: "one hand-written SQL query p99"})
		results.note(name, fmt.Sprintf("%s: service %s; hand-written %s", view, ds, df))
	}
	b.ReportMetric(0, "ns/op")
}

var execTime = regexp.MustCompile(`Execution Time: ([0-9.]+) ms`)

// execMS is a plan's execution time in ms, as EXPLAIN ANALYZE printed it.
func execMS(plan string) string {
	if m := execTime.FindStringSubmatch(plan); m != nil {
		return m[1]
	}
	return "?"
}

// statementLabel names a statement by its verb and main table ("SELECT
// COUNT conversations" for a count).
func statementLabel(st statement) string {
	l := statementMix([]statement{st})
	l = l[:strings.LastIndex(l, " ×")]
	if strings.Contains(st.Query, "COUNT(") {
		verb, table, _ := strings.Cut(l, " ")
		l = verb + " COUNT " + table
	}
	return l
}
