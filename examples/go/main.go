// Command go is a plain go-redis client of slotproxy: redis.NewClient, not
// redis.NewClusterClient. The proxy does the cluster's work.
//
//	go run ./examples/go -addr 127.0.0.1:5000
package main

import (
	"context"
	"flag"
	"fmt"
	"log"

	"github.com/redis/go-redis/v9"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5000", "slotproxy address")
	password := flag.String("password", "", "clients.password of the proxy, if set")
	flag.Parse()

	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: *addr, Password: *password})
	defer rdb.Close()

	// Keys spread over all masters; the client does not know or care.
	for i := range 10 {
		key := fmt.Sprintf("user:%d", i)
		if err := rdb.Set(ctx, key, fmt.Sprintf("name-%d", i), 0).Err(); err != nil {
			log.Fatal(err)
		}
	}
	v, err := rdb.Get(ctx, "user:7").Result()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("user:7 =", v)

	// MGET and MSET work across slots; a hash tag keeps related keys on
	// one master, which a transaction or a script over them needs.
	if err := rdb.MSet(ctx, "{cart:42}:items", 3, "{cart:42}:total", 99).Err(); err != nil {
		log.Fatal(err)
	}
	vals, err := rdb.MGet(ctx, "{cart:42}:items", "{cart:42}:total").Result()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("cart 42 =", vals)
}
