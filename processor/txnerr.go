package processor

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// txnError classifies an error of beginning or ending a transaction of
// thread's session (what says which). Those that retrying cannot fix end Run:
//
//   - PRODUCER_FENCED: a newer producer took over the transactional id.
//     Another instance runs with this instance id, and a new session would
//     fence it in turn, and so on: the fenced instance stops instead. It
//     shows when the transaction ends, or when the next one begins (the
//     client fails to recover its producer id).
//   - TRANSACTIONAL_ID_AUTHORIZATION_FAILED: the ACLs do not let this
//     principal use the transactional id.
//   - INVALID_TRANSACTION_TIMEOUT: the brokers refuse the transaction
//     timeout (more than their transaction.max.timeout.ms), a
//     configuration error.
//
// Other errors are returned as they are, for a new session.
func (p *Processor) txnError(thread int, what string, err error) error {
	switch {
	case errors.Is(err, kerr.ProducerFenced):
		return fmt.Errorf("%w: %s: %w: fenced: a newer producer took over transactional id %q, so another instance runs with instance id %q; this one stops rather than fence it in turn (give every instance its own Config.InstanceID)",
			ErrFatal, what, err, p.transactionalID(thread), p.cfg.InstanceID)
	case errors.Is(err, kerr.TransactionalIDAuthorizationFailed):
		return fmt.Errorf("%w: %s: %w (check the ACLs: the principal needs WRITE on the transactional id %q)", ErrFatal, what, err, p.transactionalID(thread))
	case errors.Is(err, kerr.InvalidTransactionTimeout):
		return fmt.Errorf("%w: %w: %s: the brokers refuse the transaction timeout %v: it must be at most their transaction.max.timeout.ms (15m by default); lower Config.TransactionTimeout or raise transaction.max.timeout.ms: %w",
			ErrFatal, ErrConfig, what, p.cfg.TransactionTimeout, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
