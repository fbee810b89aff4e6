/* A WebSocket load generator in C for the ixws benchmark: drives any echo
 * server with the S1-S3 traffic shapes without Python, so that the server under
 * test, not the client, is what saturates. Compiled at bench time with cc.
 *
 *   loadgen pingpong  PORT N SIZE           one text message in flight
 *   loadgen pipelined PORT N SIZE INFLIGHT  INFLIGHT binary messages in flight
 *   loadgen large     PORT N SIZE           one binary message in flight
 *   loadgen handshakes PORT N CONCURRENCY   open + close N connections, CONCURRENCY
 *                                           threads at once (each: handshake, our
 *                                           Close, wait for the server's Close)
 * prints: RESULT {"rate": msgs/s, "elapsed": s[, "p50_us", "p99_us"][, "mb_per_s"]}
 *
 * It connects to 127.0.0.1:PORT, does the opening handshake (path "/", no
 * extensions) and then sends masked frames built once up front (the same mask
 * key for every frame: fine for a load generator, not for a real client). It
 * reads whole server frames and counts complete messages; control frames and
 * fragmented messages are not expected from an echo server and end the run.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char* what)
{
    perror(what);
    exit(2);
}

static void write_all(int fd, const uint8_t* p, size_t n)
{
    while (n > 0)
    {
        ssize_t w = write(fd, p, n);
        if (w <= 0) die("write");
        p += w;
        n -= (size_t)w;
    }
}

/* A masked client frame carrying SIZE bytes of 'x' (text) or a byte pattern. */
static uint8_t* build_frame(size_t size, int text, size_t* frame_len)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t* f = malloc(size + 14);
    if (!f) die("malloc");
    size_t h = 0;
    f[h++] = 0x80 | (text ? 0x1 : 0x2);
    if (size < 126)
        f[h++] = 0x80 | (uint8_t)size;
    else if (size < 65536)
    {
        f[h++] = 0x80 | 126;
        f[h++] = (uint8_t)(size >> 8);
        f[h++] = (uint8_t)size;
    }
    else
    {
        f[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; --i) f[h++] = (uint8_t)((uint64_t)size >> (8 * i));
    }
    memcpy(f + h, key, 4);
    h += 4;
    for (size_t i = 0; i < size; ++i)
    {
        uint8_t b = text ? 'x' : (uint8_t)(i * 31);
        f[h + i] = b ^ key[i & 3];
    }
    *frame_len = h + size;
    return f;
}

static int connect_and_upgrade(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr*)&a, sizeof(a)) != 0) die("connect");
    char req[256];
    int n = snprintf(req, sizeof(req),
                     "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     port);
    write_all(fd, (const uint8_t*)req, (size_t)n);
    /* An echo server sends nothing after its 101 until we do: whole reads
     * end with the head (anything past it would be a protocol surprise). */
    char head[4096];
    size_t got = 0;
    while (got < sizeof(head) - 1)
    {
        ssize_t r = read(fd, head + got, sizeof(head) - 1 - got);
        if (r <= 0) die("read handshake");
        got += (size_t)r;
        head[got] = 0;
        char* end = strstr(head, "\r\n\r\n");
        if (end)
        {
            if ((size_t)(end + 4 - head) != got)
            {
                fprintf(stderr, "data after the handshake response\n");
                exit(2);
            }
            break;
        }
    }
    head[got] = 0;
    if (strncmp(head, "HTTP/1.1 101", 12) != 0)
    {
        fprintf(stderr, "handshake refused: %s\n", head);
        exit(2);
    }
    return fd;
}

/* Incremental parser of unmasked server frames: feed bytes, count messages. */
struct reader
{
    uint8_t* buf;
    size_t cap, len;
};

/* Returns the number of complete data frames in r->buf, consuming them. */
static long consume_frames(struct reader* r)
{
    long done = 0;
    size_t pos = 0;
    for (;;)
    {
        if (r->len - pos < 2) break;
        const uint8_t* p = r->buf + pos;
        uint8_t op = p[0] & 0x0f;
        if (!(p[0] & 0x80) || op >= 0x8 || (p[1] & 0x80))
        {
            fprintf(stderr, "unexpected frame (opcode %u, fin %u)\n", op, p[0] >> 7);
            exit(2);
        }
        size_t h = 2;
        uint64_t n = p[1] & 0x7f;
        if (n == 126)
        {
            if (r->len - pos < 4) break;
            n = ((uint64_t)p[2] << 8) | p[3];
            h = 4;
        }
        else if (n == 127)
        {
            if (r->len - pos < 10) break;
            n = 0;
            for (int i = 0; i < 8; ++i) n = (n << 8) | p[2 + i];
            h = 10;
        }
        if (r->len - pos < h + n) break;
        pos += h + n;
        ++done;
    }
    memmove(r->buf, r->buf + pos, r->len - pos);
    r->len -= pos;
    return done;
}

