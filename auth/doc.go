// Package auth holds Cairn's accounts: who may read the archive (the IMAP
// view now, the HTTP API later), with which role and scope, how they prove
// it (passwords; API tokens for the HTTP API), and what each account
// keeps of its own (its flags on messages).
//
// Accounts live in <data_dir>/access.db, a SQLite database apart from the
// message index: the index is derived from the object store and rebuilt by
// `cairn reindex`, while accounts and annotations are the only state of
// their own that readers have, and must survive a reindex.
//
// Invariants:
//   - Passwords are stored only as argon2id hashes (RFC 9106) in the PHC
//     string format; the parameters travel with each hash, so they can be
//     raised without invalidating existing passwords.
//   - Authenticate gives the same answer, ErrAuthFailed, after the same
//     work (one argon2id evaluation) for an unknown user, a disabled user, a
//     wrong password and a throttled attempt, so that the answer tells an
//     attacker nothing about which accounts exist.
//   - Failed attempts slow down further attempts per client address and
//     per user name (Limiter); memory for this is bounded.
//   - Password hashing runs at most MaxConcurrentHashes at a time, so that
//     a burst of logins cannot exhaust memory (each hash takes 19 MiB).
//   - API tokens (token.go) authenticate programs to the HTTP API. A token
//     belongs to an account, carries a role no higher than the account's
//     (checked again at each use), is stored only as a SHA-256 of its
//     160-bit secret, can be revoked and can expire. Failed token
//     attempts are throttled per client address by the same Limiter.
//   - Flags are annotations of one account on one message (table flags):
//     they never touch the archive, and another account never sees them.
package auth
