package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-archive/cairn/audit"
	"github.com/cairn-archive/cairn/auth"
)

func userCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Accounts that read the archive: add, list, disable, enable, passwd",
		Long: `user manages the accounts of the IMAP view (and, later, the HTTP API).

Roles: auditor reads; legal also manages holds, exports and erasure; admin
also manages accounts. A scope limits what an account sees:
  all                     every message (the default)
  custodian:ADDR, ADDR    one custodian's messages
  domain:DOMAIN, @DOMAIN  every custodian under a domain
  case:ID                 the messages held for a litigation case
Every change is recorded in the audit log first; without it, nothing changes.`,
	}
	var role string
	var scopes []string
	var stdin bool
	add := &cobra.Command{
		Use:   "add NAME --role auditor|legal|admin [--scope ...] [--password-stdin]",
		Short: "Create an account (a strong password is generated and printed once, unless --password-stdin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := auth.ParseRole(role)
			if err != nil {
				return err
			}
			scope := auth.ScopeAll
			if len(scopes) > 0 {
				if scope, err = auth.ParseScope(scopes...); err != nil {
					return err
				}
				if scope.Empty() {
					return fmt.Errorf("--scope selects nothing")
				}
			}
			name, err := auth.NormalizeName(args[0])
			if err != nil {
				return err
			}
			pw, generated, err := readPassword(cmd.InOrStdin(), stdin)
			if err != nil {
				return err
			}
			return withAccounts(cmd, name, fmt.Sprintf("add role=%s scope=%s", r, scope), func(ctx context.Context, db *auth.DB) error {
				if _, err := db.Add(ctx, name, r, scope, pw); err != nil {
					return err
				}
				fmt.Printf("added %s (%s, scope %s)\n", name, r, scope)
				if generated {
					fmt.Printf("password: %s\n(shown once; it is stored only as an argon2id hash)\n", pw)
				}
				return nil
			})
		},
	}
	add.Flags().StringVar(&role, "role", "", "auditor, legal or admin (required)")
	add.Flags().StringArrayVar(&scopes, "scope", nil, "what the account sees; repeatable (default all)")
	add.Flags().BoolVar(&stdin, "password-stdin", false, "read the password from the first line of standard input")
	add.MarkFlagRequired("role")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the accounts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := setup(cmd)
			if err != nil {
				return err
			}
			db, err := openAccounts(cfg)
			if err != nil {
				return err
			}
			defer db.Close()
			users, err := db.List(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tROLE\tSCOPE\tSTATUS\tCREATED\tUPDATED")
			for _, u := range users {
				status := "enabled"
				if u.Disabled {
					status = "disabled"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", u.Name, u.Role, u.Scope, status,
					u.Created.Format("2006-01-02 15:04"), u.Updated.Format("2006-01-02 15:04"))
			}
			return w.Flush()
		},
	}
	setDisabled := func(disable bool) *cobra.Command {
		verb := map[bool]string{true: "disable", false: "enable"}[disable]
		return &cobra.Command{
			Use:   verb + " NAME",
			Short: map[bool]string{true: "Disable an account: no login; its open sessions end", false: "Enable a disabled account again"}[disable],
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				name, err := auth.NormalizeName(args[0])
				if err != nil {
					return err
				}
				return withAccounts(cmd, name, verb, func(ctx context.Context, db *auth.DB) error {
					if err := db.SetDisabled(ctx, name, disable); err != nil {
						return err
					}
					fmt.Printf("%sd %s\n", verb, name)
					return nil
				})
			},
		}
	}
	var passwdStdin bool
	passwd := &cobra.Command{
		Use:   "passwd NAME [--password-stdin]",
		Short: "Set an account's password (generated and printed once, unless --password-stdin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := auth.NormalizeName(args[0])
			if err != nil {
				return err
			}
			pw, generated, err := readPassword(cmd.InOrStdin(), passwdStdin)
			if err != nil {
				return err
			}
			return withAccounts(cmd, name, "passwd", func(ctx context.Context, db *auth.DB) error {
				if err := db.SetPassword(ctx, name, pw); err != nil {
					return err
				}
				fmt.Printf("password of %s changed\n", name)
				if generated {
					fmt.Printf("password: %s\n(shown once)\n", pw)
				}
				return nil
			})
		},
	}
	passwd.Flags().BoolVar(&passwdStdin, "password-stdin", false, "read the password from the first line of standard input")
	cmd.AddCommand(add, list, setDisabled(true), setDisabled(false), passwd, tokenCmd())
	return cmd
}

// readPassword reads the first line of r when fromStdin, else generates a
// password (generated true).
func readPassword(r io.Reader, fromStdin bool) (pw string, generated bool, err error) {
	if !fromStdin {
		return auth.GeneratePassword(), true, nil
	}
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", false, fmt.Errorf("--password-stdin: %w", err)
	}
	pw = strings.TrimRight(line, "\r\n")
	if err := auth.CheckPasswordPolicy(pw); err != nil {
		return "", false, err
	}
	return pw, false, nil
}

// withAccounts records a user.change event, then makes the change (so no
// change goes unaudited), and records its failure if it fails.
func withAccounts(cmd *cobra.Command, name, note string, change func(context.Context, *auth.DB) error) error {
	cfg, err := setup(cmd)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	objs, k, err := openParts(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeObjects(objs)
	alog, err := openAudit(cfg, objs, k, auditRecord)
	if err != nil {
		return fmt.Errorf("audit log: %w (account changes are audited, so nothing changed)", err)
	}
	defer alog.Close()
	db, err := openAccounts(cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	actor, source := cliActor()
	ev := audit.Event{Action: audit.ActionUserChange, Outcome: audit.OutcomeSuccess, Actor: actor, Source: source,
		Target: audit.Target{User: name}, Details: audit.Details{Note: note}}
	if _, err := alog.Record(ctx, ev); err != nil {
		return fmt.Errorf("audit log: %w (account changes are audited, so nothing changed)", err)
	}
	if err := change(ctx, db); err != nil {
		ev.ID, ev.Time, ev.Outcome, ev.Reason = "", time.Time{}, audit.OutcomeFailure, err.Error()
		alog.Record(ctx, ev)
		return err
	}
	return nil
}
