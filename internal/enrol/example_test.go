package enrol_test

import (
	"fmt"

	"github.com/testimony-ngo/testimony/internal/enrol"
)

// The name an enrolment file carries for the organisation key: what the
// caseworker compares with the card, never a key that could replace it.
func ExampleKeyName() {
	name, err := enrol.KeyName("testimony-org+1e8f20ee+Aem6fX15amaFyKi8EgB+aQz3Ef4+OSK4FCa6wpEfzdFK")
	if err != nil {
		panic(err)
	}
	fmt.Println(name)
	// Output: testimony-org+1e8f20ee
}

func ExampleParse() {
	e, err := enrol.Parse([]byte(`{
  "format": "testimony-enrolment",
  "version": 1,
  "server": "https://intake.example.org",
  "pin": "82853bbf763b5d3cc83611300c15f1ca51f89fdce1d7cc4ba742c755406551e5",
  "log_key": "testimony-log-1a2b3c4d+ef49098c+ASrJRwtnJfiVJRFWhtUA83+C0Gp2vag/tSzv4a2bVIMX",
  "org_key_name": "testimony-org+1e8f20ee",
  "role": "submit",
  "name": "laptop-3",
  "token": "tm1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(e.Server, e.OrgKeyName, e.Role, e.Name)
	// Output: https://intake.example.org testimony-org+1e8f20ee submit laptop-3
}
