package processor

import (
	"errors"
	"testing"
)

// TestCurrentChangelog: the changelog run uses, by the input's partition
// count and the application's changelog topics, at each point of a
// repartition from 6 to 12 partitions.
func TestCurrentChangelog(t *testing.T) {
	first, next := ChangelogTopic("app"), RepartitionedChangelogTopic("app", 12)
	for _, tc := range []struct {
		name  string
		st    layoutState
		want  string
		going bool // a repartition is unfinished: ErrTopology
	}{
		{"new application", layoutState{}, first, false},
		{"first layout", layoutState{input: 6, changelogs: []changelogTopic{{first, 6, true}}}, first, false},
		{"copying", layoutState{input: 6, changelogs: []changelogTopic{{first, 6, true}, {next, 12, false}}}, first, false},
		{"grown, not switched", layoutState{input: 12, changelogs: []changelogTopic{{first, 6, true}, {next, 12, false}}}, "", true},
		{"switched", layoutState{input: 12, changelogs: []changelogTopic{{first, 6, true}, {next, 12, true}}}, next, false},
		{"old deleted", layoutState{input: 12, changelogs: []changelogTopic{{next, 12, true}}}, next, false},
		{"grown by another tool", layoutState{input: 12, changelogs: []changelogTopic{{first, 6, true}}}, first, false},
		{"first not compacted", layoutState{input: 6, changelogs: []changelogTopic{{first, 6, false}}}, first, false},
		{"next layout", layoutState{input: 24, changelogs: []changelogTopic{{next, 12, true}, {RepartitionedChangelogTopic("app", 24), 24, false}}}, "", true},
	} {
		got, err := tc.st.current("app")
		if tc.going {
			if !errors.Is(err, ErrTopology) {
				t.Errorf("%s: %q, %v; want ErrTopology", tc.name, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestIsChangelogTopic(t *testing.T) {
	for topic, want := range map[string]bool{
		"orderflow-state-changelog":     true,
		"orderflow-state-changelog-24":  true,
		"orderflow-state-changelog-024": false,
		"orderflow-state-changelog-x":   false,
		"orders.events":                 false,
	} {
		if got := IsChangelogTopic(topic); got != want {
			t.Errorf("IsChangelogTopic(%q) = %v", topic, got)
		}
	}
}
