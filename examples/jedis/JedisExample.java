import java.time.Duration;

import redis.clients.jedis.DefaultJedisClientConfig;
import redis.clients.jedis.HostAndPort;
import redis.clients.jedis.Jedis;
import redis.clients.jedis.JedisClientConfig;
import redis.clients.jedis.JedisPool;
import redis.clients.jedis.JedisPoolConfig;
import redis.clients.jedis.Transaction;

/**
 * A plain JedisPool (not JedisCluster) against slotproxy: the application
 * sees one Redis server, the proxy does the cluster's work. README.md beside
 * this file explains each setting.
 */
public final class JedisExample {
    /** The proxy beside the application: the Kubernetes sidecar listens on 127.0.0.1:5000. */
    static final String HOST = "localhost";
    static final int PORT = 5000;

    /**
     * Opening a connection to a proxy on the same host takes microseconds;
     * one that does not open within this means the proxy is not running.
     */
    static final int CONNECTION_TIMEOUT_MILLIS = 2_000;

    /**
     * How long Jedis waits for a reply. While a master fails over, the proxy
     * holds a request and retries it for up to backend.dial_timeout +
     * backend.read_timeout + backend.retry_timeout (1 + 3 + 5 = 9 s by
     * default) before it answers an error; a shorter wait here turns a
     * failover the proxy rides out into an exception and a broken connection.
     */
    static final int SOCKET_TIMEOUT_MILLIS = 10_000;

    public static void main(String[] args) {
        // clients.password of the proxy (SLOTPROXY_CLIENTS_PASSWORD). A
        // proxy without one refuses AUTH, as a redis-server without
        // requirepass does, so none is sent then.
        String password = System.getenv("REDIS_PASSWORD");
        if (password != null && password.isEmpty()) {
            password = null;
        }

        JedisPoolConfig poolConfig = new JedisPoolConfig();
        // Threads using Redis at once. A connection to the proxy costs it a
        // few KiB and the cluster nothing: the proxy multiplexes every
        // client onto one connection per master.
        poolConfig.setMaxTotal(32);
        poolConfig.setMaxIdle(32);
        poolConfig.setMinIdle(4);
        // A PING before each borrow, answered by the proxy itself: a
        // connection the proxy closed (clients.idle_timeout, a restart) is
        // replaced before the application's command is sent on it.
        poolConfig.setTestOnBorrow(true);
        // When all 32 are in use, wait this long for one, then fail,
        // rather than for ever.
        poolConfig.setMaxWait(Duration.ofSeconds(2));

        JedisClientConfig clientConfig = DefaultJedisClientConfig.builder()
                .connectionTimeoutMillis(CONNECTION_TIMEOUT_MILLIS)
                .socketTimeoutMillis(SOCKET_TIMEOUT_MILLIS)
                .password(password)
                .clientName("shop-api")
                .build();

        try (JedisPool pool = new JedisPool(poolConfig, new HostAndPort(HOST, PORT), clientConfig);
                Jedis jedis = pool.getResource()) {
            // Keys spread over all masters; the application does not know.
            for (int i = 0; i < 10; i++) {
                jedis.set("user:" + i, "name-" + i);
            }
            System.out.println("user:7 = " + jedis.get("user:7"));
            // MGET across slots: the proxy splits it and merges the replies.
            System.out.println("users = " + jedis.mget("user:1", "user:2", "user:3"));
            // A transaction runs on one master: its keys share a hash tag.
            jedis.watch("{cart:42}:items");
            Transaction tx = jedis.multi();
            tx.incr("{cart:42}:items");
            tx.incrBy("{cart:42}:total", 99);
            System.out.println("cart 42 = " + tx.exec());
        }
    }
}
