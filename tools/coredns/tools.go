//go:build tools

// Package tools pins CoreDNS as a dependency so `go build github.com/coredns/coredns` builds it.
package tools

import _ "github.com/coredns/coredns"
