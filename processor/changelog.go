package processor

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/orderflow/orderflow/internal/kread"
	"github.com/orderflow/orderflow/statestore"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrChangelogLost is matched by the error that stops Run when the store
// holds state of a changelog topic that no longer exists: the changelog was
// deleted, or deleted and created again (it has another topic ID). Starting
// anyway would throw the store's state away and refuse later events of its
// orders as unknown_order. It matches ErrTopology too.
var ErrChangelogLost = fmt.Errorf("%w: the changelog the state store was built from is gone", ErrTopology)

// HeaderReseedOffset is on the records a reseed writes: the store's offset
// in the lost changelog, so that of two stores holding one partition the
// later copy wins (see Config.ReseedChangelog).
const HeaderReseedOffset = "orderflow.reseed.offset"

// prepareTopics runs EnsureTopics, except that a missing changelog is not
// created while the store holds orders (unless it is to be reseeded), and
// checks that the store's state came from the live changelog: a store
// holding orders of a lost changelog is reseeded (Config.ReseedChangelog)
// or refused with ErrChangelogLost. It records the live changelog in the
// store.
func (p *Processor) prepareTopics(ctx context.Context) error {
	changelog, err := CurrentChangelog(ctx, p.adm, p.cfg) // changelogs.go
	if err != nil {
		return err
	}
	p.changelog = changelog
	holds, err := p.store.HoldsOrders()
	if err != nil {
		return fmt.Errorf("%w: reading the state store: %w", ErrFatal, err)
	}
	src, recorded, err := p.store.Source()
	if err != nil {
		return fmt.Errorf("%w: reading the state store: %w", ErrFatal, err)
	}
	keep := holds && !p.cfg.ReseedChangelog
	if keep {
		td, err := p.adm.ListTopics(ctx)
		if err != nil {
			return fmt.Errorf("listing topics: %w", err)
		}
		if d, ok := td[p.changelog]; !ok || d.Err != nil {
			return p.lost(fmt.Sprintf("changelog topic %s does not exist (it was deleted)", p.changelog))
		}
	}
	if err := ensureTopics(ctx, p.adm, p.cfg, !keep); err != nil {
		return err
	}
	td, err := p.adm.ListTopics(ctx, p.changelog)
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	live := statestore.ChangelogSource{Topic: p.changelog, ID: td[p.changelog].ID}
	if recorded && src == live {
		return nil
	}
	parts, err := p.store.Partitions()
	if err != nil {
		return fmt.Errorf("%w: reading the state store: %w", ErrFatal, err)
	}
	if p.relayout(src, recorded, live) {
		// The state moved to another partition count: this store's
		// partitions are the old layout's. Restores rebuild them from the
		// new changelog.
		p.log.Info("the input was repartitioned since this store was written: dropping its state, the partitions are restored from the new changelog",
			"store_changelog", src.Topic, "changelog", live.Topic, "partitions_dropped", len(parts))
		return p.store.Adopt(live, nil, parts)
	}
	why := ""
	switch {
	case recorded && src.Topic != live.Topic:
		why = fmt.Sprintf("the state store holds state of changelog %s, not %s", src.Topic, live.Topic)
	case recorded:
		why = fmt.Sprintf("changelog topic %s was deleted and created again (topic ID %s, the store's state came from topic ID %s)",
			live.Topic, kadm.TopicID(live.ID), kadm.TopicID(src.ID))
	default:
		// A store written before sources were recorded: its offsets must
		// all lie within the live changelog.
		why, err = p.beyondEnd(ctx, parts)
		if err != nil {
			return err
		}
	}
	switch {
	case why == "" || !holds:
		// Nothing to lose: forget offsets of another topic, so restores
		// read the live changelog from its start.
		var drop []int32
		if why != "" {
			drop = parts
		}
		return p.store.Adopt(live, nil, drop)
	case !p.cfg.ReseedChangelog:
		return p.lost(why)
	}
	p.log.Warn("reseeding the changelog from the state store", "reason", why, "changelog", live.Topic)
	return p.reseed(ctx, live, parts)
}

// relayout reports whether a store whose changelog source is src (recorded
// or not) holds the state of an earlier layout of the application than
// live: another of its changelogs, or none recorded while live is one that
// repartition wrote (stores that predate recorded sources).
func (p *Processor) relayout(src statestore.ChangelogSource, recorded bool, live statestore.ChangelogSource) bool {
	if !recorded {
		return live.Topic != ChangelogTopic(p.cfg.AppID)
	}
	if src.Topic == live.Topic {
		return false
	}
	first := ChangelogTopic(p.cfg.AppID)
	return src.Topic == first || strings.HasPrefix(src.Topic, first+"-") && isCount(src.Topic[len(first)+1:])
}

// lost is the ErrChangelogLost error of why, with the ways out.
func (p *Processor) lost(why string) error {
	return fmt.Errorf("%w: %s, while the state store in %s holds orders. Starting would discard them and refuse their later events as unknown_order. "+
		"Either keep the store and write its states to the changelog: run once with Config.ReseedChangelog set (it reseeds and exits) on every instance whose store holds state, then start them as usual; "+
		"or start from an empty store: stop the instance and delete %s (the orders' states are lost)",
		ErrChangelogLost, why, p.cfg.StateDir, p.cfg.StateDir)
}

