package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes. They are part of the command's interface: scripts and the
// demo branch on them.
const (
	exitOK          = 0   // every request succeeded (or the command did its job)
	exitFailed      = 1   // a deploy failed or was rejected, nothing to act on, or NATS could not be used
	exitUsage       = 2   // bad flags, unreadable source, invalid request, purge without --yes: nothing done
	exitTimeout     = 3   // --timeout passed before every request ended
	exitInterrupted = 130 // SIGINT/SIGTERM while submitting or waiting (128+SIGINT, as shells do)
)

// rootLong heads `enqueue --help`, and rootFooter ends it: what the
// output looks like, and the exit statuses scripts may rely on. Each
// command's details are in its own help (enqueue help submit, enqueue dlq
// replay --help).
const rootLong = `enqueue publishes deploy requests to deployq and follows their progress.`

const rootFooter = `Output: on a terminal, submit --wait keeps a live table (the phase in
progress and its time so far) in colour; NO_COLOR=1 turns colour off,
TERM=dumb or a pipe gives one line per event.

Exit status:
  0  every request succeeded (status, watch, cancel, dlq: the command worked)
  1  a request failed or was rejected; status of an unknown id; cancel of a
     finished job; dlq show/replay of an id without a dead letter, or a
     replay that could not be published; NATS unusable
  2  usage or configuration error: bad flag, unreadable source, invalid request,
     dlq purge without --yes (nothing was submitted or deleted)
  3  --timeout passed before every request ended
  130 interrupted while submitting or waiting; submitted requests still run`

// usageTemplate is every command's usage. A command's own flags are
// listed; the connection flags, the same for every command, only in
// enqueue --help, so that a command's help shows what is particular to it.
const usageTemplate = `Usage:{{if and .Runnable (not .HasAvailableSubCommands)}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} <command> [flags]{{end}}{{if gt (len .Aliases) 0}}

Aliases:
  {{.NameAndAliases}}{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}

Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if .HasParent}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}

Connection flags (--nats-url, --nats-creds, --nats-tenant, …) go before or
after the command: enqueue --help lists them.{{else}}

Connection flags (before or after the command):
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableSubCommands}}

Run "{{.CommandPath}} <command> --help" for a command's flags.{{end}}{{if not .HasParent}}

{{index .Annotations "footer"}}{{end}}
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// env is everything run takes from the process, so tests can call run
// with their own.
type env struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
}

// run executes one command line and returns the process exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	e := env{getenv: getenv, stdout: stdout, stderr: stderr}
	var conn natsConfig
	root := rootCommand(ctx, e, &conn)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteC()
	var status exitStatus
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &status):
		// The command has said what went wrong.
		return int(status)
	}
	// A mistake cobra found on the command line: an unknown command or
	// flag, a flag without its value.
	fmt.Fprintf(stderr, "%s: %v\nRun \"%s --help\" for usage.\n", cmd.CommandPath(), err, cmd.CommandPath())
	return exitUsage
}

// rootCommand is the command tree. Flags are bound to variables the
// commands' run functions read, conn among them; the commands run under
// ctx, which SIGINT and SIGTERM cancel.
func rootCommand(ctx context.Context, e env, conn *natsConfig) *cobra.Command {
	root := &cobra.Command{
		Use:   "enqueue",
		Short: "publish deploy requests to deployq and follow their progress",
		Long:  rootLong,
		Example: `  enqueue submit --tenant acme --source ./app --wait
  enqueue status 3f0c… --tenant acme
  enqueue watch --tenant acme --id 3f0c… --logs
  enqueue stats
  source <(enqueue completion bash)`,
		Annotations: map[string]string{"footer": rootFooter},
		// Errors and usage are reported by run and the commands, each
		// with its exit status.
		SilenceErrors: true,
		SilenceUsage:  true,
		// The environment fills the connection flags not given: it is
		// read after parsing so that help never prints a NATS_URL's
		// password as a default.
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			conn.fillFromEnv(e.getenv, cmd.Flags().Changed)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			// No command: the usage, as a mistake (stderr, status 2).
			cmd.SetOut(e.stderr)
			_ = cmd.Help()
			return exitStatus(exitUsage)
		},
	}
	root.SetUsageTemplate(usageTemplate)
	conn.register(root.PersistentFlags())
	root.AddCommand(
		submitCommand(ctx, e, conn),
		statusCommand(ctx, e, conn),
		watchCommand(ctx, e, conn),
		cancelCommand(ctx, e, conn),
		statsCommand(ctx, e, conn),
		claimCommand(ctx, e, conn),
		appsCommand(ctx, e, conn),
		dlqCommand(ctx, e, conn),
	)
	return root
}

// exitStatus is a command's non-zero exit status, carried out of cobra as
// an error once the command has reported why.
type exitStatus int

func (s exitStatus) Error() string { return "exit status " + strconv.Itoa(int(s)) }

// command gives c a run function that returns an exit status, as every
// command here does.
func command(c *cobra.Command, run func(args []string) int) *cobra.Command {
	c.RunE = func(_ *cobra.Command, args []string) error {
		if code := run(args); code != exitOK {
			return exitStatus(code)
		}
		return nil
	}
	return c
}

// group is a command that only holds subcommands (apps, dlq): without
// one, or with an unknown one, it says so and exits 2, where cobra
// alone would print help and succeed.
func group(e env, c *cobra.Command, subs ...*cobra.Command) *cobra.Command {
	c.AddCommand(subs...)
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			fmt.Fprintf(e.stderr, "%s: unknown subcommand %q\n", cmd.CommandPath(), args[0])
		}
		cmd.SetOut(e.stderr)
		_ = cmd.Usage()
		return exitStatus(exitUsage)
	}
	return c
}

// completeWords completes a flag's value from a fixed list.
func completeWords(words ...string) cobra.CompletionFunc {
	return cobra.FixedCompletions(words, cobra.ShellCompDirectiveNoFileComp)
}

// usageError is a mistake on the command line, reported with exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}
