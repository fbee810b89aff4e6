/* Raw-TCP floor for the ixws benchmark: the same traffic shapes as S1 and S3
 * without any WebSocket framing or Python, server and client in two processes
 * (fork) on 127.0.0.1. Compiled at bench time with the system cc.
 *
 *   floor pingpong N SIZE   -> {"rtt_per_s":..., "p50_us":..., "p99_us":...}
 *   floor echo N SIZE       -> {"mb_per_s":...}   (SIZE-byte echoes, one in flight)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
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
    exit(1);
}

static void nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Child: accept one connection and echo everything until EOF. */
static void serve(int lfd)
{
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) die("accept");
    nodelay(fd);
    char* buf = malloc(1 << 20);
    for (;;)
    {
        ssize_t n = recv(fd, buf, 1 << 20, 0);
        if (n <= 0) break;
        ssize_t off = 0;
        while (off < n)
        {
            ssize_t w = send(fd, buf + off, (size_t) (n - off), MSG_NOSIGNAL);
            if (w <= 0) _exit(0);
            off += w;
        }
    }
    _exit(0);
}

static int cmp(const void* a, const void* b)
{
    double x = *(const double*) a, y = *(const double*) b;
    return (x > y) - (x < y);
}

int main(int argc, char** argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: floor pingpong|echo N SIZE\n");
        return 2;
    }
    const char* mode = argv[1];
    long n = atol(argv[2]);
    size_t size = (size_t) atol(argv[3]);

    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr*) &addr, sizeof(addr)) != 0) die("bind");
    socklen_t len = sizeof(addr);
    getsockname(lfd, (struct sockaddr*) &addr, &len);
    if (listen(lfd, 1) != 0) die("listen");
    pid_t child = fork();
    if (child == 0) serve(lfd);
    close(lfd);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr*) &addr, sizeof(addr)) != 0) die("connect");
    nodelay(fd);
    char* out = calloc(1, size);
    char* in = malloc(size);

    if (strcmp(mode, "pingpong") == 0)
    {
        double* lat = malloc(sizeof(double) * (size_t) n);
        double t0 = now();
        for (long i = 0; i < n; ++i)
        {
            double s = now();
            if (send(fd, out, size, MSG_NOSIGNAL) != (ssize_t) size) die("send");
            size_t got = 0;
            while (got < size)
            {
                ssize_t r = recv(fd, in + got, size - got, 0);
                if (r <= 0) die("recv");
                got += (size_t) r;
            }
            lat[i] = (now() - s) * 1e6;
        }
        double el = now() - t0;
        qsort(lat, (size_t) n, sizeof(double), cmp);
        printf("{\"rtt_per_s\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f}\n", n / el, lat[n / 2],
               lat[(size_t) (n * 99 / 100)]);
    }
    else
    {
        /* One SIZE-byte message in flight: write and read it back, interleaved. */
        double t0 = now();
        for (long i = 0; i < n; ++i)
        {
            size_t sent = 0, got = 0;
            while (got < size)
            {
                struct pollfd p = {fd, (short) (POLLIN | (sent < size ? POLLOUT : 0)), 0};
                if (poll(&p, 1, 5000) <= 0) die("poll");
                if ((p.revents & POLLOUT) && sent < size)
                {
                    ssize_t w = send(fd, out + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
                    if (w > 0) sent += (size_t) w;
                }
                if (p.revents & POLLIN)
                {
                    ssize_t r = recv(fd, in + got, size - got, MSG_DONTWAIT);
                    if (r == 0) die("eof");
                    if (r > 0) got += (size_t) r;
                }
            }
        }
        double el = now() - t0;
        printf("{\"mb_per_s\": %.1f}\n", (double) n * (double) size / el / 1e6);
    }
    close(fd);
    waitpid(child, NULL, 0);
    return 0;
}
