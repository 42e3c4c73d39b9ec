package processor

import (
	"fmt"
	"testing"
)

// TestClientIdentitiesAreUnique: the transactional ids and client ids of
// every thread of instances whose ids differ only by a "-<n>" suffix are
// all different, and each thread's client id names its instance, which
// the group's member list gives back.
func TestClientIdentitiesAreUnique(t *testing.T) {
	const app = "orders-app"
	txn, client := map[string]string{}, map[string]string{}
	for _, inst := range []string{"b", "b-1", "b-1-1", "b-2", "host-0"} {
		p := &Processor{cfg: Config{AppID: app, InstanceID: inst}}
		for i := range 4 {
			who := fmt.Sprintf("instance %q thread %d", inst, i)
			if id := p.transactionalID(i); txn[id] != "" {
				t.Errorf("%s has transactional id %q, as %s", who, id, txn[id])
			} else {
				txn[id] = who
			}
			id := p.threadClientID(i)
			if client[id] != "" {
				t.Errorf("%s has client id %q, as %s", who, id, client[id])
			}
			client[id] = who
			if got := instanceOfClientID(app, id); got != inst {
				t.Errorf("client id %q: instance %q, want %q", id, got, inst)
			}
		}
		if got := p.transactionalID(0); got != app+"-"+inst {
			t.Errorf("first thread's transactional id %q, want %q (as earlier versions)", got, app+"-"+inst)
		}
	}
	// A member of an earlier version, whose client id is the instance's.
	if got := instanceOfClientID(app, app+"-b-1"); got != "b-1" {
		t.Errorf("instance of an earlier version's client id: %q, want b-1", got)
	}
}
