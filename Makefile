# Parley. `make run` starts a server on SQLite with a demo workspace;
# `make test` runs every test (PostgreSQL and Redis tests run when those
# services answer; CI requires them with PARLEY_REQUIRE_SERVICES=1).
GO ?= go

.PHONY: run build generate check-generated test bench lint node-deps playground

run:
	PARLEY_DEMO=$${PARLEY_DEMO:-true} $(GO) run ./cmd/parley serve

build:
	$(GO) build -o bin/parley ./cmd/parley

# Regenerates ent, graph/ent.graphql and the gqlgen code.
generate:
	$(GO) generate ./...

# Fails when the committed generated code is not what the generators write.
check-generated: generate
	@git diff --exit-code --stat -- ent graph gqlgen.yml schema.graphql go.mod go.sum || \
		(echo "generated code is stale: run 'make generate' and commit" >&2; exit 1)
	@test -z "$$(git status --porcelain -- ent graph)" || \
		(git status --porcelain -- ent graph; echo "generation produced untracked files" >&2; exit 1)

# Rebuilds the GraphQL playground's assets (internal/playground/assets) from
# the npm packages pinned in internal/playground/build; commit what changes.
# Building or running Parley never needs it: the assets are committed.
playground:
	npm ci --prefix internal/playground/build --no-audit --no-fund
	npm run --prefix internal/playground/build build

test: lint node-deps
	$(GO) test -race -count=1 -timeout 15m ./...

# The node programs some tests drive (the widget in Chromium, the graphql-ws
# reference client), installed from their lock files when missing.
NODE_DIRS := internal/widget/e2e internal/playground/e2e internal/apitest/wsclient
node-deps:
	@command -v npm >/dev/null || { echo "npm not found: tests that need node will skip (or fail under PARLEY_REQUIRE_SERVICES=1)"; exit 0; }; \
	for d in $(NODE_DIRS); do \
		test -d $$d/node_modules || npm ci --prefix $$d --no-audit --no-fund || exit 1; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); test -z "$$out" || (echo "gofmt needed:"; echo "$$out"; exit 1)
	$(GO) vet ./...
