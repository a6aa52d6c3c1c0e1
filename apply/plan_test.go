package apply

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/store"
)

// TestRefusesCertificateWithoutNames: a plan with a certificate that lists
// no names (or an empty one) is refused before anything happens: no lock,
// no CA, no order, no hook, nothing in the state directory.
func TestRefusesCertificateWithoutNames(t *testing.T) {
	for _, tt := range []struct {
		name string
		cert model.PlannedCert
		want string
	}{
		{"no names", model.PlannedCert{ID: "default-127.0.0.2-2", Names: []string{}, IPs: []string{"127.0.0.2"}, Default: true},
			"apply: plan: certificate default-127.0.0.2-2 lists no names: an ACME order needs at least one"},
		{"nil names", model.PlannedCert{ID: "sni-a.test", IPs: []string{"127.0.0.2"}},
			"apply: plan: certificate sni-a.test lists no names: an ACME order needs at least one"},
		{"empty name", model.PlannedCert{ID: "sni-b.test", Names: []string{"", "mail.b.test"}, IPs: []string{"127.0.0.2"}},
			"apply: plan: certificate sni-b.test lists an empty name"},
		{"unknown key", model.PlannedCert{ID: "sni-c.test", Names: []string{"mail.c.test"}, IPs: []string{"127.0.0.2"}, Key: "rotate"},
			`apply: plan: certificate sni-c.test asks for key "rotate": want keep or next (or none)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			st, err := store.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			p := &model.Plan{Header: model.Header{Kind: model.KindPlan, Version: model.Version}, ID: "p1",
				Certificates: []model.PlannedCert{{ID: "default-127.0.0.3", Names: []string{"mail.a.test"}, IPs: []string{"127.0.0.3"}, Default: true}, tt.cert}}
			connected := false
			rep, err := Run(context.Background(), Options{Mode: ModeIssue, Plan: p, Store: st,
				Hooks: []string{"touch " + dir + "/hook-ran"},
				Connect: func(context.Context) (CA, error) {
					connected = true
					return nil, errors.New("no CA in this test")
				}})
			var pe *PlanError
			if !errors.As(err, &pe) || err.Error() != tt.want || rep != nil {
				t.Fatalf("got %v (report %v), want %q", err, rep, tt.want)
			}
			if connected {
				t.Error("the CA was contacted")
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				t.Errorf("state directory holds %s", e.Name())
			}
			// The lock was never taken: a run of a valid plan proceeds.
			if err := st.Lock(); err != nil {
				t.Fatalf("lock: %v", err)
			}
			st.Unlock()
		})
	}
}
