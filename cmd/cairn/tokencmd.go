package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-archive/cairn/auth"
)

// tokenCmd is `cairn user token`: the HTTP API's bearer tokens.
func tokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "API tokens for the HTTP API: create, list, revoke",
		Long: `token manages the bearer tokens programs send to the HTTP API
(Authorization: Bearer <token>).

A token belongs to an account and acts with a role no higher than the
account's: metrics (reads /metrics only: for Prometheus), auditor (search
and read within the account's scope), legal (also holds, erasure,
exports), admin (also accounts). Disabling or demoting the account
narrows or ends its tokens at once. The token is printed once; only a hash
is kept. Every change is recorded in the audit log first.`,
	}
	var role, label, expires string
	create := &cobra.Command{
		Use:   "create NAME [--role metrics|auditor|legal|admin] [--label TEXT] [--expires 90d]",
		Short: "Create a token for account NAME (printed once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := auth.NormalizeName(args[0])
			if err != nil {
				return err
			}
			var r auth.Role
			if role != "" {
				if r, err = auth.ParseTokenRole(role); err != nil {
					return err
				}
			}
			var exp time.Time
			if expires != "" && expires != "0" && expires != "never" {
				d, err := parseExpiry(expires)
				if err != nil {
					return fmt.Errorf("--expires: %w", err)
				}
				exp = time.Now().Add(d)
			}
			note := fmt.Sprintf("token create role=%s label=%q expires=%s", orDefault(string(r), "(account's)"), label, orDefault(expires, "never"))
			return withAccounts(cmd, name, note, func(ctx context.Context, db *auth.DB) error {
				if r == "" {
					u, err := db.Get(ctx, name)
					if err != nil {
						return err
					}
					r = u.Role
				}
				secret, t, err := db.CreateToken(ctx, name, label, r, exp)
				if err != nil {
					return err
				}
				fmt.Fprintf(os.Stderr, "created token %s for %s (role %s", t.ID, t.User, t.Role)
				if !t.Expires.IsZero() {
					fmt.Fprintf(os.Stderr, ", expires %s", t.Expires.Format(time.RFC3339))
				}
				fmt.Fprintf(os.Stderr, ")\nshown once; only its hash is kept. Send it as: Authorization: Bearer <token>\n")
				fmt.Println(secret)
				return nil
			})
		},
	}
	create.Flags().StringVar(&role, "role", "", "metrics, auditor, legal or admin; at most the account's role (default the account's role)")
	create.Flags().StringVar(&label, "label", "", "what the token is for (\"prometheus\", \"review tool\")")
	create.Flags().StringVar(&expires, "expires", "", "lifetime: 90d, 12w, 1y, 36h; default never")

	list := &cobra.Command{
		Use:   "list [NAME]",
		Short: "List the tokens (of one account, or of all)",
		Args:  cobra.MaximumNArgs(1),
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
			user := ""
			if len(args) == 1 {
				user = args[0]
			}
			toks, err := db.Tokens(cmd.Context(), user)
			if err != nil {
				return err
			}
			now := time.Now()
			day := func(t time.Time) string {
				if t.IsZero() {
					return "-"
				}
				return t.Local().Format("2006-01-02 15:04")
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tUSER\tROLE\tLABEL\tSTATUS\tCREATED\tEXPIRES\tLAST USED")
			for _, t := range toks {
				status := "active"
				switch {
				case !t.Revoked.IsZero():
					status = "revoked"
				case !t.Active(now):
					status = "expired"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.User, t.Role, orDefault(t.Label, "-"), status,
					day(t.Created), day(t.Expires), day(t.LastUsed))
			}
			return w.Flush()
		},
	}

	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token: its next request is refused",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := setup(cmd)
			if err != nil {
				return err
			}
			db, err := openAccounts(cfg)
			if err != nil {
				return err
			}
			t, err := db.GetToken(cmd.Context(), args[0])
			db.Close()
			if err != nil {
				return err
			}
			return withAccounts(cmd, t.User, "token revoke id="+t.ID, func(ctx context.Context, db *auth.DB) error {
				if err := db.RevokeToken(ctx, t.ID); err != nil {
					return err
				}
				fmt.Printf("revoked token %s of %s\n", t.ID, t.User)
				return nil
			})
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

// parseExpiry reads a token lifetime: a Go duration (36h) or a number of
// days, weeks or years (90d, 12w, 1y).
func parseExpiry(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, nil
	}
	units := map[byte]time.Duration{'d': 24 * time.Hour, 'w': 7 * 24 * time.Hour, 'y': 365 * 24 * time.Hour}
	if len(s) >= 2 {
		if u, ok := units[s[len(s)-1]]; ok {
			if n, err := strconv.Atoi(s[:len(s)-1]); err == nil && n > 0 && n <= 100*365 {
				return time.Duration(n) * u, nil
			}
		}
	}
	return 0, fmt.Errorf("%q: want a lifetime such as 90d, 12w, 1y or 36h", s)
}
