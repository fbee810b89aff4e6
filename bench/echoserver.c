/* A WebSocket echo server in C for the ixws benchmark: the fixed server of the
 * S1-S3 client rows, faster than any Python server, so that the client under
 * test is what saturates. Compiled at bench time: cc -O2 echoserver.c -lcrypto
 *
 *   echoserver PORT      prints READY, then serves connections one at a time
 *
 * Every data frame comes back unmasked with the same FIN bit and opcode (so
 * fragmented messages are echoed as they came), a ping gets a pong, a Close
 * gets a Close and ends the connection. Frames are parsed after each read and
 * all the echoes of that read leave in one write. No extensions, no checks
 * beyond what the framing needs: it is a load tool, not a conforming server.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char* what)
{
    perror(what);
    exit(2);
}

static int write_all(int fd, const uint8_t* p, size_t n)
{
    while (n > 0)
    {
        ssize_t w = write(fd, p, n);
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

struct buf
{
    uint8_t* p;
    size_t len, cap;
};

static void reserve(struct buf* b, size_t need)
{
    if (b->cap >= need) return;
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < need) cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p) die("realloc");
    b->cap = cap;
}

/* Reads the request head and answers 101; returns 0 on success. */
static int upgrade(int fd)
{
    char head[8192];
    size_t got = 0;
    while (got < sizeof(head) - 1)
    {
        ssize_t r = read(fd, head + got, 1); /* byte by byte: frames may follow at once */
        if (r <= 0) return -1;
        got += (size_t)r;
        if (got >= 4 && memcmp(head + got - 4, "\r\n\r\n", 4) == 0) break;
    }
    head[got] = 0;
    const char* key = NULL;
    for (char* line = strstr(head, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n"))
    {
        if (strncasecmp(line + 2, "Sec-WebSocket-Key:", 18) == 0)
        {
            key = line + 2 + 18;
            while (*key == ' ') ++key;
            break;
        }
    }
    if (!key) return -1;
    char material[256];
    size_t klen = strcspn(key, "\r ");
    if (klen > 100) return -1;
    memcpy(material, key, klen);
    strcpy(material + klen, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char*)material, strlen(material), digest);
    unsigned char accept[64];
    EVP_EncodeBlock(accept, digest, SHA_DIGEST_LENGTH);
    char resp[256];
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    return write_all(fd, (const uint8_t*)resp, (size_t)n);
}

/* Appends the unmasked echo of one frame to out. */
static void echo_frame(struct buf* out, uint8_t first, const uint8_t* mask, const uint8_t* payload, uint64_t n)
{
    reserve(out, out->len + n + 10);
    uint8_t* h = out->p + out->len;
    size_t hl = 2;
    h[0] = first;
    if (n < 126)
        h[1] = (uint8_t)n;
    else if (n < 65536)
    {
        h[1] = 126;
        h[2] = (uint8_t)(n >> 8);
        h[3] = (uint8_t)n;
        hl = 4;
    }
    else
    {
        h[1] = 127;
        for (int i = 0; i < 8; ++i) h[2 + i] = (uint8_t)(n >> (8 * (7 - i)));
        hl = 10;
    }
    uint8_t* d = h + hl;
    if (!mask)
        memcpy(d, payload, n);
    else
    {
        /* 8 bytes at a time (memcpy: no alignment assumptions), then the tail. */
        uint64_t m8;
        uint8_t m[8];
        for (int i = 0; i < 8; ++i) m[i] = mask[i & 3];
        memcpy(&m8, m, 8);
        uint64_t i = 0;
        for (; i + 8 <= n; i += 8)
        {
            uint64_t w;
            memcpy(&w, payload + i, 8);
            w ^= m8;
            memcpy(d + i, &w, 8);
        }
        for (; i < n; ++i) d[i] = payload[i] ^ mask[i & 3];
    }
    out->len += hl + n;
}

static void serve(int fd)
{
    if (upgrade(fd) != 0) return;
    struct buf in = {0}, out = {0};
    reserve(&in, 1 << 20);
    for (;;)
    {
        if (in.len == in.cap) reserve(&in, in.cap * 2);
        ssize_t r = read(fd, in.p + in.len, in.cap - in.len);
        if (r <= 0) break;
        in.len += (size_t)r;
        size_t pos = 0;
        int closing = 0;
        out.len = 0;
        while (!closing && in.len - pos >= 2)
        {
            const uint8_t* p = in.p + pos;
            uint8_t op = p[0] & 0x0f;
            int masked = p[1] & 0x80;
            uint64_t n = p[1] & 0x7f;
            size_t h = 2;
            if (n == 126)
            {
                if (in.len - pos < 4) break;
                n = ((uint64_t)p[2] << 8) | p[3];
                h = 4;
            }
            else if (n == 127)
            {
                if (in.len - pos < 10) break;
                n = 0;
                for (int i = 0; i < 8; ++i) n = (n << 8) | p[2 + i];
                h = 10;
            }
            size_t total = h + (masked ? 4 : 0) + n;
            if (in.len - pos < total)
            {
                reserve(&in, pos + total); /* room for the whole frame */
                break;
            }
            const uint8_t* mask = masked ? p + h : NULL;
            const uint8_t* payload = p + h + (masked ? 4 : 0);
            if (op == 0x9)
                echo_frame(&out, 0x8a, mask, payload, n); /* ping -> pong */
            else if (op == 0xa)
                ; /* unsolicited pong: ignore */
            else
            {
                echo_frame(&out, p[0], mask, payload, n); /* data, continuation, close */
                if (op == 0x8) closing = 1;
            }
            pos += total;
        }
        memmove(in.p, in.p + pos, in.len - pos);
        in.len -= pos;
        if (out.len && write_all(fd, out.p, out.len) != 0) break;
        if (closing) break;
    }
    free(in.p);
    free(out.p);
}

int main(int argc, char** argv)
{
    if (argc < 2)
    {
        fprintf(stderr, "usage: echoserver PORT\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    if (ls < 0) die("socket");
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)atoi(argv[1]));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr*)&a, sizeof(a)) != 0) die("bind");
    if (listen(ls, 64) != 0) die("listen");
    printf("READY\n");
    fflush(stdout);
    for (;;)
    {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        serve(fd);
        close(fd);
    }
}
