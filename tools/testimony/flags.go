package main

import (
	"errors"
	"flag"
	"strconv"
	"strings"

	"github.com/testimony-ngo/testimony/tools/testimony/internal/caseworker"
)

// registerConn adds the flags that say how to reach a server to fs.
func registerConn(fs *flag.FlagSet, cf *caseworker.Conn) {
	fs.StringVar(&cf.Server, "server", "", "")
	fs.StringVar(&cf.CA, "ca", "", "")
	fs.StringVar(&cf.Pin, "pin", "", "")
	fs.StringVar(&cf.TokenFile, "token-file", "", "")
	fs.StringVar(&cf.Proxy, "proxy", "", "")
	fs.BoolVar(&cf.ReplacePin, "replace-pin", false, "")
}

// rateFlag is -limit-rate: bytes per second, with an optional K or M
// suffix (powers of 1024); 0 means no limit.
type rateFlag int64

func (r *rateFlag) String() string { return strconv.FormatInt(int64(*r), 10) }

func (r *rateFlag) Set(s string) error {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"), strings.HasSuffix(s, "k"):
		mult, s = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mult, s = 1<<20, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return errors.New("want bytes per second, like 65536, 64K or 2M")
	}
	*r = rateFlag(n * mult)
	return nil
}
