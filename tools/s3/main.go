// The S3-compatible server of recluster's development and tests: gofakes3 (a real HTTP S3 server
// with a disk backend) behind a check of every request's AWS Signature Version 4, so a client with
// the wrong access key or secret is refused as S3 refuses it (403 InvalidAccessKeyId or
// SignatureDoesNotMatch). The credentials come from the environment (RECLUSTER_S3_ACCESS_KEY,
// RECLUSTER_S3_SECRET_KEY), never from the command line; TLS when -tls-cert and -tls-key are given.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
)

func main() {
	address := flag.String("address", "127.0.0.1:0", "host:port to listen on (port 0: any free port)")
	dataDir := flag.String("data", "", "directory holding the buckets (created when missing)")
	bucket := flag.String("bucket", "", "a bucket to create at start when missing")
	tlsCert := flag.String("tls-cert", "", "PEM certificate to serve HTTPS with")
	tlsKey := flag.String("tls-key", "", "PEM key of -tls-cert")
	flag.Parse()
	accessKey, secretKey := os.Getenv("RECLUSTER_S3_ACCESS_KEY"), os.Getenv("RECLUSTER_S3_SECRET_KEY")
	if accessKey == "" || secretKey == "" {
		log.Fatal("RECLUSTER_S3_ACCESS_KEY and RECLUSTER_S3_SECRET_KEY must be set")
	}
	if *dataDir == "" {
		log.Fatal("-data is required")
	}
	fs, err := s3afero.FsPath(*dataDir, s3afero.FsPathCreateAll)
	if err != nil {
		log.Fatalf("-data %s: %v", *dataDir, err)
	}
	backend, err := s3afero.MultiBucket(fs)
	if err != nil {
		log.Fatal(err)
	}
	if *bucket != "" {
		if err := backend.CreateBucket(*bucket); err != nil && !gofakes3.IsAlreadyExists(err) {
			log.Fatalf("creating bucket %s: %v", *bucket, err)
		}
	}
	faker := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog()))
	handler := &signed{accessKey: accessKey, secretKey: secretKey, next: faker.Server()}
	listener, err := net.Listen("tcp", *address)
	if err != nil {
		log.Fatal(err)
	}
	scheme := "http"
	if *tlsCert != "" {
		scheme = "https"
	}
	// The one line a starter waits for: where the server listens.
	fmt.Printf("listening %s://%s\n", scheme, listener.Addr().String())
	server := &http.Server{Handler: handler}
	if *tlsCert != "" {
		err = server.ServeTLS(listener, *tlsCert, *tlsKey)
	} else {
		err = server.Serve(listener)
	}
	log.Fatal(err)
}

type signed struct {
	accessKey, secretKey string
	next                 http.Handler
}

type s3Error struct {
	XMLName xml.Name `xml:"Error"`
	Code    string   `xml:"Code"`
	Message string   `xml:"Message"`
}

func refuse(w http.ResponseWriter, code, message string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusForbidden)
	_ = xml.NewEncoder(w).Encode(s3Error{Code: code, Message: message})
}

func (s *signed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const prefix = "AWS4-HMAC-SHA256 "
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, prefix) {
		refuse(w, "AccessDenied", "requests must be signed with AWS Signature Version 4 in the Authorization header")
		return
	}
	fields := map[string]string{}
	for _, part := range strings.Split(auth[len(prefix):], ",") {
		if key, value, ok := strings.Cut(strings.TrimSpace(part), "="); ok {
			fields[key] = value
		}
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		refuse(w, "AuthorizationHeaderMalformed", "the Authorization header is not a Signature Version 4 one")
		return
	}
	if scope[0] != s.accessKey {
		refuse(w, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
		return
	}
	if !hmac.Equal([]byte(s.signature(r, scope, fields["SignedHeaders"])), []byte(fields["Signature"])) {
		refuse(w, "SignatureDoesNotMatch",
			"The request signature we calculated does not match the signature you provided. Check your key and signing method.")
		return
	}
	s.next.ServeHTTP(w, r)
}

func (s *signed) signature(r *http.Request, scope []string, signedHeaders string) string {
	rawPath, rawQuery, _ := strings.Cut(r.RequestURI, "?")
	var headers strings.Builder
	for _, name := range strings.Split(signedHeaders, ";") {
		value := strings.Join(r.Header.Values(name), ",")
		switch {
		case name == "host":
			value = r.Host
		case name == "content-length" && value == "" && r.ContentLength >= 0:
			value = strconv.FormatInt(r.ContentLength, 10)
		}
		headers.WriteString(name + ":" + strings.Join(strings.Fields(value), " ") + "\n")
	}
	canonical := strings.Join([]string{
		r.Method, rawPath, canonicalQuery(rawQuery), headers.String(), signedHeaders,
		r.Header.Get("X-Amz-Content-Sha256"),
	}, "\n")
	digest := sha256.Sum256([]byte(canonical))
	toSign := strings.Join([]string{
		"AWS4-HMAC-SHA256", r.Header.Get("X-Amz-Date"), strings.Join(scope[1:], "/"), hex.EncodeToString(digest[:]),
	}, "\n")
	key := []byte("AWS4" + s.secretKey)
	for _, part := range scope[1:] {
		key = mac(key, part)
	}
	return hex.EncodeToString(mac(key, toSign))
}

func mac(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

func canonicalQuery(raw string) string {
	values, _ := url.ParseQuery(raw)
	pairs := []string{}
	for key, list := range values {
		for _, value := range list {
			pairs = append(pairs, escape(key)+"="+escape(value))
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

// escape percent-encodes all but RFC 3986's unreserved characters, as Signature Version 4 does.
func escape(text string) string {
	var out strings.Builder
	for _, b := range []byte(text) {
		if ('A' <= b && b <= 'Z') || ('a' <= b && b <= 'z') || ('0' <= b && b <= '9') || strings.IndexByte("-_.~", b) >= 0 {
			out.WriteByte(b)
		} else {
			fmt.Fprintf(&out, "%%%02X", b)
		}
	}
	return out.String()
}
