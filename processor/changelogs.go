package processor

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
)

// An application's state can live in more than one changelog topic over
// its life: "<app-id>-state-changelog" is the first (whatever its partition
// count), and `orderflow repartition --partitions N` writes the state for N
// partitions to "<app-id>-state-changelog-<N>". Which one is current is
// decided by the input topic's partition count, so that growing the input is
// the switch from one layout to the next and no other marker can disagree
// with it:
//
//   - "<app-id>-state-changelog-<N>" with cleanup.policy=compact, where N is
//     the input's partition count, is current. repartition creates it with
//     cleanup.policy=delete (and no time or size limit) and turns compaction
//     on only after it verified the copy and grew the input: one atomic
//     config change that makes the new layout live. Found without
//     compaction, the repartition has not finished (ErrTopology).
//   - Otherwise the current changelog is the one of the application's
//     changelogs (the first, or a compacted "-<N>") with the most partitions;
//     "<app-id>-state-changelog" when there is none (a new application).
//     checkTopics then refuses it if its partition count differs from the
//     input's.

// RepartitionedChangelogTopic is the changelog that `orderflow repartition`
// writes for an application whose input has partitions partitions.
func RepartitionedChangelogTopic(appID string, partitions int) string {
	return ChangelogTopic(appID) + "-" + strconv.Itoa(partitions)
}

// IsChangelogTopic reports whether topic is named like a changelog of some
// application (its first, or one repartition wrote).
func IsChangelogTopic(topic string) bool {
	suffix := ChangelogTopic("")
	if strings.HasSuffix(topic, suffix) {
		return true
	}
	i := strings.LastIndexByte(topic, '-')
	return i > 0 && strings.HasSuffix(topic[:i], suffix) && isCount(topic[i+1:])
}

// isCount reports whether s is a partition count as repartition names it.
func isCount(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && strconv.Itoa(n) == s
}

// changelogTopic is one of an application's changelog topics.
type changelogTopic struct {
	name       string
	partitions int
	compact    bool
}

// layoutState is what the cluster holds of an application's input and
// changelogs.
type layoutState struct {
	input      int              // the input's partition count, 0 if it is missing
	changelogs []changelogTopic // by partition count, then name
}

// readLayout lists the input and the application's changelogs.
func readLayout(ctx context.Context, adm *kadm.Client, cfg Config) (layoutState, error) {
	td, err := adm.ListTopics(ctx)
	if err != nil {
		return layoutState{}, fmt.Errorf("listing topics: %w", err)
	}
	return readLayoutFrom(ctx, adm, cfg, td)
}

// readLayoutFrom is readLayout with the topics already listed.
func readLayoutFrom(ctx context.Context, adm *kadm.Client, cfg Config, td kadm.TopicDetails) (layoutState, error) {
	var st layoutState
	if d, ok := td[cfg.Topics.Events]; ok && d.Err == nil {
		st.input = len(d.Partitions)
	}
	first := ChangelogTopic(cfg.AppID)
	var names []string
	for name, d := range td {
		if d.Err != nil {
			continue
		}
		if name == first || strings.HasPrefix(name, first+"-") && isCount(name[len(first)+1:]) {
			names = append(names, name)
			st.changelogs = append(st.changelogs, changelogTopic{name: name, partitions: len(d.Partitions)})
		}
	}
	if len(names) > 0 {
		rcs, err := describeConfigs(ctx, adm, names...)
		if err != nil {
			return layoutState{}, fmt.Errorf("describing the changelog topics: %w", err)
		}
		for i := range st.changelogs {
			c := &st.changelogs[i]
			rc, err := rcs.On(c.name, nil)
			if err == nil {
				err = rc.Err
			}
			if err != nil {
				return layoutState{}, fmt.Errorf("describing %s: %w", c.name, err)
			}
			for _, kv := range rc.Configs {
				if kv.Key == "cleanup.policy" && kv.Value != nil {
					c.compact = strings.Contains(*kv.Value, "compact")
				}
			}
		}
	}
	slices.SortFunc(st.changelogs, func(a, b changelogTopic) int {
		if a.partitions != b.partitions {
			return a.partitions - b.partitions
		}
		return strings.Compare(a.name, b.name)
	})
	return st, nil
}

// find returns the changelog named name.
func (st layoutState) find(name string) (changelogTopic, bool) {
	for _, c := range st.changelogs {
		if c.name == name {
			return c, true
		}
	}
	return changelogTopic{}, false
}

// current returns the current changelog of the application (see the top of
// this file), or an ErrTopology error while a repartition is unfinished.
func (st layoutState) current(appID string) (string, error) {
	if st.input > 0 {
		next := RepartitionedChangelogTopic(appID, st.input)
		if c, ok := st.find(next); ok {
			if c.compact {
				return next, nil
			}
			return "", fmt.Errorf("%w: a repartition to %d partitions has not finished: changelog %s is still being written (it becomes the changelog once `orderflow repartition` has verified it). "+
				"Run `orderflow repartition --app-id %s --partitions %d` again to finish it, then start the instances",
				ErrTopology, st.input, next, appID, st.input)
		}
	}
	if last, ok := st.last(appID, 0); ok {
		return last.name, nil
	}
	return ChangelogTopic(appID), nil
}

// last returns the application's changelog with the most partitions (fewer
// than below, if below > 0) among its first and the compacted ones
// repartition wrote: the state of the layout before a repartition to below.
func (st layoutState) last(appID string, below int) (changelogTopic, bool) {
	first := ChangelogTopic(appID)
	for i := len(st.changelogs) - 1; i >= 0; i-- {
		c := st.changelogs[i]
		if (c.compact || c.name == first) && (below == 0 || c.partitions < below) {
			return c, true
		}
	}
	return changelogTopic{}, false
}

// CurrentChangelog returns the changelog topic that holds the application's
// state: "<app-id>-state-changelog" unless `orderflow repartition` moved
// the state to "<app-id>-state-changelog-<N>" (N the input's partition
// count). It fails with ErrTopology while a repartition is unfinished.
// Tools that read or reset the state must use it rather than
// ChangelogTopic.
func CurrentChangelog(ctx context.Context, adm *kadm.Client, cfg Config) (string, error) {
	cfg = cfg.withDefaults()
	st, err := readLayout(ctx, adm, cfg)
	if err != nil {
		return "", err
	}
	return st.current(cfg.AppID)
}