// beyondEnd describes the first stored partition whose offset lies beyond
// the end of the live changelog ("" if none does).
func (p *Processor) beyondEnd(ctx context.Context, parts []int32) (string, error) {
	ends, err := p.adm.ListEndOffsets(ctx, p.changelog)
	if err != nil {
		return "", fmt.Errorf("listing the end offsets of %s: %w", p.changelog, err)
	}
	for _, part := range parts {
		next, _, err := p.store.ChangelogOffset(part)
		if err != nil {
			return "", fmt.Errorf("%w: reading the state store: %w", ErrFatal, err)
		}
		if o, ok := ends.Lookup(p.changelog, part); ok && o.Err == nil && next > o.Offset {
			return fmt.Sprintf("changelog %s partition %d ends at offset %d, but the state store holds its state up to offset %d (the topic was deleted and created again)",
				p.changelog, part, o.Offset, next), nil
		}
	}
	return "", nil
}

// seeded is what the live changelog holds of one partition before a reseed.
type seeded struct {
	best    int64               // highest HeaderReseedOffset seen (-1: none)
	resumed bool                // a record without it: processing went on
	keys    map[string]struct{} // keys written
}

// reseed writes every state the store holds to the live changelog, then
// records the changelog in the store with each partition's offset at the
// changelog's end, so that a restore reads nothing back. Each record
// carries the store's offset in the lost changelog (HeaderReseedOffset). A
// partition whose live changelog already holds a later copy (another
// store's, of a higher offset), or records processed since, is dropped from
// this store instead: it is restored from the changelog when assigned. A
// reseed killed halfway leaves the store as it was; running it again
// writes the same records again, which compaction folds.
func (p *Processor) reseed(ctx context.Context, live statestore.ChangelogSource, parts []int32) error {
	found := map[int32]*seeded{}
	err := kread.ReadCommitted(ctx, p.cfg.Brokers, p.cfg.KafkaOpts, p.changelog, func(r *kgo.Record) error {
		s := found[r.Partition]
		if s == nil {
			s = &seeded{best: -1, keys: map[string]struct{}{}}
			found[r.Partition] = s
		}
		s.keys[string(r.Key)] = struct{}{}
		o, ok := reseedOffset(r)
		s.resumed = s.resumed || !ok
		s.best = max(s.best, o)
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading changelog %s: %w", p.changelog, err)
	}
	cl, err := kgo.NewClient(append(p.connOpts(), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		return fmt.Errorf("%w: kafka client: %w", ErrConfig, err)
	}
	defer cl.Close()
	var (
		drop    []int32
		written []int32
		records int
	)
	for _, part := range parts {
		old, _, err := p.store.ChangelogOffset(part)
		if err != nil {
			return fmt.Errorf("%w: reading the state store: %w", ErrFatal, err)
		}
		s := found[part]
		if s != nil && (s.resumed || s.best > old) {
			p.log.Warn("reseed: the changelog holds a later copy of a partition; dropping this store's", "partition", part, "store_offset", old)
			drop = append(drop, part)
			continue
		}
		hdr := []kgo.RecordHeader{{Key: HeaderReseedOffset, Value: strconv.AppendInt(nil, old, 10)}}
		var (
			mu   sync.Mutex
			perr error
		)
		produce := func(key, value []byte) {
			records++
			r := &kgo.Record{Topic: p.changelog, Partition: part, Key: key, Value: value, Headers: hdr}
			cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
				mu.Lock()
				perr = cmp.Or(perr, err)
				mu.Unlock()
			})
		}
		err = p.store.EachState(part, func(id, value []byte) error {
			if s != nil {
				delete(s.keys, string(id))
			}
			produce(bytes.Clone(id), bytes.Clone(value))
			return nil
		})
		if s != nil {
			// Orders an earlier copy (another store's) wrote that this
			// store no longer holds: deleted since.
			for id := range s.keys {
				produce([]byte(id), nil)
			}
		}
		if ferr := cl.Flush(ctx); err == nil {
			err = ferr
		}
		mu.Lock()
		err = cmp.Or(err, perr)
		mu.Unlock()
		if err != nil {
			return fmt.Errorf("reseeding %s partition %d: %w", p.changelog, part, err)
		}
		written = append(written, part)
	}
	ends, err := p.adm.ListEndOffsets(ctx, p.changelog)
	if err != nil {
		return fmt.Errorf("listing the end offsets of %s: %w", p.changelog, err)
	}
	offsets := make(map[int32]int64, len(written))
	for _, part := range written {
		o, ok := ends.Lookup(p.changelog, part)
		if !ok || o.Err != nil {
			return fmt.Errorf("listing the end offset of %s partition %d: %v", p.changelog, part, o.Err)
		}
		offsets[part] = o.Offset
	}
	if err := p.store.Adopt(live, offsets, drop); err != nil {
		return fmt.Errorf("%w: %w", ErrFatal, err)
	}
	p.log.Info("reseeded the changelog from the state store", "changelog", p.changelog, "partitions", len(written),
		"records", records, "dropped_partitions", drop)
	return nil
}

// reseedOffset returns the HeaderReseedOffset of r, and false if it has none.
func reseedOffset(r *kgo.Record) (int64, bool) {
	for _, h := range r.Headers {
		if h.Key == HeaderReseedOffset {
			o, err := strconv.ParseInt(string(h.Value), 10, 64)
			return o, err == nil
		}
	}
	return -1, false
}
