// Command parley runs the Parley server.
//
//	parley [serve]       run the server (the default)
//	parley migrate       bring the database schema up to date and exit
//	parley create-agent  add an agent (bootstrapping, scripts)
//	parley reencrypt-secrets
//	                     seal every stored credential with the current key
//
// Configuration comes from the environment; see the README.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/app"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/seed"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/workspace"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "parley:", err)
		os.Exit(1)
	}
}

// run runs one command until it is done or ctx ends (SIGTERM).
func run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	cfg, err := config.FromEnv()
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogLevel)
	switch cmd {
	case "serve":
		return serve(ctx, cfg, log, stdout)
	case "migrate":
		db, err := store.Open(ctx, cfg.DatabaseURL, cfg.SQLitePath())
		if err != nil {
			return err
		}
		defer db.Close()
		if err := db.Migrate(ctx); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "database schema is up to date (%s)\n", db.Dialect)
		return nil
	case "create-agent":
		return createAgent(ctx, cfg, log, args, stdin, stdout)
	case "reencrypt-secrets":
		return reencryptSecrets(ctx, cfg, log, stdout)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, "usage: parley [serve|migrate|create-agent|reencrypt-secrets] (configuration: see README)")
		return nil
	}
	return fmt.Errorf("unknown command %q (serve, migrate, create-agent, reencrypt-secrets)", cmd)
}

func serve(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer) error {
	a, err := app.New(ctx, cfg, log, app.Options{})
	if err != nil {
		return err
	}
	defer a.Close()
	a.Start()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	var metricsLn net.Listener
	if cfg.MetricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			ln.Close()
			return fmt.Errorf("PARLEY_METRICS_ADDR: %w", err)
		}
		log.Info("serving metrics", "addr", metricsLn.Addr().String())
	}
	banner(stdout, cfg, a)
	log.Info("listening", "addr", ln.Addr().String(), "database", a.DB.Dialect, "redis", cfg.RedisURL != "")
	// Both servers stop together: at SIGTERM, or when either fails.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const grace = 15 * time.Second
	errc := make(chan error, 2)
	go func() { errc <- a.Server.Serve(ctx, ln, grace) }()
	if metricsLn != nil {
		go func() { errc <- a.Server.ServeMetrics(ctx, metricsLn, grace) }()
	}
	err = <-errc
	cancel()
	if metricsLn != nil {
		err = errors.Join(err, <-errc)
	}
	return err
}

// banner tells a newcomer where to go and how to log in.
func banner(w io.Writer, cfg config.Config, a *app.App) {
	fmt.Fprintf(w, "\nParley is running.\n  GraphQL playground: %s/\n  GraphQL endpoint:   %s/graphql\n  Website chat demo:  %s/demo\n",
		cfg.PublicURL, cfg.PublicURL, cfg.PublicURL)
	if cfg.DatabaseURL == "" {
		fmt.Fprintf(w, "  Database:           %s (SQLite)\n", cfg.SQLitePath())
	}
	if len(a.DemoLogins) > 0 {
		fmt.Fprintf(w, "\nDemo workspace seeded. Every demo login has the password %q:\n", seed.DemoPassword)
		for _, l := range a.DemoLogins {
			fmt.Fprintf(w, "  %-28s %-13s ext %-4s %s\n", l.Email, l.Role, l.Extension, l.Name)
		}
		fmt.Fprintf(w, "\nIn the playground, run:\n  mutation { login(input: {email: %q, password: %q}) { token } }\n"+
			"then set the header {\"Authorization\": \"Bearer <token>\"}.\n\n", a.DemoLogins[0].Email, seed.DemoPassword)
	}
}

func createAgent(ctx context.Context, cfg config.Config, log *slog.Logger, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("create-agent", flag.ContinueOnError)
	name := fs.String("name", "", "full name (required)")
	email := fs.String("email", "", "email, the login name (required)")
	ext := fs.String("extension", "", "extension number (required)")
	role := fs.String("role", "AGENT", "AGENT, GROUP_OWNER, ADMIN or SYSTEM_OWNER")
	maxChats := fs.Int("max-chats", 5, "maximum concurrent chats")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" || *email == "" || *ext == "" {
		return errors.New("create-agent needs -name, -email and -extension")
	}
	// The password never goes on the command line, where ps and shell
	// history would see it: PARLEY_NEW_PASSWORD or the first line of stdin.
	password := os.Getenv("PARLEY_NEW_PASSWORD")
	if password == "" {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && line == "" {
			return errors.New("give the password in PARLEY_NEW_PASSWORD or on standard input")
		}
		password = strings.TrimRight(line, "\r\n")
	}
	cfg.Demo = false
	a, err := app.New(ctx, cfg, log, app.Options{})
	if err != nil {
		return err
	}
	defer a.Close()
	ag, err := a.Workspace.CreateAgentUnchecked(ctx, workspace.NewAgent{
		Name: *name, Email: *email, Extension: *ext, Role: schematype.Role(strings.ToUpper(*role)),
		Password: password, MaxConcurrentChats: maxChats,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created agent %d: %s <%s> ext %s, %s\n", ag.ID, ag.Name, ag.Email, ag.Extension, ag.Role)
	return nil
}

// reencryptSecrets seals every channel account's credentials with
// PARLEY_SECRET_KEY: after a rotation (the old key in
// PARLEY_SECRET_KEY_OLD) and for plaintext rows from before encryption.
func reencryptSecrets(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer) error {
	cfg.Demo = false
	a, err := app.New(ctx, cfg, log, app.Options{})
	if err != nil {
		return err
	}
	defer a.Close()
	resealed, total, err := a.Workspace.ResealCredentials(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "resealed the credentials of %d of %d channel accounts with key %s\n", resealed, total, a.Secrets.CurrentID())
	return nil
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}
