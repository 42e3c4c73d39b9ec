package processor

import (
	"context"

	"github.com/twmb/franz-go/pkg/kadm"
)

// CheckTopics checks the topic layout without changing anything.
func CheckTopics(ctx context.Context, adm *kadm.Client, cfg Config) error {
	changelog, err := CurrentChangelog(ctx, adm, cfg)
	if err != nil {
		return err
	}
	return checkTopics(ctx, adm, cfg, changelog)
}

// Stalled returns the owned input partitions whose last batches all failed.
func (p *Processor) Stalled() []int32 { return p.stalled() }