static long read_frames(int fd, struct reader* r)
{
    if (r->len == r->cap) die("frame larger than the read buffer");
    ssize_t got = read(fd, r->buf + r->len, r->cap - r->len);
    if (got <= 0) die("read");
    r->len += (size_t)got;
    return consume_frames(r);
}

/* ---------------------------------------------------------------- handshakes */
static int g_port;
static long g_total;
static atomic_long g_next;

static void* handshake_worker(void* arg)
{
    (void)arg;
    /* A masked Close with code 1000 and no reason (mask key 0: code unchanged). */
    static const uint8_t close_frame[] = {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8};
    uint8_t buf[256];
    while (atomic_fetch_add(&g_next, 1) < g_total)
    {
        int fd = connect_and_upgrade(g_port);
        write_all(fd, close_frame, sizeof(close_frame));
        /* Until the server's Close (or its FIN): then we close too. */
        for (;;)
        {
            ssize_t r = read(fd, buf, sizeof(buf));
            if (r <= 0 || (buf[0] & 0x0f) == 0x8) break;
        }
        close(fd);
    }
    return NULL;
}

static int run_handshakes(int port, long n, long concurrency)
{
    g_port = port;
    g_total = n;
    pthread_t threads[256];
    if (concurrency < 1 || concurrency > 256) die("concurrency");
    double t0 = now();
    for (long i = 0; i < concurrency; ++i)
        if (pthread_create(&threads[i], NULL, handshake_worker, NULL) != 0) die("pthread_create");
    for (long i = 0; i < concurrency; ++i) pthread_join(threads[i], NULL);
    double elapsed = now() - t0;
    printf("RESULT {\"rate\": %.1f, \"elapsed\": %.4f, \"failures\": 0}\n", n / elapsed, elapsed);
    return 0;
}

static int cmp_double(const void* a, const void* b)
{
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

int main(int argc, char** argv)
{
    if (argc < 5)
    {
        fprintf(stderr, "usage: loadgen pingpong|pipelined|large PORT N SIZE [INFLIGHT]\n"
                        "       loadgen handshakes PORT N CONCURRENCY\n");
        return 2;
    }
    const char* mode = argv[1];
    int port = atoi(argv[2]);
    long n = atol(argv[3]);
    if (strcmp(mode, "handshakes") == 0) return run_handshakes(port, n, atol(argv[4]));
    size_t size = (size_t)atol(argv[4]);
    long inflight = argc > 5 ? atol(argv[5]) : 1;
    int pingpong = strcmp(mode, "pingpong") == 0;
    int pipelined = strcmp(mode, "pipelined") == 0;
    if (!pingpong && !pipelined && strcmp(mode, "large") != 0) die("mode");
    if (!pipelined) inflight = 1;

    int fd = connect_and_upgrade(port);
    size_t frame_len;
    uint8_t* frame = build_frame(size, pingpong, &frame_len);
    struct reader r = {0};
    r.cap = size + 14 > (1u << 20) ? 2 * (size + 14) : (4u << 20);
    r.buf = malloc(r.cap);
    /* A batch of frames to refill the window in one write. */
    uint8_t* batch = malloc(frame_len * (size_t)inflight);
    if (!r.buf || !batch) die("malloc");
    for (long i = 0; i < inflight; ++i) memcpy(batch + (size_t)i * frame_len, frame, frame_len);
    double* lat = pingpong ? malloc(sizeof(double) * (size_t)n) : NULL;

    long sent = inflight < n ? inflight : n, received = 0;
    double t0 = now(), ts = t0;
    write_all(fd, batch, frame_len * (size_t)sent);
    while (received < n)
    {
        long k = read_frames(fd, &r);
        if (k == 0) continue;
        double t = now();
        if (pingpong) lat[received] = t - ts;
        received += k;
        long more = n - sent < k ? n - sent : k;
        if (more > 0)
        {
            ts = t;
            write_all(fd, batch, frame_len * (size_t)more);
            sent += more;
        }
    }
    double elapsed = now() - t0;
    printf("RESULT {\"rate\": %.1f, \"elapsed\": %.4f", n / elapsed, elapsed);
    if (pingpong)
    {
        qsort(lat, (size_t)n, sizeof(double), cmp_double);
        printf(", \"p50_us\": %.1f, \"p99_us\": %.1f", lat[n / 2] * 1e6, lat[n * 99 / 100] * 1e6);
    }
    if (strcmp(mode, "large") == 0) printf(", \"mb_per_s\": %.1f", n * (double)size / elapsed / 1e6);
    printf("}\n");
    close(fd);
    return 0;
}
