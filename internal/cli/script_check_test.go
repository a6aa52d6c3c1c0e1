package cli

import (
	"github.com/certplan/certplan/internal/mailtest"
	"github.com/certplan/certplan/model"
	"github.com/certplan/certplan/store"
	"github.com/rogpeppe/go-internal/testscript"
)

func init() {
	scriptCmds["checkstate"] = scriptCheckState
}

// scriptCheckState makes a state directory as "certplan issue" leaves it:
//
//	checkstate DIR IP NAME...
//
// an applied plan with one default certificate for the names on IP, and
// that certificate issued by the script's CA (valid for 90 days).
func scriptCheckState(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 {
		ts.Fatalf("usage: checkstate DIR IP NAME...")
	}
	dir, ip, names := ts.MkAbs(args[0]), args[1], args[2:]
	leaf, err := scriptCA(ts).Issue(mailtest.CertSpec{Names: names})
	ts.Check(err)
	st, err := store.Open(dir)
	ts.Check(err)
	ts.Check(st.Lock())
	defer st.Unlock()
	id := "default-" + ip
	key, err := mailtest.KeyPEM(leaf)
	ts.Check(err)
	_, err = st.SaveCert(id, store.Files{KeyPEM: key, CertPEM: mailtest.CertPEM(leaf)},
		store.Meta{ID: id, Names: names, Serial: leaf.Leaf.SerialNumber.Text(16), NotBefore: leaf.Leaf.NotBefore, NotAfter: leaf.Leaf.NotAfter})
	ts.Check(err)
	ts.Check(st.SavePlan(&model.Plan{Header: model.Header{Kind: model.KindPlan, Version: model.Version},
		Certificates: []model.PlannedCert{{ID: id, Names: names, IPs: []string{ip}, Default: true}}}))
}
