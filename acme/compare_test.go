package acme

import (
	"context"
	"crypto"
	"os"
	"strconv"
	"testing"
	"time"

	legoacme "github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge/http01"
	"github.com/go-acme/lego/v5/lego"
	"github.com/go-acme/lego/v5/registration"
)

type legoUser struct {
	key crypto.Signer
	reg *legoacme.ExtendedAccount
}

func (u *legoUser) GetEmail() string                           { return "" }
func (u *legoUser) GetRegistration() *legoacme.ExtendedAccount { return u.reg }
func (u *legoUser) GetPrivateKey() crypto.Signer               { return u.key }

// TestCompareLegoCertifier times lego's own Certifier (names validated one
// after another) on the same Pebble, for the record. It takes about 5 s per
// name: run it with CERTPLAN_COMPARE_LEGO=1.
func TestCompareLegoCertifier(t *testing.T) {
	if os.Getenv("CERTPLAN_COMPARE_LEGO") == "" {
		t.Skip("set CERTPLAN_COMPARE_LEGO=1 to time lego's Certifier")
	}
	e := newEnv(t)
	key, _ := GenerateKey(EC256)
	u := &legoUser{key: key}
	lc := lego.NewConfig(u)
	lc.CADirURL = e.ca.DirectoryURL
	hc, err := httpClient(e.ca.RootsPEM)
	if err != nil {
		t.Fatal(err)
	}
	lc.HTTPClient = hc
	cl, err := lego.NewClient(lc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if u.reg, err = cl.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true}); err != nil {
		t.Fatal(err)
	}
	if err := cl.Challenge.SetHTTP01Provider(http01.NewProviderServer("127.0.0.2", strconv.Itoa(e.ca.HTTPPort))); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 10} {
		var names []string
		for i := 0; i < n; i++ {
			names = append(names, "n"+strconv.Itoa(i)+".d.test")
		}
		start := time.Now()
		if _, err := cl.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: names, KeyType: certcrypto.EC256, Profile: "classic"}); err != nil {
			t.Fatal(err)
		}
		t.Logf("lego Certifier, %2d names: %v", n, time.Since(start).Round(time.Millisecond))
	}
}
