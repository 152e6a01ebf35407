package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func keyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "Archive keys: rotation and listing"}
	cmd.AddCommand(&cobra.Command{
		Use:   "rotate",
		Short: "Add a new archive identity and key-encryption key for new messages",
		Long: `rotate appends a new age identity to the archive key file and stores a new
key-encryption key encrypted to it (and to the escrow recipients). New
messages are wrapped under the new key; older messages stay readable with
the older identities, which the file keeps.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := setup(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			lock, err := lockDataDir(cfg.DataDir)
			if err != nil {
				return err
			}
			defer lock.Close()
			objs, k, err := openParts(ctx, cfg)
			if err != nil {
				return err
			}
			defer closeObjects(objs)
			escrow, err := escrowRecipients(cfg)
			if err != nil {
				return err
			}
			kek, err := k.ring.Rotate(ctx, objs, k.ids, escrow)
			if err != nil {
				return err
			}
			fmt.Printf("new key-encryption key %s, encrypted to %s; %d identities in %s\n",
				kek.IDString(), k.ids.Current().Recipient(), len(k.ids.Identities), k.ids.Path)
			return nil
		},
	}, &cobra.Command{
		Use:   "list",
		Short: "List the key-encryption keys and the public keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := setup(cmd)
			if err != nil {
				return err
			}
			objs, k, err := openParts(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer closeObjects(objs)
			for _, kek := range k.ring.KEKs() {
				mark := ""
				if kek == k.ring.Current() {
					mark = " (current)"
				}
				fmt.Printf("kek %s created %s%s\n", kek.IDString(), kek.Created.Format("2006-01-02 15:04:05Z"), mark)
			}
			for _, id := range k.ids.Identities {
				fmt.Printf("identity %s\n", id.Recipient())
			}
			fmt.Printf("ledger public key %s\n", k.signing.VerifierKey)
			return nil
		},
	})
	return cmd
}
