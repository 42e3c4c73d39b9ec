// Package cli holds what the bench commands (orderflow-bench,
// orderflow-capacity, orderflow-failover) share: their -brokers flag and
// their main.
package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Main runs a command's body with a context that SIGINT and SIGTERM end; an
// error is printed after the command's name and exits 1.
func Main(name string, run func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// BrokersFlag defines -brokers on the default flag set: seed brokers, by
// default $KAFKA_BROKERS.
func BrokersFlag() *string {
	return flag.String("brokers", os.Getenv("KAFKA_BROKERS"), "seed brokers HOST:PORT[,...] (default $KAFKA_BROKERS)")
}

// Brokers splits a -brokers value at commas and spaces; none is an error
// naming target, the make target that starts a broker of its own.
func Brokers(s, target string) ([]string, error) {
	b := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
	if len(b) == 0 {
		return nil, fmt.Errorf("no brokers: give -brokers or KAFKA_BROKERS (make %s starts a broker)", target)
	}
	return b, nil
}
