// The Go net/http reference for the differential framing run (../diff.py): "/" answers
// 200 "ok" after reading the whole body, any other path 404. Listens on 127.0.0.1:PORT.
package main

import (
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	port := "8082"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	h := func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			// A body that does not frame: Go's own verdict is to close.
			w.Header().Set("Connection", "close")
			w.WriteHeader(400)
			return
		}
		if r.URL.Path != "/" {
			w.WriteHeader(404)
			return
		}
		w.Write([]byte("ok"))
	}
	srv := &http.Server{
		Addr:              "127.0.0.1:" + port,
		Handler:           http.HandlerFunc(h),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       30 * time.Second,
	}
	if err := srv.ListenAndServe(); err != nil {
		panic(err)
	}
}
